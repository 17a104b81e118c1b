// The task machine (machines/task.ts) against a plain reference model of who may move a task where, both copies
// converging, and the requester-side deadline timer.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { AnyMachineSnapshot } from 'xstate';
import { start, step, type Step, type TimedEvent } from '../../runtime/transitions.ts';
import { EventStore } from '../../runtime/event-store.ts';
import { foldStream, PersistedActor } from '../../runtime/persisted-actor.ts';
import {
  checkTaskEvent,
  DEADLINE_REASON,
  isClosing,
  sequencePeerMessage,
  TASK_EVENT_TYPES,
  TASK_STATES,
  TERMINAL_STATES,
  task,
  taskStateOf,
  type NotifyPeerParams,
  type TaskContext,
  type TaskCommand,
  type TaskEvent,
  type TaskCommandType,
  type TaskInput,
  type TaskPeerMessage,
  type TaskSpec,
  type TaskState,
} from '../../machines/task.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { startBoth, stepBoth } from '../support/same-as-xstate.ts';
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
const TABLE: Record<TaskState, Partial<Record<TaskCommandType, readonly [Who, TaskState]>>> = {
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

/**
 * Where a copy is: a state, and whether it is the assignee's own ending still waiting for the requester's
 * confirmation (shown as `state`, not final; only a requester's CANCEL, DEADLINE_PASSED or ABORT — a verdict that
 * crossed it — or the confirmation may move it).
 */
interface Where {
  state: TaskState;
  closing: boolean;
}

type ModelEvent =
  | { kind: 'command'; type: TaskCommandType; role: Role }
  | { kind: 'timer' }
  | { kind: 'fake-timer'; role: Role }
  /** The requester's acknowledgement of this copy's message: of its last one (the ending) or an earlier one. */
  | { kind: 'confirm'; role: Role; last: boolean };
type Outcome = { next: Where } | { refused: 'illegal' | 'unauthorized' };

const REQUESTER_VERDICTS: Partial<Record<TaskCommandType, TaskState>> = { CANCEL: 'canceled', DEADLINE_PASSED: 'failed', ABORT: 'failed' };

function model(where: Where, e: ModelEvent, copy: Copy): Outcome {
  const { state } = where;
  const open = OPEN_STATES.includes(state) && !where.closing;
  if (e.kind === 'confirm') {
    return where.closing && e.role === 'requester' && e.last ? { next: { state, closing: false } } : { refused: 'illegal' };
  }
  // The runtime fires the deadline timer only on the requester's copy of a task with a deadline.
  if (e.kind === 'timer') return open && copy.self === 'requester' && copy.hasDeadline ? { next: { state: 'failed', closing: false } } : { refused: 'illegal' };
  // Nobody may imitate the timer.
  if (e.kind === 'fake-timer') return { refused: 'illegal' };
  if (e.type === 'DEADLINE_PASSED' && !copy.hasDeadline) return { refused: 'illegal' };
  if (where.closing) {
    const verdict = REQUESTER_VERDICTS[e.type];
    if (!verdict) return { refused: 'illegal' };
    return e.role === 'requester' ? { next: { state: verdict, closing: false } } : { refused: 'unauthorized' };
  }
  const rule = TABLE[state][e.type];
  if (!rule) return { refused: 'illegal' };
  const [who, next] = rule;
  const allowed = who === 'either' ? e.role !== 'stranger' : e.role === who;
  if (!allowed) return { refused: 'unauthorized' };
  // The assignee's own ending on its own copy waits for the requester's confirmation.
  const closing = TERMINAL_STATES.includes(next) && copy.self === 'assignee' && e.role === 'assignee';
  return { next: { state: next, closing } };
}

// ── Events ───────────────────────────────────────────────────────────────────────────────────────────────

const text = fc.string({ maxLength: 8 });
const parts = fc.array(fc.oneof(
  text.map((t) => ({ kind: 'text' as const, text: t })),
  fc.jsonValue({ maxDepth: 1 }).map((j) => ({ kind: 'json' as const, json: JSON.parse(JSON.stringify(j ?? null)) })),
  fc.uint8Array({ maxLength: 4 }).map((d) => ({ kind: 'data' as const, data: d, mimeType: 'application/octet-stream' })),
  fc.record({ cid: text, name: text, mimeType: fc.constant('image/png'), size: fc.nat() }).map((file) => ({ kind: 'file' as const, file })),
), { maxLength: 2 });
const artifacts = fc.array(fc.record({ id: text, name: text, parts, createdAt: fc.nat() }), { maxLength: 2 });

/** The payload each event type carries, drawn at random. */
const payload: Record<TaskCommandType, fc.Arbitrary<object>> = {
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
const ENDING: TaskCommandType[] = ['REJECT', 'COMPLETE', 'FAIL', 'CANCEL', 'DEADLINE_PASSED', 'ABORT'];
const command = fc.oneof(
  ...TASK_EVENT_TYPES.map((type) => ({ weight: ENDING.includes(type) ? 1 : 4, arbitrary: fc.constant(type) })),
).chain((type) => fc.record({ type: fc.constant(type), role, data: payload[type] }));
const modelStep = fc.oneof(
  { weight: 12, arbitrary: command.map((c) => ({ kind: 'command' as const, ...c })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'timer' as const }) },
  { weight: 1, arbitrary: role.map((r) => ({ kind: 'fake-timer' as const, role: r })) },
  { weight: 2, arbitrary: fc.record({ role, last: fc.boolean() }).map((c) => ({ kind: 'confirm' as const, ...c })) },
);

type ModelStep =
  | { kind: 'command'; type: TaskCommandType; role: Role; data: object }
  | { kind: 'timer' }
  | { kind: 'fake-timer'; role: Role }
  | { kind: 'confirm'; role: Role; last: boolean };

function timedEvent(s: ModelStep, at: number, snapshot?: AnyMachineSnapshot): TimedEvent {
  if (s.kind === 'timer') return { type: DEADLINE_TIMER, at };
  if (s.kind === 'fake-timer') return { type: DEADLINE_TIMER, by: DID[s.role], at } as TimedEvent;
  if (s.kind === 'confirm') {
    const sent = snapshot ? contextOf(snapshot).sent : 1;
    return { type: 'PEER_CONFIRMED', by: DID[s.role], confirms: s.last ? sent : sent - 1, at } as TimedEvent;
  }
  return { type: s.type, ...s.data, by: DID[s.role], at } as TimedEvent;
}

const effectsOf = (s: Step, type: string) => s.effects.filter((e) => e.type === type).map((e) => e.params);
const notified = (s: Step) => effectsOf(s, 'notifyPeer') as NotifyPeerParams[];
const contextOf = (snapshot: AnyMachineSnapshot) => snapshot.context as TaskContext;
const withoutSelf = ({ self: _self, ...rest }: TaskContext) => rest;

// ── 1. Model-based ───────────────────────────────────────────────────────────────────────────────────────

describe('task machine against the reference model', () => {
  it('accepts, refuses and lands exactly as the model says, and checkTaskEvent agrees (property)', () => {
    const seen = { states: new Set<string>(), refusals: new Set<string>(), cells: new Set<string>() };
    fc.assert(
      fc.property(
        fc.record({ self: fc.constantFrom<Role>('requester', 'assignee'), hasDeadline: fc.boolean() }),
        fc.array(modelStep, { maxLength: 50, size: 'max' }),
        (copy, steps) => {
          const deadline = copy.hasDeadline ? CREATED_AT + 60_000 : undefined;
          let snapshot = start(task, input(DID[copy.self], deadline), CREATED_AT).snapshot;
          let where: Where = { state: 'submitted', closing: false };
          let at = CREATED_AT;
          seen.states.add(where.state);
          for (const s of steps) {
            at += 1;
            const e = timedEvent(s, at, snapshot);
            const expected = model(where, s, copy);
            if (s.kind === 'command' && !where.closing) seen.cells.add(`${where.state} ${s.type} ${s.role}`);
            // The answer the gRPC layer gets, asked before the step (timer events and confirmations are not commands).
            if (s.kind === 'command' || s.kind === 'fake-timer') {
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
            const moved = expected.next.state !== where.state || expected.next.closing !== where.closing;
            where = expected.next;
            seen.states.add(where.closing ? `closing ${where.state}` : where.state);
            expect(taskStateOf(result.snapshot.value)).toBe(where.state);
            expect(isClosing(result.snapshot.value)).toBe(where.closing);
            const final = TERMINAL_STATES.includes(where.state) && !where.closing;
            expect(result.snapshot.status).toBe(final ? 'done' : 'active');
            if (s.kind === 'confirm') {
              // The confirmation makes the shown outcome final and says nothing.
              expect(result.effects).toEqual([]);
              snapshot = result.snapshot;
              continue;
            }
            expect(moved).toBe(true);
            expect(contextOf(result.snapshot).updatedAt).toBe(at);
            // The only effect: the peer is told of what this copy caused.
            expect(result.effects.every((e) => e.type === 'notifyPeer')).toBe(true);
            const causedHere = s.kind === 'timer' || (s.kind === 'command' && s.role === copy.self);
            expect(notified(result)).toHaveLength(causedHere ? 1 : 0);
            if (causedHere) expect(notified(result)[0]!.n).toBe(contextOf(result.snapshot).sent);
            // The deadline timer lives until the task ends, and only on a copy that watches it.
            const watches = copy.self === 'requester' && copy.hasDeadline;
            expect(result.timers).toEqual(watches && TERMINAL_STATES.includes(where.state) ? [{ op: 'cancel', id: DEADLINE_TIMER }] : []);
            snapshot = result.snapshot;
          }
          // Walks go on past a final state: the model refuses everything there, so the machine must too.
        },
      ),
      { numRuns: 3_000 },
    );
    // The runs went everywhere worth going.
    expect([...seen.states].sort()).toEqual([...TASK_STATES, 'closing completed', 'closing failed', 'closing rejected'].sort());
    expect([...seen.refusals].sort()).toEqual(['illegal', 'unauthorized']);
    // …and tried every event from every party in every open state.
    const cells = OPEN_STATES.flatMap((st) => TASK_EVENT_TYPES.flatMap((t) => ['requester', 'assignee', 'stranger'].map((r) => `${st} ${t} ${r}`)));
    expect(cells.filter((c) => !seen.cells.has(c))).toEqual([]);
  });

  it('the model and the machine agree on every (state, event, role) cell', () => {
    // An exhaustive sweep beside the random walks: drive a copy into each state, then try every event from every
    // party (final states accept nothing, from anyone). The paths use only moves the model allows.
    const accept: ModelStep = { kind: 'command', type: 'ACCEPT', role: 'assignee', data: {} };
    const by = (role: Role, type: TaskCommandType, data: object = {}): ModelStep => ({ kind: 'command', type, role, data });
    const paths: [string, ModelStep[]][] = [
      ['submitted', []],
      ['working', [accept]],
      ['input-required', [accept, by('assignee', 'REQUEST_INPUT', { message: '?' })]],
      ['auth-required', [accept, by('assignee', 'REQUEST_AUTH', { message: 'token?' })]],
      ['completed', [accept, by('assignee', 'COMPLETE', { artifacts: [] })]],
      ['completed, confirmed', [accept, by('assignee', 'COMPLETE', { artifacts: [] }), { kind: 'confirm', role: 'requester', last: true }]],
      ['failed', [accept, by('assignee', 'FAIL', { reason: 'boom' })]],
      ['canceled', [by('requester', 'CANCEL')]],
      ['rejected', [by('assignee', 'REJECT', { reason: 'busy' })]],
      ['aborted by the assignee', [by('assignee', 'ABORT', { reason: 'crashed' })]],
    ];
    for (const copy of [{ self: 'requester', hasDeadline: true }, { self: 'assignee', hasDeadline: true }, { self: 'assignee', hasDeadline: false }] as Copy[]) {
      for (const [name, path] of paths) {
        let snapshot = start(task, input(DID[copy.self], copy.hasDeadline ? CREATED_AT + 1 : undefined), CREATED_AT).snapshot;
        let where: Where = { state: 'submitted', closing: false };
        for (const [i, s] of path.entries()) {
          const expected = model(where, s, copy);
          if (!('next' in expected)) break;
          where = expected.next;
          snapshot = step(task, snapshot, timedEvent(s, i + 1, snapshot)).snapshot;
        }
        if (!path.every((s) => s.kind !== 'confirm') && copy.self !== 'assignee') continue; // only the assignee's copy closes
        expect({ name, state: taskStateOf(snapshot.value), closing: isClosing(snapshot.value) }).toEqual({ name, ...where });
        expect(step(task, snapshot, { type: DEADLINE_TIMER, at: 10 }).accepted).toBe('next' in model(where, { kind: 'timer' }, copy));
        for (const type of TASK_EVENT_TYPES) {
          for (const r of ['requester', 'assignee', 'stranger'] as const) {
            const e = { type, by: DID[r], at: 10, reason: 'r', message: 'm', parts: [], artifacts: [] } as TaskEvent;
            const expected = model(where, { kind: 'command', type, role: r }, copy);
            const result = step(task, snapshot, e);
            const got = { name, type, r, verdict: checkTaskEvent(snapshot, e), landed: result.accepted ? taskStateOf(result.snapshot.value) : null };
            expect(got).toEqual({
              name,
              type,
              r,
              verdict: 'next' in expected ? 'ok' : expected.refused,
              landed: 'next' in expected ? expected.next.state : null,
            });
          }
        }
      }
    }
  });

  it('sequencePeerMessage: the next message applies, repeats are answered, early ones wait, a finished copy takes nothing', () => {
    const ctx = { ...contextOf(start(task, input(A), CREATED_AT).snapshot), received: 3 };
    expect([1, 3, 4, 5].map((n) => sequencePeerMessage(ctx, false, n))).toEqual(['repeat', 'repeat', 'apply', 'early']);
    expect([3, 4, 9].map((n) => sequencePeerMessage(ctx, true, n))).toEqual(['repeat', 'finished', 'finished']);
  });
});

// The runtime steps through its own inert scope (runtime/transitions.ts); this machine uses parts of xstate the
// outbox machine does not (a parallel state, an eventless transition, enqueueActions), so pin the equivalence here too.
describe('task machine stepped by the runtime equals xstate transition()', () => {
  it('same snapshots, effects, timers and refusals (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(R, A), fc.boolean(), fc.array(modelStep, { maxLength: 30 }), (self, hasDeadline, steps) => {
        let both = startBoth(task, input(self, hasDeadline ? CREATED_AT + 1_000 : undefined), CREATED_AT);
        let at = CREATED_AT;
        for (const s of steps) both = stepBoth(task, both, timedEvent(s, ++at));
      }),
      { numRuns: 300 },
    );
  });
});

// ── 2. Two copies converge ───────────────────────────────────────────────────────────────────────────────

describe('requester and assignee copies', () => {
  it('converge on the same outcome whatever crosses on the wire, reordered, repeated or early (property)', () => {
    type Side = 'requester' | 'assignee';
    type Wire = { n: number; message: TaskPeerMessage };
    const other = { requester: 'assignee', assignee: 'requester' } as const;
    const simStep = fc.oneof(
      { weight: 6, arbitrary: command.filter((c) => c.role !== 'stranger').map((c) => ({ kind: 'command' as const, ...c })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'timer' as const }) },
      {
        weight: 8,
        arbitrary: fc.record({ to: fc.constantFrom<Side>('requester', 'assignee'), pick: fc.nat(), ackLost: fc.boolean() })
          .map((d) => ({ kind: 'deliver' as const, ...d })),
      },
    );
    const outcomes = new Set<string>();
    fc.assert(
      fc.property(fc.boolean(), fc.array(simStep, { maxLength: 60, size: 'max' }), (hasDeadline, steps) => {
        const deadline = hasDeadline ? CREATED_AT + 60_000 : undefined;
        // The requester creates; its message 1 carries the creation, from which the assignee's copy is started.
        const created = start(task, input(R, deadline), CREATED_AT);
        const [creation] = notified(created);
        expect(creation).toMatchObject({ n: 1, to: A, message: { type: 'TASK_CREATED', by: R, at: CREATED_AT, task: spec(deadline) } });
        const received = start(task, { ...(creation!.message as { task: TaskSpec }).task, self: A }, CREATED_AT + 5);
        expect(notified(received)).toEqual([]);
        expect(received.timers).toEqual([]);
        const copies: Record<Side, AnyMachineSnapshot> = { requester: created.snapshot, assignee: received.snapshot };
        /** Messages in flight to each side, in the order they were sent (deliveries pick from anywhere). */
        const wire: Record<Side, Wire[]> = { requester: [], assignee: [] };
        let at = CREATED_AT + 10;

        const send = (from: Side, s: Step) => {
          for (const p of notified(s)) wire[other[from]].push({ n: p.n, message: p.message });
        };
        // What the task actor does with a peer's message: sequence it, step it (or consume it refused), answer.
        const receive = (side: Side, w: Wire): 'applied' | 'refused' | 'early' => {
          const snap = copies[side];
          const verdict = sequencePeerMessage(contextOf(snap), snap.status === 'done', w.n);
          if (verdict === 'early' || verdict === 'finished') return verdict === 'early' ? 'early' : 'refused';
          if (verdict === 'repeat') return 'applied';
          const e = { ...w.message, n: w.n, at: ++at } as TaskEvent;
          const s = step(task, snap, e);
          if (s.accepted) {
            expect(notified(s)).toEqual([]);
            copies[side] = s.snapshot;
            return 'applied';
          }
          const consumed = step(task, snap, { type: 'PEER_REFUSED', by: e.by, n: w.n, refused: e.type, at } as TaskEvent);
          expect(consumed.accepted).toBe(true);
          expect(consumed.effects).toEqual([]);
          copies[side] = consumed.snapshot;
          return 'refused';
        };
        // The acknowledgement of an applied message reaches its sender as PEER_CONFIRMED (its machine decides).
        const acknowledge = (sender: Side, n: number) => {
          const s = step(task, copies[sender], { type: 'PEER_CONFIRMED', by: DID[other[sender]], confirms: n, at: ++at } as TaskEvent);
          if (s.accepted) copies[sender] = s.snapshot;
        };
        const deliver = (to: Side, i: number, ackLost: boolean) => {
          const w = wire[to][i]!;
          const answer = receive(to, w);
          // Early: the outbox will try again. Acknowledgement lost: the outbox will send it again.
          if (answer === 'early' || ackLost) return;
          wire[to].splice(i, 1);
          if (answer === 'applied') acknowledge(other[to], w.n);
        };

        for (const s of steps) {
          at += 1;
          if (s.kind === 'deliver') {
            if (wire[s.to].length > 0) deliver(s.to, s.pick % wire[s.to].length, s.ackLost);
            continue;
          }
          const side: Side = s.kind === 'timer' ? 'requester' : (s.role as Side);
          const here = step(task, copies[side], timedEvent(s, at));
          if (!here.accepted) continue;
          copies[side] = here.snapshot;
          send(side, here);
        }
        // Everyone comes back online: what is in flight arrives, in the order it was sent.
        while (wire.requester.length + wire.assignee.length > 0) {
          for (const side of ['requester', 'assignee'] as const) if (wire[side].length > 0) deliver(side, 0, false);
        }
        const [r, a] = [copies.requester, copies.assignee];
        const state = taskStateOf(r.value);
        outcomes.add(state);
        expect(taskStateOf(a.value)).toBe(state);
        expect(isClosing(a.value) || isClosing(r.value)).toBe(false);
        expect(a.status).toBe(r.status);
        expect(contextOf(a).statusMessage).toBe(contextOf(r).statusMessage);
        // What a crossing message carried is lost to the side that refused it (input answering a question the
        // assignee gave up on); a completed task saw everything.
        if (state === 'completed') {
          expect(contextOf(a).input).toEqual(contextOf(r).input);
          expect(contextOf(a).artifacts).toEqual(contextOf(r).artifacts);
        }
      }),
      { numRuns: 2_000 },
    );
    expect([...outcomes].sort()).toEqual([...TASK_STATES].sort());
  });

  it('crossing: the requester cancels while the assignee completes; both end canceled', () => {
    let r = start(task, input(R), CREATED_AT).snapshot;
    let a = start(task, input(A), CREATED_AT).snapshot;
    const accept = { type: 'ACCEPT', by: A, at: CREATED_AT + 1 } as TaskEvent;
    a = step(task, a, accept).snapshot;
    r = step(task, r, { ...accept, n: 1 } as TaskEvent).snapshot;
    const completing = step(task, a, { type: 'COMPLETE', by: A, at: CREATED_AT + 2, artifacts: [] } as TaskEvent);
    const canceling = step(task, r, { type: 'CANCEL', by: R, at: CREATED_AT + 2 } as TaskEvent);
    a = completing.snapshot;
    r = canceling.snapshot;
    // Each shows its own verdict; the assignee's is not final yet.
    expect([taskStateOf(a.value), isClosing(a.value), a.status]).toEqual(['completed', true, 'active']);
    expect([taskStateOf(r.value), r.status]).toEqual(['canceled', 'done']);
    // The COMPLETE reaches a finished requester: refused (no confirmation). The CANCEL reaches the assignee: it wins.
    expect(sequencePeerMessage(contextOf(r), true, notified(completing)[0]!.n)).toBe('finished');
    const cancel = notified(canceling)[0]!;
    expect(sequencePeerMessage(contextOf(a), false, cancel.n)).toBe('apply');
    const s = step(task, a, { ...cancel.message, n: cancel.n, at: CREATED_AT + 3 } as TaskEvent);
    expect([taskStateOf(s.snapshot.value), s.snapshot.status, notified(s)]).toEqual(['canceled', 'done', []]);
  });

  it('a whole lifecycle: create, accept, ask for input, answer, complete', () => {
    let r = start(task, input(R), CREATED_AT).snapshot;
    let a = start(task, input(A), CREATED_AT).snapshot;
    const events: TaskEvent[] = [
      { type: 'ACCEPT', by: A, at: CREATED_AT + 1 },
      { type: 'REQUEST_INPUT', by: A, at: CREATED_AT + 2, message: 'Which README?' },
      { type: 'PROVIDE_INPUT', by: R, at: CREATED_AT + 3, parts: [{ kind: 'text', text: 'OpenMolt' }] },
      { type: 'COMPLETE', by: A, at: CREATED_AT + 4, artifacts: [{ id: 'a1', name: 'summary', parts: [{ kind: 'text', text: 'OpenMolt is…' }], createdAt: 1 }] },
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
    // The assignee's copy shows completed and waits for the requester's confirmation of its message 3 to be final.
    expect([taskStateOf(a.value), a.status, contextOf(a).sent]).toEqual(['completed', 'active', 3]);
    a = step(task, a, { type: 'PEER_CONFIRMED', by: R, confirms: 3, at: CREATED_AT + 5 } as TaskEvent).snapshot;
    expect(a.status).toBe('done');
    expect(contextOf(r)).toMatchObject({
      input: [{ kind: 'text', text: 'hello' }, { kind: 'text', text: 'OpenMolt' }],
      artifacts: [{ id: 'a1', name: 'summary', parts: [{ kind: 'text', text: 'OpenMolt is…' }], createdAt: 1 }],
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
    expect(notified(fired)).toEqual([{ taskId: spec().id, to: A, n: 3, message: { type: 'DEADLINE_PASSED', by: R, at: deadline } }]);
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
