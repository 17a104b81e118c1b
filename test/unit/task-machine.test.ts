// The task machine (machines/task.ts) against a plain reference model of who may move a task where, both copies
// converging, and the requester-side deadline timer.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { initialTransition, transition, type AnyMachineSnapshot } from 'xstate';
import { start, step, type Step, type TimedEvent } from '../../runtime/transitions.ts';
import { EventStore } from '../../runtime/event-store.ts';
import { foldStream, PersistedActor } from '../../runtime/persisted-actor.ts';
import {
  checkTaskEvent,
  DEADLINE_REASON,
  TASK_EVENT_TYPES,
  TASK_STATES,
  TERMINAL_STATES,
  task,
  taskStateOf,
  type NotifyPeerParams,
  type EmitStatusParams,
  type TaskContext,
  type TaskCommand,
  type TaskEvent,
  type TaskEventType,
  type TaskInput,
  type TaskSpec,
  type TaskState,
} from '../../machines/task.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { tempDir } from '../support/temp-dir.ts';

const R = 'did:key:z6MkRequester';
const A = 'did:key:z6MkAssignee';
const S = 'did:key:z6MkStranger';
const CREATED_AT = 1_700_000_000_000;
const DEADLINE_TIMER = 'xstate.after.deadline.task.open.deadline.watching';

type Role = 'requester' | 'assignee' | 'stranger';
const DID: Record<Role, string> = { requester: R, assignee: A, stranger: S };

function spec(deadline?: number): TaskSpec {
  return {
    id: 'task_01JY0000000000000000000000',
    requester: R,
    assignee: A,
    skill: 'a2a:v1:cap:text-generation',
    metadata: { prompt: 'Summarise the README in 2 sentences' },
    input: [{ kind: 'text', text: 'hello' }],
    ...(deadline === undefined ? {} : { deadline }),
    createdAt: CREATED_AT,
  };
}

const input = (self: string, deadline?: number): TaskInput => ({ ...spec(deadline), self });

// ── The reference model, written apart from the machine ──────────────────────────────────────────────────
//
// One table: in which state an event may happen, who may make it, and where it leads. Everything else is
// refused: 'illegal' if nobody could make it in that state, 'unauthorized' if somebody else could.

type Who = 'requester' | 'assignee' | 'either';
const OPEN_STATES: TaskState[] = ['submitted', 'working', 'input-required', 'auth-required'];
const ANYWHERE_OPEN = { CANCEL: ['requester', 'canceled'], DEADLINE_PASSED: ['requester', 'failed'], ABORT: ['either', 'failed'] } as const;
const TABLE: Record<TaskState, Partial<Record<TaskEventType, readonly [Who, TaskState]>>> = {
  submitted: { ACCEPT: ['assignee', 'working'], REJECT: ['assignee', 'rejected'], ...ANYWHERE_OPEN },
  working: {
    REQUEST_INPUT: ['assignee', 'input-required'],
    REQUEST_AUTH: ['assignee', 'auth-required'],
    COMPLETE: ['assignee', 'completed'],
    FAIL: ['assignee', 'failed'],
    ...ANYWHERE_OPEN,
  },
  'input-required': { PROVIDE_INPUT: ['requester', 'working'], ...ANYWHERE_OPEN },
  'auth-required': { PROVIDE_AUTH: ['requester', 'working'], ...ANYWHERE_OPEN },
  completed: {},
  failed: {},
  canceled: {},
  rejected: {},
};

interface Copy {
  self: Role;
  hasDeadline: boolean;
}

type ModelEvent = { kind: 'command'; type: TaskEventType; role: Role } | { kind: 'timer' } | { kind: 'fake-timer'; role: Role };
type Outcome = { next: TaskState } | { refused: 'illegal' | 'unauthorized' };

function model(state: TaskState, e: ModelEvent, copy: Copy): Outcome {
  const open = OPEN_STATES.includes(state);
  // The runtime fires the deadline timer only on the requester's copy of a task with a deadline.
  if (e.kind === 'timer') return open && copy.self === 'requester' && copy.hasDeadline ? { next: 'failed' } : { refused: 'illegal' };
  // Nobody may imitate the timer.
  if (e.kind === 'fake-timer') return { refused: 'illegal' };
  const rule = TABLE[state][e.type];
  if (!rule) return { refused: 'illegal' };
  if (e.type === 'DEADLINE_PASSED' && !copy.hasDeadline) return { refused: 'illegal' };
  const [who, next] = rule;
  const allowed = who === 'either' ? e.role !== 'stranger' : e.role === who;
  return allowed ? { next } : { refused: 'unauthorized' };
}

// ── Events ───────────────────────────────────────────────────────────────────────────────────────────────

const text = fc.string({ maxLength: 8 });
const parts = fc.array(fc.oneof(
  text.map((t) => ({ kind: 'text' as const, text: t })),
  fc.jsonValue({ maxDepth: 1 }).map((j) => ({ kind: 'json' as const, json: JSON.parse(JSON.stringify(j ?? null)) })),
  fc.uint8Array({ maxLength: 4 }).map((d) => ({ kind: 'data' as const, data: d, mimeType: 'application/octet-stream' })),
  fc.record({ cid: text, name: text, mimeType: fc.constant('image/png'), size: fc.nat() }).map((file) => ({ kind: 'file' as const, file })),
), { maxLength: 2 });
const artifacts = fc.array(fc.record({ name: text, mimeType: fc.constant('text/plain'), text }), { maxLength: 2 });

/** The payload each event type carries, drawn at random. */
const payload: Record<TaskEventType, fc.Arbitrary<object>> = {
  ACCEPT: fc.option(text, { nil: undefined }).map((message) => (message === undefined ? {} : { message })),
  REJECT: text.map((reason) => ({ reason })),
  REQUEST_INPUT: text.map((message) => ({ message })),
  REQUEST_AUTH: text.map((message) => ({ message })),
  COMPLETE: fc.record({ artifacts, message: text }),
  FAIL: text.map((reason) => ({ reason })),
  PROVIDE_INPUT: fc.record({ parts, message: text }),
  PROVIDE_AUTH: fc.record({ parts }),
  CANCEL: fc.option(text, { nil: undefined }).map((reason) => (reason === undefined ? {} : { reason })),
  DEADLINE_PASSED: fc.constant({}),
  ABORT: text.map((reason) => ({ reason })),
};

const role = fc.constantFrom<Role>('requester', 'assignee', 'stranger');
// Events that can end a task are drawn less often, so walks also spend time in the deeper open states.
const ENDING: TaskEventType[] = ['REJECT', 'COMPLETE', 'FAIL', 'CANCEL', 'DEADLINE_PASSED', 'ABORT'];
const command = fc.oneof(
  ...TASK_EVENT_TYPES.map((type) => ({ weight: ENDING.includes(type) ? 1 : 4, arbitrary: fc.constant(type) })),
).chain((type) => fc.record({ type: fc.constant(type), role, data: payload[type] }));
const modelStep = fc.oneof(
  { weight: 12, arbitrary: command.map((c) => ({ kind: 'command' as const, ...c })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'timer' as const }) },
  { weight: 1, arbitrary: role.map((r) => ({ kind: 'fake-timer' as const, role: r })) },
);

type ModelStep = { kind: 'command'; type: TaskEventType; role: Role; data: object } | { kind: 'timer' } | { kind: 'fake-timer'; role: Role };

function timedEvent(s: ModelStep, at: number): TimedEvent {
  if (s.kind === 'timer') return { type: DEADLINE_TIMER, at };
  if (s.kind === 'fake-timer') return { type: DEADLINE_TIMER, by: DID[s.role], at } as TimedEvent;
  return { type: s.type, ...s.data, by: DID[s.role], at } as TimedEvent;
}

const effectsOf = (s: Step, type: string) => s.effects.filter((e) => e.type === type).map((e) => e.params);
const notified = (s: Step) => effectsOf(s, 'notifyPeer') as NotifyPeerParams[];
const statuses = (s: Step) => effectsOf(s, 'emitStatus') as EmitStatusParams[];
const contextOf = (snapshot: AnyMachineSnapshot) => snapshot.context as TaskContext;
const withoutSelf = ({ self: _self, ...rest }: TaskContext) => rest;

// ── 1. Model-based ───────────────────────────────────────────────────────────────────────────────────────

describe('task machine against the reference model', () => {
  it('accepts, refuses and lands exactly as the model says, and checkTaskEvent agrees (property)', () => {
    const seen = { states: new Set<TaskState>(), refusals: new Set<string>(), cells: new Set<string>() };
    fc.assert(
      fc.property(
        fc.record({ self: fc.constantFrom<Role>('requester', 'assignee'), hasDeadline: fc.boolean() }),
        fc.array(modelStep, { maxLength: 50, size: 'max' }),
        (copy, steps) => {
          const deadline = copy.hasDeadline ? CREATED_AT + 60_000 : undefined;
          let snapshot = start(task, input(DID[copy.self], deadline), CREATED_AT).snapshot;
          let state: TaskState = 'submitted';
          let at = CREATED_AT;
          seen.states.add(state);
          for (const s of steps) {
            at += 1;
            const e = timedEvent(s, at);
            const expected = model(state, s, copy);
            if (s.kind === 'command') seen.cells.add(`${state} ${s.type} ${s.role}`);
            // The answer the gRPC layer gets, asked before the step (timer events are not commands).
            if (s.kind !== 'timer') {
              const verdict = checkTaskEvent(snapshot, e as TaskEvent);
              expect(verdict).toBe('next' in expected ? 'ok' : expected.refused);
            }
            const result = step(task, snapshot, e);
            if ('refused' in expected) {
              seen.refusals.add(expected.refused);
              expect(result.accepted).toBe(false);
              expect(result.snapshot).toBe(snapshot);
              continue;
            }
            expect(result.accepted).toBe(true);
            state = expected.next;
            seen.states.add(state);
            expect(taskStateOf(result.snapshot.value)).toBe(state);
            expect(result.snapshot.status).toBe(TERMINAL_STATES.includes(state) ? 'done' : 'active');
            expect(contextOf(result.snapshot).updatedAt).toBe(at);
            // Effects: one status for local subscribers; the peer is told only of what this copy caused.
            expect(statuses(result)).toEqual([expect.objectContaining({ state, at })]);
            const causedHere = s.kind === 'timer' || (s.kind === 'command' && s.role === copy.self);
            expect(notified(result)).toHaveLength(causedHere ? 1 : 0);
            // The deadline timer lives until the task ends, and only on a copy that watches it.
            const watches = copy.self === 'requester' && copy.hasDeadline;
            expect(result.timers).toEqual(watches && TERMINAL_STATES.includes(state) ? [{ op: 'cancel', id: DEADLINE_TIMER }] : []);
            snapshot = result.snapshot;
          }
          // Walks go on past a final state: the model refuses everything there, so the machine must too.
        },
      ),
      { numRuns: 3_000 },
    );
    // The runs went everywhere worth going.
    expect([...seen.states].sort()).toEqual([...TASK_STATES].sort());
    expect([...seen.refusals].sort()).toEqual(['illegal', 'unauthorized']);
    // …and tried every event from every party in every open state.
    const cells = OPEN_STATES.flatMap((st) => TASK_EVENT_TYPES.flatMap((t) => ['requester', 'assignee', 'stranger'].map((r) => `${st} ${t} ${r}`)));
    expect(cells.filter((c) => !seen.cells.has(c))).toEqual([]);
  });

  it('the model and the machine agree on every (state, event, role) cell', () => {
    // An exhaustive sweep beside the random walks: drive a copy into each state, then try every event from every
    // party (terminal states accept nothing, from anyone). The paths use only moves the model allows.
    const accept: TaskEvent = { type: 'ACCEPT', by: A, at: 1 };
    const paths: Record<TaskState, TaskEvent[]> = {
      submitted: [],
      working: [accept],
      'input-required': [accept, { type: 'REQUEST_INPUT', by: A, at: 2, message: '?' }],
      'auth-required': [accept, { type: 'REQUEST_AUTH', by: A, at: 2, message: 'token?' }],
      completed: [accept, { type: 'COMPLETE', by: A, at: 2, artifacts: [] }],
      failed: [accept, { type: 'FAIL', by: A, at: 2, reason: 'boom' }],
      canceled: [{ type: 'CANCEL', by: R, at: 1 }],
      rejected: [{ type: 'REJECT', by: A, at: 1, reason: 'busy' }],
    };
    for (const copy of [{ self: 'requester', hasDeadline: true }, { self: 'assignee', hasDeadline: false }] as Copy[]) {
      for (const [from, path] of Object.entries(paths)) {
        let snapshot = start(task, input(DID[copy.self], copy.hasDeadline ? CREATED_AT + 1 : undefined), CREATED_AT).snapshot;
        for (const e of path) snapshot = step(task, snapshot, e).snapshot;
        expect(taskStateOf(snapshot.value)).toBe(from);
        expect(step(task, snapshot, { type: DEADLINE_TIMER, at: 10 }).accepted).toBe('next' in model(from as TaskState, { kind: 'timer' }, copy));
        for (const type of TASK_EVENT_TYPES) {
          for (const r of ['requester', 'assignee', 'stranger'] as const) {
            const e = { type, by: DID[r], at: 10, reason: 'r', message: 'm', parts: [], artifacts: [] } as TaskEvent;
            const expected = model(from as TaskState, { kind: 'command', type, role: r }, copy);
            const result = step(task, snapshot, e);
            const got = { type, r, verdict: checkTaskEvent(snapshot, e), landed: result.accepted ? taskStateOf(result.snapshot.value) : null };
            expect(got).toEqual({
              type,
              r,
              verdict: 'next' in expected ? 'ok' : expected.refused,
              landed: 'next' in expected ? expected.next : null,
            });
          }
        }
      }
    }
  });
});

// The runtime steps through its own inert scope (runtime/transitions.ts); this machine uses parts of xstate the
// outbox machine does not (a parallel state, an eventless transition, enqueueActions), so pin the equivalence here too.
describe('task machine stepped by the runtime equals xstate transition()', () => {
  it('same snapshots, effects, timers and refusals (property)', () => {
    const named = (actions: readonly { type: string; params?: unknown }[]) =>
      actions.filter((a) => !a.type.startsWith('xstate.')).map((a) => ({ type: a.type, params: a.params }));
    const timerIds = (actions: readonly { type: string; params?: unknown }[]) =>
      actions.filter((a) => a.type === 'xstate.raise' || a.type === 'xstate.cancel')
        .map((a) => (a.params as { id?: string; sendId?: string }).id ?? (a.params as { sendId: string }).sendId);
    fc.assert(
      fc.property(fc.constantFrom(R, A), fc.boolean(), fc.array(modelStep, { maxLength: 30 }), (self, hasDeadline, steps) => {
        const taskInput = input(self, hasDeadline ? CREATED_AT + 1_000 : undefined);
        const [official0, officialActions0] = initialTransition(task, taskInput);
        const ours0 = start(task, taskInput, CREATED_AT);
        expect(ours0.snapshot.value).toEqual(official0.value);
        expect(ours0.effects).toEqual(named(officialActions0));
        expect(ours0.timers.map((t) => t.id)).toEqual(timerIds(officialActions0));
        let official = official0;
        let ours = ours0.snapshot;
        let at = CREATED_AT;
        for (const s of steps) {
          const e = timedEvent(s, ++at);
          const [next, actions] = transition(task, official, e as never);
          const mine = step(task, ours, e);
          expect(mine.accepted).toBe(next !== official);
          expect(mine.snapshot.value).toEqual(next.value);
          expect(mine.snapshot.context).toEqual(next.context);
          expect(mine.snapshot.status).toEqual(next.status);
          if (mine.accepted) {
            expect(mine.effects).toEqual(named(actions));
            expect(mine.timers.map((t) => t.id)).toEqual(timerIds(actions));
          }
          official = next;
          ours = mine.snapshot;
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ── 2. Two copies converge ───────────────────────────────────────────────────────────────────────────────

describe('requester and assignee copies', () => {
  it('converge on the same state and context, each telling the other only what it caused (property)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(modelStep, { maxLength: 50, size: 'max' }), (hasDeadline, steps) => {
        const deadline = hasDeadline ? CREATED_AT + 60_000 : undefined;
        // The requester creates; the creation travels to the assignee, whose copy is started from it.
        const created = start(task, input(R, deadline), CREATED_AT);
        const [creation] = notified(created);
        expect(creation).toMatchObject({ to: A, message: { type: 'TASK_CREATED', by: R, at: CREATED_AT, task: spec(deadline) } });
        const sent = creation!.message as { type: 'TASK_CREATED'; task: TaskSpec };
        const received = start(task, { ...sent.task, self: A }, CREATED_AT + 5);
        expect(notified(received)).toEqual([]);
        expect(received.timers).toEqual([]);

        const copies: Record<'requester' | 'assignee', AnyMachineSnapshot> = { requester: created.snapshot, assignee: received.snapshot };
        const other = { requester: 'assignee', assignee: 'requester' } as const;
        let at = CREATED_AT + 10;
        for (const s of steps) {
          at += 1;
          if (s.kind === 'fake-timer') continue;
          // The timer fires on the requester's copy; a command is made on its author's daemon; a stranger's
          // command reaches neither copy's machine as accepted.
          const side = s.kind === 'timer' ? 'requester' : s.role === 'stranger' ? null : s.role;
          const e = timedEvent(s, at);
          if (side === null) {
            expect(step(task, copies.requester, e).accepted).toBe(false);
            expect(step(task, copies.assignee, e).accepted).toBe(false);
            continue;
          }
          const here = step(task, copies[side], e);
          if (!here.accepted) {
            // What its author's copy refuses, the other copy refuses too.
            if (s.kind !== 'timer') expect(step(task, copies[other[side]], e).accepted).toBe(false);
            continue;
          }
          const out = notified(here);
          expect(out).toHaveLength(1);
          expect(out[0]!.to).toBe(side === 'requester' ? A : R);
          const message = out[0]!.message;
          if (s.kind === 'timer') expect(message).toEqual({ type: 'DEADLINE_PASSED', by: R, at });
          else expect(message).toEqual(e);
          // Delivered: the other copy steps the same event, and says nothing back.
          const there = step(task, copies[other[side]], message as TaskEvent);
          expect(there.accepted).toBe(true);
          expect(notified(there)).toEqual([]);
          // Only the requester's copy ever holds the deadline timer.
          expect((side === 'assignee' ? here : there).timers).toEqual([]);
          copies[side] = here.snapshot;
          copies[other[side]] = there.snapshot;
          expect(taskStateOf(copies.requester.value)).toBe(taskStateOf(copies.assignee.value));
        }
        expect(taskStateOf(copies.requester.value)).toBe(taskStateOf(copies.assignee.value));
        expect(copies.requester.status).toBe(copies.assignee.status);
        expect(withoutSelf(contextOf(copies.requester))).toEqual(withoutSelf(contextOf(copies.assignee)));
        expect(contextOf(copies.requester).self).toBe(R);
        expect(contextOf(copies.assignee).self).toBe(A);
      }),
      { numRuns: 1_000 },
    );
  });

  it('a whole lifecycle: create, accept, ask for input, answer, complete', () => {
    let r = start(task, input(R), CREATED_AT).snapshot;
    let a = start(task, input(A), CREATED_AT).snapshot;
    const events: TaskEvent[] = [
      { type: 'ACCEPT', by: A, at: CREATED_AT + 1 },
      { type: 'REQUEST_INPUT', by: A, at: CREATED_AT + 2, message: 'Which README?' },
      { type: 'PROVIDE_INPUT', by: R, at: CREATED_AT + 3, parts: [{ kind: 'text', text: 'OpenMolt' }] },
      { type: 'COMPLETE', by: A, at: CREATED_AT + 4, artifacts: [{ name: 'summary', mimeType: 'text/plain', text: 'OpenMolt is…' }] },
    ];
    const seen: string[] = [];
    for (const e of events) {
      const sr = step(task, r, e);
      const sa = step(task, a, e);
      seen.push(taskStateOf(sr.snapshot.value));
      expect(notified(sr).length + notified(sa).length).toBe(1);
      expect(notified(e.by === R ? sr : sa)).toHaveLength(1);
      r = sr.snapshot;
      a = sa.snapshot;
    }
    expect(seen).toEqual(['working', 'input-required', 'working', 'completed']);
    expect(contextOf(r)).toMatchObject({
      input: [{ kind: 'text', text: 'hello' }, { kind: 'text', text: 'OpenMolt' }],
      artifacts: [{ name: 'summary', mimeType: 'text/plain', text: 'OpenMolt is…' }],
      updatedAt: CREATED_AT + 4,
    });
    expect(r.status).toBe('done');
  });
});

// ── 3. Deadline ──────────────────────────────────────────────────────────────────────────────────────────

describe('deadline', () => {
  const deadline = CREATED_AT + 30_000;

  it('the requester copy arms a timer due at the deadline; firing it fails the task and tells the assignee', () => {
    const created = start(task, input(R, deadline), CREATED_AT);
    expect(created.timers).toEqual([
      { op: 'set', id: DEADLINE_TIMER, due: CREATED_AT + (deadline - CREATED_AT), event: { type: DEADLINE_TIMER } },
    ]);
    // Moving between open states keeps the one timer as it is.
    let snapshot = created.snapshot;
    for (const e of [
      { type: 'ACCEPT', by: A, at: CREATED_AT + 1 },
      { type: 'REQUEST_AUTH', by: A, at: CREATED_AT + 2, message: 'token?' },
      { type: 'PROVIDE_AUTH', by: R, at: CREATED_AT + 3, parts: [] },
    ] as TaskEvent[]) {
      const s = step(task, snapshot, e);
      expect(s.accepted).toBe(true);
      expect(s.timers).toEqual([]);
      snapshot = s.snapshot;
    }
    // Nobody can imitate the timer: a peer or command always carries `by`.
    expect(step(task, snapshot, { type: DEADLINE_TIMER, by: A, at: deadline } as TimedEvent).accepted).toBe(false);
    // The runtime fires it at its due time.
    const [timer] = created.timers as { due: number; event: { type: string } }[];
    const fired = step(task, snapshot, { ...timer!.event, at: timer!.due });
    expect(fired.accepted).toBe(true);
    expect(taskStateOf(fired.snapshot.value)).toBe('failed');
    expect(fired.snapshot.status).toBe('done');
    expect(contextOf(fired.snapshot)).toMatchObject({ statusMessage: DEADLINE_REASON, updatedAt: deadline });
    expect(notified(fired)).toEqual([{ taskId: spec().id, to: A, message: { type: 'DEADLINE_PASSED', by: R, at: deadline } }]);
    expect(statuses(fired)).toEqual([{ taskId: spec().id, state: 'failed', by: R, at: deadline, statusMessage: DEADLINE_REASON }]);
  });

  it('the assignee copy has no timer and follows the requester: DEADLINE_PASSED by the requester fails it', () => {
    const created = start(task, input(A, deadline), CREATED_AT);
    expect(created.timers).toEqual([]);
    let snapshot = step(task, created.snapshot, { type: 'ACCEPT', by: A, at: CREATED_AT + 1 } as TaskEvent).snapshot;
    expect(step(task, snapshot, { type: DEADLINE_TIMER, at: deadline }).accepted).toBe(false);
    const bad = { type: 'DEADLINE_PASSED', by: A, at: deadline + 3 } as const;
    expect(checkTaskEvent(snapshot, bad)).toBe('unauthorized');
    expect(step(task, snapshot, bad).accepted).toBe(false);
    const s = step(task, snapshot, { type: 'DEADLINE_PASSED', by: R, at: deadline + 3 } as TaskEvent);
    expect(s.accepted).toBe(true);
    expect(s.timers).toEqual([]);
    expect(notified(s)).toEqual([]);
    snapshot = s.snapshot;
    expect(taskStateOf(snapshot.value)).toBe('failed');
    expect(contextOf(snapshot).statusMessage).toBe(DEADLINE_REASON);
  });

  it('no deadline, no timer; finishing in time cancels it; DEADLINE_PASSED without a deadline is illegal', () => {
    const none = start(task, input(R), CREATED_AT);
    expect(none.timers).toEqual([]);
    expect(checkTaskEvent(none.snapshot, { type: 'DEADLINE_PASSED', by: R })).toBe('illegal');
    const armed = start(task, input(R, deadline), CREATED_AT);
    const canceled = step(task, armed.snapshot, { type: 'CANCEL', by: R, at: CREATED_AT + 5 } as TaskEvent);
    expect(canceled.timers).toEqual([{ op: 'cancel', id: DEADLINE_TIMER }]);
    expect(contextOf(canceled.snapshot).statusMessage).toBe('canceled by the requester');
  });

  /** Every effect's acknowledgement appended (effects here resolve at once). */
  const settled = async (actor: PersistedActor) => {
    for (let i = 0; i < 3; i++) {
      await actor.idle();
      await new Promise((r) => setImmediate(r));
    }
  };
  const dirs: { cleanup(): void }[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

  it('through the persisted actor: the timer is persisted, survives a restart and fails the task at the deadline', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const clock = new ManualClock(CREATED_AT);
    let store = new EventStore(dir.path);
    const performed: { type: string; params: unknown }[] = [];
    const options = () => ({
      store,
      stream: 'tasks/t',
      machine: task,
      clock,
      onCrash: (e: unknown) => {
        throw e;
      },
      perform: async (effect: { type: string; params: unknown }) => void performed.push(effect),
    });
    let actor = await PersistedActor.create(options(), input(R, deadline), [{ type: 'ACCEPT', by: A } as TaskCommand]);
    expect([...store.rows('timers', ['tasks/t'])].map((r) => r.value)).toEqual([{ due: deadline, event: { type: DEADLINE_TIMER } }]);
    clock.advance(10_000);
    await settled(actor);
    await actor.stop();
    await store.close();
    store = new EventStore(dir.path);
    actor = await PersistedActor.recover(options());
    clock.advance(19_999);
    await actor.idle();
    expect(taskStateOf(actor.snapshot.value)).toBe('working');
    const done = new Promise<void>((resolve) => actor.subscribe((t) => t.snapshot.status === 'done' && resolve()));
    clock.advance(1);
    await done;
    expect(taskStateOf(actor.snapshot.value)).toBe('failed');
    expect(performed.filter((e) => e.type === 'notifyPeer').map((e) => (e.params as NotifyPeerParams).message.type))
      .toEqual(['TASK_CREATED', 'DEADLINE_PASSED']);
    expect(taskStateOf(foldStream(store, 'tasks/t', task).snapshot!.value)).toBe('failed');
    await settled(actor);
    await actor.stop();
    await store.close();
  });
});
