// The tasks actor: one supervised task machine (machines/task.ts) per unfinished task, on stream `task/<id>`,
// on both the requester's and the assignee's daemon.
//
// It gives the machine's effect, `notifyPeer`, its meaning — a delivery in the task outbox (`task-outbox/<id>.<n>`,
// signed, retried, acknowledged once the other copy has it durably) — and serves the other side's `task`
// envelopes: in order (sequencePeerMessage), each exactly once, with the envelope's authenticated sender as `by`.
// When a delivery of this copy's ending is acknowledged it feeds PEER_CONFIRMED back (see "Crossing verdicts").
// Local readers (get, list, wait, incoming) read snapshots; live ones follow the actors' transitions.
import type { AnyEventObject, AnyMachineSnapshot } from 'xstate';
import type { Clock, Random } from '../../runtime/clock.ts';
import { ApiError, invalid, notFound } from '../../runtime/errors.ts';
import { liveRow, type EventStore } from '../../runtime/event-store.ts';
import { newId } from '../../runtime/ids.ts';
import { foldStream, PersistedActor, type Transition } from '../../runtime/persisted-actor.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import { SupervisedActors } from '../../runtime/supervised-actors.ts';
import { KeyedSerial } from '../../runtime/keyed-serial.ts';
import { step, type Effect } from '../../runtime/transitions.ts';
import type { OutboxDeliveryContext } from '../../machines/outbox-delivery.ts';
import {
  checkTaskCreation,
  checkTaskEvent,
  eventForTarget,
  isClosing,
  isTerminal,
  sequencePeerMessage,
  task,
  taskStateOf,
  type JsonObject,
  type NotifyPeerParams,
  type TaskCommand,
  type TaskContext,
  type TaskInput,
  type TaskPart,
  type TaskSpec,
  type TaskState,
  type TaskUpdate,
} from '../../machines/task.ts';
import { MAX_TTL_MS } from '../messaging/protocol.ts';
import { Outbox, type DeliveryKind, type EnvelopeSender } from '../messaging/outbox.ts';
import { TASK_ENVELOPE, TASK_ID, parseTaskWireMessage, type TaskAck, type TaskWireMessage } from './protocol.ts';
import { TaskEvents, type StreamEvent, type StreamEventContent } from './task-events.ts';
import type { Topics } from '../transport/topics.ts';

export const TASK_PREFIX = 'task/';
const TASK_OUTBOX_PREFIX = 'task-outbox/';
/** The counter group of tasks by state (as shown). */
const TASK_COUNTS = 'task';
/** How long the direct first attempt of a transition may take before it is handed to the outbox. */
const DIRECT_ATTEMPT_MS = 3_000;
/** How long an early message waits for the ones before it (usually in flight beside it) before the sender retries. */
const EARLY_WAIT_MS = 2_000;

export type TaskRole = 'requester' | 'assignee';

/** A task as callers see it (the gRPC `Task`). */
export interface TaskInfo {
  id: string;
  requester: string;
  assignee: string;
  role: TaskRole;
  skill: string;
  metadata: JsonObject;
  input: TaskPart[];
  artifacts: TaskContext['artifacts'];
  state: TaskState;
  statusMessage: string;
  createdAt: number;
  updatedAt: number;
  deadline: number | null;
  lastEventSeq: number;
}

export interface TaskFilter {
  role?: TaskRole;
  states?: TaskState[];
  skill?: string;
  peer?: string;
  pageSize: number;
  /** The id of the last task of the previous page (tasks come newest first). */
  after?: string;
}

/** Sees every task machine's creation and transitions here (the inspector, actors/inspector.ts). */
export interface TaskObserver {
  actor(id: string, snapshot: AnyMachineSnapshot): void;
  transition(id: string, event: { type: string }, snapshot: AnyMachineSnapshot): void;
}

export interface TasksTransport extends EnvelopeSender {
  isConnected(did: string): boolean;
  handle(type: string, handler: (env: { from: string; to: string; payload: unknown }) => Promise<{ type: string; payload: unknown }>): void;
}

export interface TasksOptions {
  did: string;
  store: EventStore;
  clock: Clock;
  random: Random;
  transport: TasksTransport;
  /** The daemon's supervisor: the tasks node joins it. */
  supervisor: Supervisor;
  retry: { initialMs: number; maxMs: number };
  /** GossipSub, for the tasks' event streams (token chunks, …). */
  topics: Topics;
}

/** The assignee's endings: they carry the last event number, which the requester holds before it applies them. */
const ENDINGS = new Set(['COMPLETE', 'FAIL', 'REJECT', 'ABORT']);

/** Task transitions, each in a `task` envelope: acknowledged `{ applied: true }`. */
const TASK_DELIVERY: DeliveryKind = {
  prefix: TASK_OUTBOX_PREFIX,
  request: (p) => ({ type: TASK_ENVELOPE, payload: p.content }),
  reply: (payload) => {
    const ack = payload as { applied?: unknown; error?: unknown; permanent?: unknown } | undefined;
    if (ack?.applied === true) return true;
    const error = typeof ack?.error === 'string' ? ack.error.slice(0, 500) : 'peer did not acknowledge the transition';
    return { error, permanent: ack?.permanent === true };
  },
};

export class Tasks {
  readonly outbox: Outbox;
  readonly #o: TasksOptions;
  readonly #events: TaskEvents;
  /** Supervises one actor per unfinished task (finished ones are evicted; their final snapshot is on disk). */
  readonly #actors: Supervisor;
  readonly #deliveries: Supervisor;
  readonly #live: SupervisedActors;
  /** Peer messages are served one at a time per task, so numbering is checked against settled state. */
  readonly #serving = new KeyedSerial();
  readonly #listeners = new Set<(t: TaskInfo) => void>();
  readonly #observers = new Set<TaskObserver>();

  private constructor(o: TasksOptions) {
    this.#o = o;
    this.#events = new TaskEvents({
      did: o.did, store: o.store, clock: o.clock, topics: o.topics, transport: o.transport,
      // Only a task's requester may read its events from us, and only from the assignee's copy.
      requesterOf: (id) => {
        const t = this.find(id);
        return t?.role === 'assignee' ? t.requester : undefined;
      },
    });
    this.#actors = new Supervisor(`${o.supervisor.path}/tasks`, { clock: o.clock });
    this.#live = new SupervisedActors({
      supervisor: this.#actors,
      actorOptions: (id, onCrash) => this.#actorOptions(id, onCrash),
      onFailed: (id, reason) => this.#abort(id, reason),
      onTransition: (id, actor, t) => this.#onTransition(id, actor, t),
    });
    this.#deliveries = new Supervisor(`${o.supervisor.path}/tasks/outbox`, { clock: o.clock });
    this.outbox = new Outbox({
      store: o.store, clock: o.clock, random: o.random, transport: o.transport, supervisor: this.#deliveries,
      kind: TASK_DELIVERY,
      onDelivered: (d) => this.#onDelivered(d),
    });
  }

  /** Registers the `task` handler: call before the transport starts; then `start()` once it runs. */
  static create(o: TasksOptions): Tasks {
    const tasks = new Tasks(o);
    o.transport.handle(TASK_ENVELOPE, (env) => tasks.#onTaskEnvelope(env.from, env.payload));
    return tasks;
  }

  /** Joins the supervision tree and resumes every unfinished task and undelivered transition. */
  async start(): Promise<void> {
    const actors = this.#actors;
    const deliveries = this.#deliveries;
    await this.#o.supervisor.startChild({
      id: 'tasks',
      start: () => ({
        stop: async () => {
          await deliveries.stop();
          await actors.stop();
        },
        tree: () => ({ ...actors.tree(), children: [...actors.tree().children, deliveries.tree()] }),
      }),
    });
    for (const stream of [...this.#o.store.liveStreams(TASK_PREFIX)]) await this.#live.resume(stream.slice(TASK_PREFIX.length));
    for (const [, actor] of this.#live.entries()) this.#followEvents(actor.snapshot);
    await this.outbox.start();
    // An ending whose acknowledgement landed just before a crash: confirm it now.
    for (const [, actor] of this.#live.entries()) {
      const ctx = actor.snapshot.context as TaskContext;
      if (!isClosing(actor.snapshot.value)) continue;
      const [delivery] = this.outbox.list({ id: `${ctx.id}.${ctx.sent}` });
      if (delivery?.state === 'delivered') await sendTo(actor, { type: 'PEER_CONFIRMED', by: ctx.requester, confirms: ctx.sent });
    }
  }

  peerConnected(did: string): void {
    this.outbox.peerConnected(did);
  }

  // ── Commands ───────────────────────────────────────────────────────────────────────────────────────────

  /** Create a task for `to` (this daemon is the requester). Resolves once it is durably in the log. */
  async create(req: { to: string; skill: string; metadata: JsonObject; input: TaskPart[]; deadline?: number; taskId?: string }): Promise<TaskInfo> {
    if (req.to === this.#o.did) throw invalid('to', 'is this daemon\'s own DID; give the task to another agent');
    const now = this.#o.clock.now();
    if (req.deadline !== undefined && req.deadline <= now) throw invalid('deadline_ms', `is in the past (now is ${new Date(now).toISOString()})`);
    if (req.deadline !== undefined && req.deadline > now + MAX_TTL_MS) throw invalid('deadline_ms', 'is more than 30 days away');
    const id = req.taskId ?? newId('task');
    if (req.taskId !== undefined) {
      if (!TASK_ID.test(req.taskId)) throw invalid('task_id', `"${req.taskId}" is not a task id (task_ followed by 26 characters)`);
      // Retrying a creation with the same id never duplicates it.
      const existing = this.#snapshot(id);
      if (existing) {
        const ctx = existing.context as TaskContext;
        if (ctx.requester !== this.#o.did || ctx.assignee !== req.to || ctx.skill !== req.skill) {
          throw new ApiError('ALREADY_EXISTS', `task ${id} exists with other parties or skill`);
        }
        return this.#info(existing);
      }
    }
    const spec: TaskSpec = {
      id, requester: this.#o.did, assignee: req.to, skill: req.skill, metadata: req.metadata, input: req.input,
      ...(req.deadline === undefined ? {} : { deadline: req.deadline }), createdAt: now,
    };
    const actor = await this.#start(id, { ...spec, self: this.#o.did });
    this.#followEvents(actor.snapshot);
    return this.#info(actor.snapshot);
  }

  /** Move a task to `target` (UpdateTask): the machine decides whether this party may, from where it is. */
  async update(id: string, target: TaskState, u: TaskUpdate): Promise<TaskInfo> {
    const actor = this.#require(id);
    const current = taskStateOf(actor.snapshot.value);
    if (u.parts.length > 0) {
      const answering = target === 'working' && (current === 'input-required' || current === 'auth-required');
      if (!answering && target !== 'completed') {
        throw invalid('parts', 'only answer input-required / auth-required (requester), or are the output of completed (assignee)');
      }
      // The assignee's parts are its output: one more artifact.
      if (target === 'completed') u = { ...u, parts: [], artifacts: [...u.artifacts, { id: newId('art'), name: 'output', parts: u.parts, createdAt: this.#o.clock.now() }] };
    }
    const command = eventForTarget(current, target, this.#o.did, u);
    if (!command) throw new ApiError('FAILED_PRECONDITION', `task ${id} cannot move from ${current} to ${target}`);
    return this.#command(actor, command);
  }

  async cancel(id: string, reason: string): Promise<TaskInfo> {
    return this.#command(this.#require(id), { type: 'CANCEL', by: this.#o.did, ...(reason ? { reason } : {}) });
  }

  async #command(actor: PersistedActor, command: TaskCommand): Promise<TaskInfo> {
    const ctx = actor.snapshot.context as TaskContext;
    const verdict = checkTaskEvent(actor.snapshot, command);
    const state = taskStateOf(actor.snapshot.value);
    if (verdict === 'unauthorized') {
      const who = ctx.self === ctx.requester ? 'the requester' : 'the assignee';
      throw new ApiError('PERMISSION_DENIED', `${who} may not ${command.type.toLowerCase().replace('_', ' ')} task ${ctx.id} (only the other party may)`);
    }
    if (verdict === 'illegal') {
      throw new ApiError('FAILED_PRECONDITION', `task ${ctx.id} is ${state}${isClosing(actor.snapshot.value) || actor.done ? ' (final)' : ''}: ${command.type} is not possible now`);
    }
    const assigneeHere = ctx.self === ctx.assignee;
    const ending = assigneeHere && ENDINGS.has(command.type);
    if (ending) {
      // Every event published so far is numbered before the ending says how many there are.
      await this.#events.idle(ctx.id);
      command = { ...command, lastEventSeq: this.#events.head(ctx.id) };
    }
    const sending = sendTo(actor, command);
    // The assignee's other moves also go into the task's event stream, as STATUS events, so a subscriber sees the
    // lifecycle among the tokens. Issued in the same turn as the transition's append, the two share one commit.
    // (Not the ending: the stream ends with the task, and its end is the task's state.)
    if (assigneeHere && !ending) {
      const next = step(task, actor.snapshot, { ...command, at: this.#o.clock.now() }).snapshot;
      const status = { kind: 'status' as const, text: (next.context as TaskContext).statusMessage, state: taskStateOf(next.value) };
      void this.#events.publish(ctx.id, status).catch(() => undefined);
    }
    const { accepted } = await sending;
    // Something else moved it between the check and the append.
    if (!accepted) throw new ApiError('FAILED_PRECONDITION', `task ${ctx.id} moved on (now ${taskStateOf(actor.snapshot.value)}); ${command.type} is not possible now`);
    return this.#info(actor.snapshot);
  }

  /** Tasks by state, from the counters kept with every transition (no stream is visited). */
  counts(): Partial<Record<TaskState, number>> {
    return this.#o.store.counts(TASK_COUNTS) as Partial<Record<TaskState, number>>;
  }

  // ── Queries ────────────────────────────────────────────────────────────────────────────────────────────

  /** The task, or undefined when we hold no task of that id. */
  find(id: string): TaskInfo | undefined {
    const snapshot = TASK_ID.test(id) ? this.#snapshot(id) : undefined;
    return snapshot && this.#info(snapshot);
  }

  get(id: string): TaskInfo {
    if (!TASK_ID.test(id)) throw invalid('task_id', `"${id}" is not a task id (task_ followed by 26 characters)`);
    const snapshot = this.#snapshot(id);
    if (!snapshot) throw notFound(`task ${id}`);
    return this.#info(snapshot);
  }

  /** Newest first, filtered, one page; `after` is the previous page's last id. */
  list(f: TaskFilter): { tasks: TaskInfo[]; next?: string } {
    const out: TaskInfo[] = [];
    const streams = this.#o.store.listStreams(TASK_PREFIX);
    for (let i = streams.length - 1; i >= 0; i--) {
      const id = streams[i]!.slice(TASK_PREFIX.length);
      if (f.after !== undefined && id >= f.after) continue;
      const snapshot = this.#snapshot(id);
      if (!snapshot) continue;
      const t = this.#info(snapshot);
      if (f.role && t.role !== f.role) continue;
      if (f.states?.length && !f.states.includes(t.state)) continue;
      if (f.skill && t.skill !== f.skill) continue;
      if (f.peer && (t.role === 'requester' ? t.assignee : t.requester) !== f.peer) continue;
      if (out.length === f.pageSize) return { tasks: out, next: out[out.length - 1]!.id };
      out.push(t);
    }
    return { tasks: out };
  }

  /** Calls `onChange` with every task after each of its transitions here (and each task created by a peer). */
  subscribe(onChange: (t: TaskInfo) => void): () => void {
    this.#listeners.add(onChange);
    return () => this.#listeners.delete(onChange);
  }

  /** Reports every live task now, each one created later, and every transition (see TaskObserver). */
  observe(observer: TaskObserver): () => void {
    for (const [id, actor] of this.#live.entries()) observer.actor(TASK_PREFIX + id, actor.snapshot);
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /**
   * Resolves with the task once it is in a final state (as shown) — or, with `untilInputRequired`, waits for the
   * requester's answer — or as it is after `timeoutMs`.
   */
  async wait(id: string, timeoutMs: number, signal?: AbortSignal, options: { untilInputRequired?: boolean } = {}): Promise<{ task: TaskInfo; timedOut: boolean }> {
    const done = (t: TaskInfo) => isTerminal(t.state) || (options.untilInputRequired === true && (t.state === 'input-required' || t.state === 'auth-required'));
    const now = this.get(id);
    if (done(now)) return { task: now, timedOut: false };
    return new Promise((resolve) => {
      const finish = (timedOut: boolean) => {
        off();
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve({ task: this.get(id), timedOut });
      };
      const off = this.subscribe((t) => t.id === id && done(t) && finish(false));
      const timer = setTimeout(() => finish(true), timeoutMs);
      const onAbort = () => finish(true);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The assignee publishes one event of the task's stream; resolves with its number once durable. */
  async publishEvent(id: string, content: StreamEventContent): Promise<number> {
    const actor = this.#require(id);
    const ctx = actor.snapshot.context as TaskContext;
    if (ctx.self !== ctx.assignee) throw new ApiError('PERMISSION_DENIED', `only the assignee publishes task ${id}'s events (we are its requester)`);
    const state = taskStateOf(actor.snapshot.value);
    if (isTerminal(state)) throw new ApiError('FAILED_PRECONDITION', `task ${id} is ${state}: its event stream is closed`);
    return this.#events.publish(id, content);
  }

  /** The task's events from `fromSeq`: stored, then live, until the task has ended and every event is read. */
  events(id: string, fromSeq: number): AsyncIterable<StreamEvent> & { close(): void } {
    this.get(id); // NOT_FOUND, INVALID_ARGUMENT
    return this.#events.feed(id, fromSeq, () => this.#snapshot(id)?.status === 'done' || isTerminal(this.get(id).state));
  }

  // ── The other side's envelopes ─────────────────────────────────────────────────────────────────────────

  async #onTaskEnvelope(from: string, payload: unknown): Promise<{ type: string; payload: TaskAck }> {
    let wire: TaskWireMessage;
    try {
      wire = parseTaskWireMessage(payload, from);
    } catch (err) {
      return { type: 'task.ack', payload: { error: err instanceof Error ? err.message : String(err), permanent: true } };
    }
    // An early message waits for the ones before it (usually right behind it) before it joins the line: in the
    // line it would hold up the very message it waits for.
    await this.#ready(wire.taskId, wire.n);
    // One message at a time per task: the next waits for the one before it to settle.
    try {
      return { type: 'task.ack', payload: await this.#serving.run(wire.taskId, () => this.#serve(wire)) };
    } catch (err) {
      // Our own failure (e.g. the store): the sender retries.
      return { type: 'task.ack', payload: { error: err instanceof Error ? err.message : String(err), permanent: false } };
    }
  }

  async #serve({ taskId, n, message }: TaskWireMessage): Promise<TaskAck> {
    const from = message.by;
    if (message.type === 'TASK_CREATED') {
      const spec = message.task;
      if (n !== 1) return { error: 'a task is created by message 1', permanent: true };
      if (checkTaskCreation(spec, from) !== 'ok') return { error: 'only the requester may create a task', permanent: true };
      if (spec.assignee !== this.#o.did) return { error: 'this task is not addressed to us', permanent: true };
      const existing = this.#snapshot(taskId);
      if (existing) {
        const ctx = existing.context as TaskContext;
        return ctx.requester === from && ctx.self === ctx.assignee ? { applied: true } : { error: `task id ${taskId} is taken`, permanent: true };
      }
      await this.#start(taskId, { ...spec, self: this.#o.did });
      return { applied: true };
    }

    const snapshot = this.#snapshot(taskId);
    // Its creation may still be on the way (deliveries are independent): the sender retries.
    if (!snapshot) return { error: `task ${taskId} is not known here yet`, permanent: false };
    const ctx = snapshot.context as TaskContext;
    const peer = ctx.self === ctx.requester ? ctx.assignee : ctx.requester;
    if (from !== peer) return { error: `not a party to task ${taskId}`, permanent: true };

    switch (sequencePeerMessage(ctx, snapshot.status === 'done', n)) {
      case 'repeat':
        return { applied: true };
      case 'early':
        return { error: `message ${n} of task ${taskId} is early; waiting for the ones before it`, permanent: false };
      case 'finished':
        return { error: `task ${taskId} is already ${taskStateOf(snapshot.value)}`, permanent: true };
    }
    const actor = this.#live.get(taskId);
    if (!actor) return { error: `task ${taskId} is not running here (failed past its crash budget?)`, permanent: false };
    if (ENDINGS.has(message.type) && from === ctx.assignee && message.lastEventSeq) {
      // The task is not over here until its event stream is complete here.
      try {
        await this.#events.catchUp(taskId, from, message.lastEventSeq);
      } catch (err) {
        return { error: `cannot end yet: ${err instanceof Error ? err.message : String(err)}`, permanent: false };
      }
    }
    const { accepted } = await sendTo(actor, { ...message, n });
    if (accepted) return { applied: true };
    // Refused (it crossed one of ours): consumed all the same, so the next message is not held up behind it.
    const why = checkTaskEvent(actor.snapshot, { ...message, n });
    await sendTo(actor, { type: 'PEER_REFUSED', by: from, n, refused: message.type });
    return { error: `${message.type} refused: task is ${taskStateOf(actor.snapshot.value)} (${why})`, permanent: true };
  }

  /**
   * Resolves once the task is here and message `n` is next for it, or finished (either way `#serve` can decide at
   * once), or after EARLY_WAIT_MS (then `#serve` answers "early" and the sender's outbox tries again later).
   */
  #ready(taskId: string, n: number): Promise<void> {
    const ready = () => {
      const snapshot = this.#snapshot(taskId);
      return snapshot !== undefined && (snapshot.status === 'done' || (snapshot.context as TaskContext).received >= n - 1);
    };
    if (n === 1 || ready()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        off();
        clearTimeout(timer);
        resolve();
      };
      const off = this.subscribe((t) => t.id === taskId && ready() && done());
      const timer = setTimeout(done, EARLY_WAIT_MS);
    });
  }


  /** The other copy acknowledged message n: if it was this copy's ending, the ending is final now. */
  #onDelivered(d: OutboxDeliveryContext): void {
    const { taskId, n } = d.content as { taskId: string; n: number };
    const actor = this.#live.get(taskId);
    if (actor && isClosing(actor.snapshot.value)) {
      sendTo(actor, { type: 'PEER_CONFIRMED', by: d.to, confirms: n }).catch(() => undefined);
    }
  }

  // ── Actors ─────────────────────────────────────────────────────────────────────────────────────────────

  async #start(id: string, input: TaskInput): Promise<PersistedActor> {
    const actor = await this.#live.create(id, input);
    for (const o of this.#observers) o.actor(TASK_PREFIX + id, actor.snapshot);
    this.#emit(actor.snapshot);
    return actor;
  }

  #onTransition(id: string, actor: PersistedActor, t: Transition): void {
    for (const o of this.#observers) o.transition(TASK_PREFIX + id, t.event, t.snapshot);
    this.#emit(t.snapshot);
    this.#events.touch(id);
    if (actor.done) this.#events.unfollow(id);
  }

  /**
   * Past its crash budget the task's actor is stopped for good: the task fails here with the reason (settled on
   * its stream without the actor), and the other side is told through the outbox like any transition of ours.
   */
  async #abort(id: string, reason: string): Promise<void> {
    const options = this.#actorOptions(id, () => undefined);
    const lastEventSeq = this.#events.head(id);
    await PersistedActor.settle(options, { type: 'ABORT', by: this.#o.did, reason: `task actor failed: ${reason}`.slice(0, 1000), lastEventSeq });
    this.#events.touch(id);
    // Every message not yet in the outbox goes now, in order (the settled actor performs nothing itself).
    for (const { key, value } of [...this.#o.store.rows<Effect>('effects', [options.stream])]) {
      await this.#perform(value).catch(() => undefined);
      await this.#o.store.writeRows([{ table: 'effects', key }]);
    }
    await this.#o.store.writeRows([liveRow(options.stream, false)]);
    const snapshot = this.#snapshot(id);
    if (snapshot) this.#emit(snapshot);
  }

  /** The requester takes the task's events from the mesh while the task is open. */
  #followEvents(snapshot: AnyMachineSnapshot): void {
    const ctx = snapshot.context as TaskContext;
    if (ctx.self === ctx.requester && snapshot.status !== 'done') this.#events.follow(ctx.id, ctx.assignee);
  }

  #actorOptions(id: string, onCrash: (e: unknown) => void) {
    return {
      store: this.#o.store,
      stream: TASK_PREFIX + id,
      machine: task,
      clock: this.#o.clock,
      onCrash,
      perform: (effect: Effect) => this.#perform(effect),
      count: { group: TASK_COUNTS, label: (s: AnyMachineSnapshot) => taskStateOf(s.value) },
      // A finished task's last messages to its peer must still go out (the peer converges on them).
      retireEffectsAtFinal: false,
    };
  }

  /**
   * `notifyPeer`: the transition goes to the peer directly first — the effect's row in the task's log is the
   * durable intent until this resolves, so a crash before then just sends it again (the peer answers a repeat as
   * applied). Answered: done, with one commit (the effect's acknowledgement, and PEER_CONFIRMED when it was our
   * ending). Not answered: it goes into the task outbox, durable, retried until the peer takes it.
   */
  async #perform(effect: Effect): Promise<AnyEventObject[]> {
    if (effect.type !== 'notifyPeer') throw new Error(`tasks: unknown effect ${effect.type}`);
    const p = effect.params as NotifyPeerParams;
    const id = `${p.taskId}.${p.n}`;
    // Performed again after a crash: already handed to the outbox.
    if (this.#o.store.head(TASK_OUTBOX_PREFIX + id) > 0) return [];
    const content = { taskId: p.taskId, n: p.n, message: p.message };
    if (this.#o.transport.isConnected(p.to)) {
      const outcome = await this.outbox.attempt(p.to, content, DIRECT_ATTEMPT_MS);
      if (outcome === true) return [{ type: 'PEER_CONFIRMED', by: p.to, confirms: p.n }];
    }
    await this.outbox.enqueue({
      id,
      from: this.#o.did,
      to: p.to,
      content,
      // Both copies must converge, so a transition waits for its peer as long as anything does.
      ttlMs: MAX_TTL_MS,
      retryInitialMs: this.#o.retry.initialMs,
      retryMaxMs: this.#o.retry.maxMs,
    });
    return [];
  }


  #require(id: string): PersistedActor {
    if (!TASK_ID.test(id)) throw invalid('task_id', `"${id}" is not a task id (task_ followed by 26 characters)`);
    const actor = this.#live.get(id);
    if (actor) return actor;
    const snapshot = this.#snapshot(id);
    if (!snapshot) throw notFound(`task ${id}`);
    if (snapshot.status === 'done') throw new ApiError('FAILED_PRECONDITION', `task ${id} is ${taskStateOf(snapshot.value)} (final)`);
    throw new ApiError('UNAVAILABLE', `task ${id} is not running (its actor failed); see health`);
  }

  #snapshot(id: string): AnyMachineSnapshot | undefined {
    return this.#live.get(id)?.snapshot ?? foldStream(this.#o.store, TASK_PREFIX + id, task).snapshot;
  }

  #emit(snapshot: AnyMachineSnapshot): void {
    if (this.#listeners.size === 0) return;
    const info = this.#info(snapshot);
    for (const l of this.#listeners) l(info);
  }

  #info(snapshot: AnyMachineSnapshot): TaskInfo {
    const c = snapshot.context as TaskContext;
    return {
      id: c.id,
      requester: c.requester,
      assignee: c.assignee,
      role: c.self === c.requester ? 'requester' : 'assignee',
      skill: c.skill,
      metadata: c.metadata,
      input: c.input,
      artifacts: c.artifacts,
      state: taskStateOf(snapshot.value),
      statusMessage: c.statusMessage,
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
      deadline: c.deadline,
      lastEventSeq: this.#events.head(c.id),
    };
  }
}

/** A task event, stamped with the time by the runtime. */
const sendTo = (actor: PersistedActor, event: TaskCommand) => actor.send(event);
