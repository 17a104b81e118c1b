// The life of one task, as both its requester's and its assignee's daemon keep it (the A2A v1 state set).
//
//   submitted ──ACCEPT──▶ working ──COMPLETE──▶ completed
//       │                  │   ▲   └────FAIL───▶ failed
//     REJECT   REQUEST_INPUT   PROVIDE_INPUT
//       ▼                  ▼   │
//   rejected          input-required        (REQUEST_AUTH / PROVIDE_AUTH: the same through auth-required)
//
//   …and from any state that is not final: CANCEL → canceled; DEADLINE_PASSED (or, on the requester's copy, the
//   deadline timer) → failed "deadline passed"; ABORT → failed (a daemon that can no longer run the task, e.g.
//   past its supervisor's crash budget). completed, failed, canceled and rejected are final.
//
// Who may do what is part of the machine (guards on `event.by`, the DID that caused the event):
//   requester: creates (the input), CANCEL, PROVIDE_INPUT, PROVIDE_AUTH, DEADLINE_PASSED (only with a deadline)
//   assignee:  ACCEPT, REJECT, REQUEST_INPUT, REQUEST_AUTH, COMPLETE, FAIL
//   either:    ABORT
// A refused event (wrong state, wrong party) leaves the snapshot as it is, so the runtime appends nothing;
// `checkTaskEvent` says which of the two it was, from these same definitions.
//
// The same machine runs on both daemons; `self` says which copy this is. A transition caused here
// (`by === self`) asks for `notifyPeer`, which the actor shell sends to the other daemon through the outbox,
// where it is stepped as the same event (with `by` = the envelope's authenticated sender). A transition received
// from the peer does not echo back. Local subscribers (wait-task, incoming tasks) follow the actor's transitions,
// which the runtime publishes after each append; they need no effect.
//
// The deadline is watched by the requester's copy only: an `after` delay of (deadline - createdAt), i.e. due at
// the deadline when the task is started at its creation time, which the runtime persists as a timer. The
// assignee's copy learns the outcome as a DEADLINE_PASSED event from the requester.
//
// Crossing verdicts. Both copies step locally at once, so two ending events can cross on the wire (the requester
// cancels while the assignee completes). The rule that makes both copies converge: **the requester's verdict
// wins**. The requester's copy is final the moment it ends. An ending the assignee causes on its own copy
// (COMPLETE, FAIL, REJECT, ABORT) waits in `closing.<outcome>` — shown to users as that outcome — until the
// requester confirms it has applied it (PEER_CONFIRMED, from the envelope's acknowledgement); a requester's
// CANCEL, DEADLINE_PASSED or ABORT that crossed it lands there instead and decides. (A requester that receives
// an ending after its own refuses it: its verdict is already on the way.)
//
// Order. Every message a copy sends the other is numbered (`n`, from 1: the requester's TASK_CREATED) and is
// applied in that order, each exactly once (`sequencePeerMessage`); `received` counts what was applied, and a
// peer message the machine refuses is still consumed, as PEER_REFUSED, so one refusal never blocks the next.
//
// The four open states live in the `status` region of a parallel `open` state, beside the `deadline` region;
// `taskStateOf(snapshot.value)` gives the flat name.
//
// Pure: time arrives as `event.at` (the creation time as `input.createdAt`); no I/O, no clock, no randomness.
import { and, setup, type AnyMachineSnapshot } from 'xstate';

// ── Content ──────────────────────────────────────────────────────────────────────────────────────────────

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A reference to a content-addressed file held by a daemon (proto `FileRef`). */
export interface TaskFileRef {
  cid: string;
  name: string;
  mimeType: string;
  size: number;
}

/** One piece of task input (proto `Part`): text, raw bytes, a JSON document, or a file reference. */
export type TaskPart =
  | { kind: 'text'; text: string; mimeType?: string }
  | { kind: 'data'; data: Uint8Array; mimeType: string }
  | { kind: 'json'; json: JsonValue }
  | { kind: 'file'; file: TaskFileRef };

/** An output of the task: small parts inline (large ones arrive with the files issue as file references). */
export interface TaskArtifact {
  id: string;
  name: string;
  parts: TaskPart[];
  createdAt: number;
}

// ── Input, context, states ───────────────────────────────────────────────────────────────────────────────

/** What the requester creates; travels to the assignee unchanged (`notifyPeer` with TASK_CREATED). */
export interface TaskSpec {
  /** task_<ULID> */
  id: string;
  /** DID of the party that asked for the work. */
  requester: string;
  /** DID of the party that does it. */
  assignee: string;
  /** Capability id `a2a:v1:cap:<name>`. */
  skill: string;
  metadata: JsonObject;
  input: TaskPart[];
  /** Absolute, ms since the epoch; past it the requester's copy fails the task. */
  deadline?: number;
  /** The requester's clock at creation: the `at` of the creation event on the requester's copy. */
  createdAt: number;
}

export interface TaskInput extends TaskSpec {
  /** Which copy this is: the requester's or the assignee's DID. */
  self: string;
}

export interface TaskContext {
  id: string;
  requester: string;
  assignee: string;
  self: string;
  skill: string;
  metadata: JsonObject;
  /** The creation input, then every part the requester added answering input-required / auth-required. */
  input: TaskPart[];
  artifacts: TaskArtifact[];
  /** The reason or question accompanying the current state ('' when none). */
  statusMessage: string;
  deadline: number | null;
  createdAt: number;
  /** `at` of the last transition on this copy. */
  updatedAt: number;
  /** How many messages this copy has sent the other (the last `n`). */
  sent: number;
  /** How many of the other copy's messages this copy has consumed (applied or refused), in order. */
  received: number;
}

export const TASK_STATES = [
  'submitted',
  'working',
  'input-required',
  'auth-required',
  'completed',
  'failed',
  'canceled',
  'rejected',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const TERMINAL_STATES: readonly TaskState[] = ['completed', 'failed', 'canceled', 'rejected'];

export const DEADLINE_REASON = 'deadline passed';

// ── Events ───────────────────────────────────────────────────────────────────────────────────────────────

/** Every event says who caused it (`by`, a DID) and when (`at`, stamped by the runtime). */
interface Caused {
  by: string;
  at: number;
  /** The sender's number for this message, on an event that came from the other copy (see sequencePeerMessage). */
  n?: number;
  /** On the assignee's ending: the last number of the task's event stream, which the requester holds before it ends. */
  lastEventSeq?: number;
}

export type TaskEvent =
  // assignee
  | ({ type: 'ACCEPT'; message?: string } & Caused)
  | ({ type: 'REJECT'; reason: string } & Caused)
  | ({ type: 'REQUEST_INPUT'; message: string } & Caused)
  | ({ type: 'REQUEST_AUTH'; message: string } & Caused)
  | ({ type: 'COMPLETE'; artifacts: TaskArtifact[]; message?: string } & Caused)
  | ({ type: 'FAIL'; reason: string } & Caused)
  // requester
  | ({ type: 'PROVIDE_INPUT'; parts: TaskPart[]; message?: string } & Caused)
  | ({ type: 'PROVIDE_AUTH'; parts: TaskPart[]; message?: string } & Caused)
  | ({ type: 'CANCEL'; reason?: string } & Caused)
  | ({ type: 'DEADLINE_PASSED' } & Caused)
  // either party
  | ({ type: 'ABORT'; reason: string } & Caused)
  // the runtime, from the other copy's envelopes: a message of the peer this state refuses (consumed, not applied),
  // and the requester's acknowledgement that it has applied the assignee's ending
  | ({ type: 'PEER_REFUSED'; refused: string } & Caused)
  | ({ type: 'PEER_CONFIRMED'; confirms: number } & Caused);

export type TaskEventType = TaskEvent['type'];

/** The events of a command or a peer message (the rest are the runtime's). */
export type TaskCommandType = (typeof TASK_EVENT_TYPES)[number];

/** Every event a command or a peer may bring; anything else (xstate's timer events, the runtime's PEER_*) is not theirs. */
export const TASK_EVENT_TYPES = [
  'ACCEPT', 'REJECT', 'REQUEST_INPUT', 'REQUEST_AUTH', 'COMPLETE', 'FAIL',
  'PROVIDE_INPUT', 'PROVIDE_AUTH', 'CANCEL', 'DEADLINE_PASSED', 'ABORT',
] as const satisfies readonly TaskEventType[];
// Compile-time: the list above names every event type but the runtime's own.
type Expect<T extends true> = T;
type _EveryEventListed = Expect<
  [Exclude<TaskEventType, (typeof TASK_EVENT_TYPES)[number] | 'PEER_REFUSED' | 'PEER_CONFIRMED'>] extends [never] ? true : false
>;

export function isTaskEventType(type: unknown): type is TaskEventType {
  return (TASK_EVENT_TYPES as readonly unknown[]).includes(type);
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event before the runtime stamps its time: what gRPC handlers and the peer handler build. */
export type TaskCommand = DistributiveOmit<TaskEvent, 'at'>;

/** What `notifyPeer` carries to the other daemon: the creation, or the event that made the transition. */
export type TaskPeerMessage = { type: 'TASK_CREATED'; by: string; at: number; task: TaskSpec } | TaskEvent;

export interface NotifyPeerParams {
  taskId: string;
  /** The other party's DID. */
  to: string;
  /** This copy's number for the message: 1, 2, … in the order it caused them. */
  n: number;
  message: TaskPeerMessage;
}

// ── Authority: the one definition of who is who ──────────────────────────────────────────────────────────

const isRequester = (context: { requester: string }, did: string): boolean => did === context.requester;
const isAssignee = (context: { assignee: string }, did: string): boolean => did === context.assignee;

/** Only the requester creates a task: `by` is the DID that asks for it (locally: self; from a peer: its sender). */
export function checkTaskCreation(spec: TaskSpec, by: string): 'ok' | 'unauthorized' {
  return isRequester(spec, by) ? 'ok' : 'unauthorized';
}

// ── The machine ──────────────────────────────────────────────────────────────────────────────────────────

const byOf = (event: unknown): string => (event as { by: string }).by;

const taskSetup = setup({
  types: {
    context: {} as TaskContext,
    input: {} as TaskInput,
    events: {} as TaskEvent,
  },
  actions: {
    // Effect: send the transition to the other daemon through the outbox (signed envelope, retried, deduplicated).
    notifyPeer: (_, _params: NotifyPeerParams) => {},
  },
  guards: {
    byRequester: ({ context, event }) => isRequester(context, byOf(event)),
    byAssignee: ({ context, event }) => isAssignee(context, byOf(event)),
    byParty: ({ context, event }) => isRequester(context, byOf(event)) || isAssignee(context, byOf(event)),
    byPeer: ({ context, event }) => byOf(event) !== context.self && (isRequester(context, byOf(event)) || isAssignee(context, byOf(event))),
    // The assignee ending the task on its own copy: provisional until the requester confirms (see "Crossing").
    assigneeHere: ({ context, event }) => isAssignee(context, byOf(event)) && context.self === context.assignee,
    // The requester confirms the ending itself (this copy's last message), not an earlier message acknowledged late.
    confirmsEnding: ({ context, event }) => isRequester(context, byOf(event)) && (event as { confirms?: number }).confirms === context.sent,
    hasDeadline: ({ context }) => context.deadline !== null,
    // Only the requester's copy arms the deadline timer; the assignee's follows the requester's verdict.
    watchesDeadline: ({ context }) => context.deadline !== null && context.self === context.requester,
    // The deadline timer's event comes from the runtime, never with a `by`: an imitation from a peer or a
    // command (which always carries one) changes nothing.
    timerFired: ({ event }) => !('by' in event),
  },
  delays: {
    // Relative to the creation event: due at createdAt + (deadline - createdAt) = the deadline.
    deadline: ({ context }) => Math.max(0, (context.deadline ?? context.createdAt) - context.createdAt),
  },
});

/**
 * Entry of every state a transition can land in (each transition lands in exactly one): `notifyPeer`, numbered,
 * when this copy caused the transition. The creation is caused by the requester; the deadline timer by the
 * requester's copy, and travels as DEADLINE_PASSED.
 */
const tellPeer = taskSetup.enqueueActions(({ context, event, enqueue }) => {
  const type = event.type as string;
  // The confirmation only makes a shown outcome final: nothing new to tell anyone.
  if (type === 'PEER_CONFIRMED') return;
  let message: TaskPeerMessage;
  if (type === 'xstate.init') {
    const { self: _self, artifacts: _a, statusMessage: _s, updatedAt: _u, sent: _n, received: _r, deadline, ...rest } = context;
    message = { type: 'TASK_CREATED', by: context.requester, at: context.createdAt, task: { ...rest, ...(deadline === null ? {} : { deadline }) } };
  } else if (type.startsWith('xstate.after.')) {
    message = { type: 'DEADLINE_PASSED', by: context.self, at: (event as { at: number }).at };
  } else {
    message = event;
  }
  if (message.by === context.self) {
    const to = context.self === context.requester ? context.assignee : context.requester;
    const n = context.sent + 1;
    enqueue.assign({ sent: n });
    enqueue({ type: 'notifyPeer', params: { taskId: context.id, to, n, message } });
  }
});

/** A message from the other copy is consumed in order: count it (see sequencePeerMessage). */
const receivedOf = (context: TaskContext, event: TaskEvent): number =>
  event.by !== context.self && typeof event.n === 'number' ? event.n : context.received;

/** The context change every transition makes: the accompanying message, the time, the peer message consumed. */
const record = (statusMessage: (event: TaskEvent) => string) =>
  taskSetup.assign(({ context, event }) => ({ statusMessage: statusMessage(event), updatedAt: event.at, received: receivedOf(context, event) }));

/** A peer message this state refuses is consumed all the same, and the refusal logged. */
const consumeRefused = { guard: 'byPeer', actions: taskSetup.assign(({ context, event }) => ({ received: receivedOf(context, event) })) } as const;

/** The requester's answer to input-required / auth-required adds to the task's input. */
const addInput = taskSetup.assign({
  input: ({ context, event }) =>
    event.type === 'PROVIDE_INPUT' || event.type === 'PROVIDE_AUTH' ? [...context.input, ...event.parts] : context.input,
});

/** The assignee's output, carried by COMPLETE. */
const addArtifacts = taskSetup.assign({
  artifacts: ({ context, event }) => (event.type === 'COMPLETE' ? [...context.artifacts, ...event.artifacts] : context.artifacts),
});

/** The deadline timer's event is xstate's own (`xstate.after.…`), stamped with `at` by the runtime like any other. */
const recordDeadline = taskSetup.assign(({ event }) => ({
  statusMessage: DEADLINE_REASON,
  updatedAt: (event as unknown as { at: number }).at,
}));

/**
 * An ending the assignee makes: provisional (`closing.<outcome>`) on the assignee's own copy, final on the
 * requester's.
 */
function ending(outcome: 'completed' | 'failed' | 'rejected', statusMessage: (e: TaskEvent) => string, ...more: (typeof addArtifacts)[]) {
  const actions = [record(statusMessage), ...more];
  return [
    { guard: and(['byAssignee', 'assigneeHere']), target: `#task.closing.${outcome}`, actions },
    { guard: 'byAssignee', target: `#task.${outcome}`, actions },
  ] as const;
}

const messageOf = (event: TaskEvent): string => ('message' in event && event.message) || '';
const reasonOf = (event: TaskEvent): string => ('reason' in event && event.reason) || '';

export const task = taskSetup.createMachine({
  id: 'task',
  context: ({ input }) => ({
    id: input.id,
    requester: input.requester,
    assignee: input.assignee,
    self: input.self,
    skill: input.skill,
    metadata: input.metadata,
    input: input.input,
    artifacts: [],
    statusMessage: '',
    deadline: input.deadline ?? null,
    createdAt: input.createdAt,
    updatedAt: input.createdAt,
    // The creation is the requester's message 1.
    sent: 0,
    received: input.self === input.requester ? 0 : 1,
  }),
  initial: 'open',
  states: {
    open: {
      type: 'parallel',
      on: {
        CANCEL: { guard: 'byRequester', target: 'canceled', actions: record((e) => reasonOf(e) || 'canceled by the requester') },
        DEADLINE_PASSED: { guard: and(['byRequester', 'hasDeadline']), target: 'failed', actions: record(() => DEADLINE_REASON) },
        ABORT: [
          { guard: 'assigneeHere', target: '#task.closing.failed', actions: record(reasonOf) },
          { guard: 'byParty', target: 'failed', actions: record(reasonOf) },
        ],
        PEER_REFUSED: consumeRefused,
      },
      states: {
        status: {
          initial: 'submitted',
          states: {
            submitted: {
              entry: tellPeer,
              on: {
                ACCEPT: { guard: 'byAssignee', target: 'working', actions: record(messageOf) },
                REJECT: ending('rejected', reasonOf),
              },
            },
            working: {
              entry: tellPeer,
              on: {
                REQUEST_INPUT: { guard: 'byAssignee', target: 'input-required', actions: record(messageOf) },
                REQUEST_AUTH: { guard: 'byAssignee', target: 'auth-required', actions: record(messageOf) },
                COMPLETE: ending('completed', messageOf, addArtifacts),
                FAIL: ending('failed', reasonOf),
              },
            },
            'input-required': {
              entry: tellPeer,
              on: { PROVIDE_INPUT: { guard: 'byRequester', target: 'working', actions: [record(messageOf), addInput] } },
            },
            'auth-required': {
              entry: tellPeer,
              on: { PROVIDE_AUTH: { guard: 'byRequester', target: 'working', actions: [record(messageOf), addInput] } },
            },
          },
        },
        deadline: {
          initial: 'deciding',
          states: {
            deciding: { always: [{ guard: 'watchesDeadline', target: 'watching' }, { target: 'unwatched' }] },
            watching: { after: { deadline: { guard: 'timerFired', target: '#task.failed', actions: recordDeadline } } },
            unwatched: {},
          },
        },
      },
    },
    // The assignee's own ending, on its own copy, until the requester confirms it; a crossing verdict of the
    // requester overrides it (see "Crossing verdicts" above).
    closing: {
      initial: 'completed', // never entered by default: every way in names its child
      on: {
        CANCEL: { guard: 'byRequester', target: 'canceled', actions: record((e) => reasonOf(e) || 'canceled by the requester') },
        DEADLINE_PASSED: { guard: and(['byRequester', 'hasDeadline']), target: 'failed', actions: record(() => DEADLINE_REASON) },
        ABORT: { guard: 'byRequester', target: 'failed', actions: record(reasonOf) },
        PEER_REFUSED: consumeRefused,
      },
      states: {
        completed: { entry: tellPeer, on: { PEER_CONFIRMED: { guard: 'confirmsEnding', target: '#task.completed' } } },
        failed: { entry: tellPeer, on: { PEER_CONFIRMED: { guard: 'confirmsEnding', target: '#task.failed' } } },
        rejected: { entry: tellPeer, on: { PEER_CONFIRMED: { guard: 'confirmsEnding', target: '#task.rejected' } } },
      },
    },
    completed: { type: 'final', entry: tellPeer },
    failed: { type: 'final', entry: tellPeer },
    canceled: { type: 'final', entry: tellPeer },
    rejected: { type: 'final', entry: tellPeer },
  },
});

export type TaskSnapshot = ReturnType<typeof task.getInitialSnapshot>;

/** The flat state name users see (`{ open: { status: 'working', … } }` → `working`, `{ closing: 'completed' }` → `completed`). */
export function taskStateOf(value: unknown): TaskState {
  if (typeof value === 'string') return value as TaskState;
  const v = value as { open?: { status: TaskState }; closing?: TaskState };
  return v.closing ?? v.open!.status;
}

/** Whether this copy still waits for the requester to confirm the assignee's ending (see "Crossing verdicts"). */
export function isClosing(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'closing' in value;
}

/**
 * What to do with the other copy's message number `n` (see "Order"): apply it when it is the next one; answer a
 * repeat (a retried delivery whose acknowledgement was lost) as applied, without stepping; make an early one wait
 * (the sender's outbox retries it) until the ones before it have arrived. A finished copy applies nothing more.
 */
export function sequencePeerMessage(context: TaskContext, done: boolean, n: number): 'apply' | 'repeat' | 'early' | 'finished' {
  if (n <= context.received) return 'repeat';
  if (done) return 'finished';
  return n === context.received + 1 ? 'apply' : 'early';
}

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** What a party asks for when it names the state it wants the task in (UpdateTask): message, parts, artifacts. */
export interface TaskUpdate {
  message: string;
  parts: TaskPart[];
  artifacts: TaskArtifact[];
}

/**
 * The event that moves a task from `current` to `target`, or null when no event does. Only `working` needs the
 * current state: from submitted it is ACCEPT, from input-/auth-required the requester's answer. Whether `by` may
 * make it is still the machine's to say (checkTaskEvent).
 */
export function eventForTarget(current: TaskState, target: TaskState, by: string, u: TaskUpdate): TaskCommand | null {
  switch (target) {
    case 'working':
      if (current === 'submitted') return { type: 'ACCEPT', by, ...(u.message ? { message: u.message } : {}) };
      if (current === 'input-required') return { type: 'PROVIDE_INPUT', by, parts: u.parts, ...(u.message ? { message: u.message } : {}) };
      if (current === 'auth-required') return { type: 'PROVIDE_AUTH', by, parts: u.parts, ...(u.message ? { message: u.message } : {}) };
      return null;
    case 'input-required':
      return { type: 'REQUEST_INPUT', by, message: u.message };
    case 'auth-required':
      return { type: 'REQUEST_AUTH', by, message: u.message };
    case 'completed':
      return { type: 'COMPLETE', by, artifacts: u.artifacts, ...(u.message ? { message: u.message } : {}) };
    case 'failed':
      return { type: 'FAIL', by, reason: u.message || 'failed by the assignee' };
    case 'rejected':
      return { type: 'REJECT', by, reason: u.message || 'rejected by the assignee' };
    case 'canceled':
      return { type: 'CANCEL', by, ...(u.message ? { reason: u.message } : {}) };
    default:
      return null;
  }
}

/**
 * Would the machine take this event, and if not, why: 'illegal' when no party could make it now (wrong state,
 * terminal, no deadline to pass), 'unauthorized' when one of the two parties could but `by` is not that party.
 * Asked of the machine itself — the event as sent, then with `by` replaced by each party — so the rules live
 * only in the guards above. gRPC maps 'illegal' to FAILED_PRECONDITION and 'unauthorized' to PERMISSION_DENIED.
 */
export function checkTaskEvent(snapshot: AnyMachineSnapshot, event: TaskCommand | TaskEvent): 'ok' | 'illegal' | 'unauthorized' {
  const at = 'at' in event ? event.at : (snapshot.context as TaskContext).updatedAt;
  const accepts = (by: string) => snapshot.status === 'active' && snapshot.can({ ...event, by, at });
  if (accepts(event.by)) return 'ok';
  const { requester, assignee } = snapshot.context as TaskContext;
  return accepts(requester) || accepts(assignee) ? 'unauthorized' : 'illegal';
}
