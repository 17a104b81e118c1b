// A task's stream of events — token chunks, tool calls, progress, artifacts, status notes — beside its lifecycle.
//
// The assignee is the author: PublishTaskEvent appends to the task's log `task-events/<id>` (gap-free numbers
// from 1: the event's `seq`), then publishes it on the GossipSub topic `a2a/tasks/<id>/events`, several events
// of one turn in one message, signed by the assignee's key (gossipsub StrictSign). The requester's daemon follows
// the topic while the task is open and appends what it receives to its own copy of the log, in order; a gap (a
// message lost or early on the mesh) is filled by asking the assignee (`task.events`), which keeps the log. The
// assignee's ending carries its last seq, and the requester fetches up to it before applying the ending, so a
// finished task's copy is complete (tasks.ts).
//
// Readers (`feed`) read the log from any seq and are woken by appends: stored history, then live, with no gap and
// no repeat, and a slow reader only falls behind in the log, never out of a buffer.
import * as cbor from 'cbor-x';
import type { Clock } from '../../runtime/clock.ts';
import { KeyedSerial } from '../../runtime/keyed-serial.ts';
import { invalid } from '../../runtime/errors.ts';
import type { EventStore, StoredEvent } from '../../runtime/event-store.ts';
import { TASK_STATES, type JsonValue, type TaskArtifact, type TaskState } from '../../machines/task.ts';
import type { Topics } from '../transport/topics.ts';
import { ContentBudget, jsonValue, parseArtifacts, TASK_EVENTS_ENVELOPE, TASK_ID, TASK_LIMITS } from './protocol.ts';

export type StreamEventKind = 'token' | 'tool-call' | 'progress' | 'artifact' | 'status';
const KINDS: readonly StreamEventKind[] = ['token', 'tool-call', 'progress', 'artifact', 'status'];

export interface StreamEvent {
  taskId: string;
  seq: number;
  kind: StreamEventKind;
  text: string;
  data?: JsonValue;
  artifact?: TaskArtifact;
  progress?: number;
  state?: TaskState;
  /** DID of the assignee, who wrote it. */
  author: string;
  /** The author's clock. */
  at: number;
}

/** The content of an event, as its author gives it. */
export type StreamEventContent = Omit<StreamEvent, 'taskId' | 'seq' | 'author' | 'at'>;

export const EVENTS_PREFIX = 'task-events/';
export const eventsTopic = (taskId: string): string => `a2a/tasks/${taskId}/events`;
/** Most events one `task.events` answer carries (and roughly its size), so an answer stays one envelope. */
const FETCH_MAX = 1000;
const FETCH_MAX_BYTES = 512 * 1024;

export interface EventsTransport {
  request(toDid: string, type: string, payload: unknown, options: { timeoutMs: number }): Promise<{ payload: unknown }>;
  handle(type: string, handler: (env: { from: string; payload: unknown }) => Promise<{ type: string; payload: unknown }>): void;
}

export interface TaskEventsOptions {
  did: string;
  store: EventStore;
  clock: Clock;
  topics: Topics;
  transport: EventsTransport;
  /** Who may read a task's events from us: the task's requester, if the task is ours to author. */
  requesterOf(taskId: string): string | undefined;
}

export class TaskEvents {
  readonly #o: TaskEventsOptions;
  /** Woken after every append to a task's log (and when its task moves, see `touch`). */
  readonly #waiters = new Map<string, Set<() => void>>();
  /** Appends per task run one after another, so numbering and gap checks see settled heads. */
  readonly #appends = new KeyedSerial();
  /** Events appended this turn, per task, published together. */
  readonly #outgoing = new Map<string, StreamEvent[]>();
  readonly #followed = new Map<string, () => void>();
  /** Events from the mesh shown to readers while their append is under way, in order (see #ingest). */
  readonly #tails = new Map<string, StreamEvent[]>();
  /** Events of ours waiting for the task's next append (see publish). */
  readonly #pending = new Map<string, { events: Omit<StreamEvent, 'seq'>[]; appended: Promise<number> }>();

  constructor(o: TaskEventsOptions) {
    this.#o = o;
    o.transport.handle(TASK_EVENTS_ENVELOPE, (env) => this.#onFetch(env.from, env.payload));
  }

  head(taskId: string): number {
    return this.#o.store.head(EVENTS_PREFIX + taskId);
  }

  /** Resolves when every append queued for the task so far has landed (its head is final for now). */
  idle(taskId: string): Promise<void> {
    return this.#appends.idle(taskId);
  }

  /**
   * Append one event of ours (we are the assignee) and publish it; resolves with its seq once durable. Events
   * published while an append is under way go together in the next one: one transaction (one fsync) for many.
   */
  publish(taskId: string, content: StreamEventContent): Promise<number> {
    const event: Omit<StreamEvent, 'seq'> = { ...content, taskId, author: this.#o.did, at: this.#o.clock.now() };
    let group = this.#pending.get(taskId);
    if (!group) {
      const events: Omit<StreamEvent, 'seq'>[] = [];
      const appended = this.#appends.run(taskId, async () => {
        this.#pending.delete(taskId); // later events start the next group
        const last = await this.#o.store.append(EVENTS_PREFIX + taskId, events.map(toStored));
        const first = last - events.length + 1;
        this.#wake(taskId);
        events.forEach((e, i) => this.#queuePublish({ ...e, seq: first + i }));
        return first;
      });
      group = { events, appended };
      this.#pending.set(taskId, group);
    }
    const index = group.events.push(event) - 1;
    return group.appended.then((first) => first + index);
  }

  /** As the requester: take the assignee's events from the mesh while the task is open. */
  follow(taskId: string, assignee: string): void {
    if (this.#followed.has(taskId)) return;
    const off = this.#o.topics.subscribe(eventsTopic(taskId), (from, data) => {
      if (from !== assignee) return; // only the assignee writes a task's events
      let events: StreamEvent[];
      try {
        events = parseEventBatch(data, taskId, assignee);
      } catch {
        return;
      }
      void this.#ingest(taskId, assignee, events).catch(() => undefined); // a gap is filled later: next batch or the ending
    });
    this.#followed.set(taskId, off);
  }

  unfollow(taskId: string): void {
    this.#followed.get(taskId)?.();
    this.#followed.delete(taskId);
  }

  /** As the requester: make our copy hold everything up to `upTo`, fetching from the assignee. Throws if it cannot. */
  catchUp(taskId: string, assignee: string, upTo: number): Promise<void> {
    return this.#appends.run(taskId, async () => {
      while (this.head(taskId) < upTo) {
        const after = this.head(taskId);
        const reply = await this.#o.transport.request(assignee, TASK_EVENTS_ENVELOPE, { taskId, after, limit: FETCH_MAX }, { timeoutMs: 10_000 });
        const p = reply.payload as { events?: unknown; error?: unknown };
        if (typeof p?.error === 'string') throw new Error(`the assignee did not send the task's events: ${p.error.slice(0, 200)}`);
        const events = parseEvents(p?.events, taskId, assignee);
        const run = contiguous(events, after);
        if (run.length === 0) throw new Error(`the assignee sent no events after ${after} (expected up to ${upTo})`);
        await this.#append(taskId, run, after);
      }
    });
  }

  /** Wakes the task's readers without an append (its task moved, e.g. ended: a reader may be done). */
  touch(taskId: string): void {
    this.#wake(taskId);
  }

  /**
   * The task's events from `from`, stored then live, until `finished()` says no more will come and all are read.
   * `close()` ends it early (the reader went away).
   */
  feed(taskId: string, from: number, finished: () => boolean): AsyncIterable<StreamEvent> & { close(): void } {
    let closed = false;
    let wake: (() => void) | undefined;
    const waiter = () => wake?.();
    const events = this;
    return {
      close() {
        closed = true;
        waiter();
      },
      async *[Symbol.asyncIterator]() {
        events.#waitersOf(taskId).add(waiter);
        try {
          let next = from;
          while (!closed) {
            const woken = new Promise<void>((r) => (wake = r));
            let read = 0;
            for (const e of events.#o.store.read(EVENTS_PREFIX + taskId, next)) {
              yield fromStored(taskId, e);
              next = e.seq + 1;
              if (closed || ++read === FETCH_MAX) break;
            }
            if (read > 0) continue;
            // Then what arrived and is being appended (it continues the log; the copy is taken before yielding).
            for (const e of [...(events.#tails.get(taskId) ?? [])]) {
              if (e.seq !== next) continue;
              yield e;
              next = e.seq + 1;
              read += 1;
              if (closed) break;
            }
            if (read > 0) continue;
            // Read everything there is: done if nothing more can come, else wait for the next append.
            if (finished() && next > events.head(taskId)) return;
            await woken;
          }
        } finally {
          events.#waitersOf(taskId).delete(waiter);
        }
      },
    };
  }

  // ── Internals ──────────────────────────────────────────────────────────────────────────────────────────


  /** Events from the mesh: append what continues our copy; fetch what is missing before it. */
  /**
   * Events from the mesh: what continues our copy is shown to readers at once (the tail) and appended; what is
   * missing before it is fetched from the assignee. Readers need not wait for our fsync: the assignee appended
   * each event durably before publishing it, and its log is the truth we recover from — after a crash we fetch
   * the same events again, under the same numbers.
   */
  #ingest(taskId: string, assignee: string, events: StreamEvent[]): Promise<void> {
    const tail = this.#tails.get(taskId) ?? [];
    const known = tail.at(-1)?.seq ?? this.head(taskId);
    const run = contiguous(events.filter((e) => e.seq > known), known);
    if (run.length === 0) {
      if (events.some((e) => e.seq > known + 1)) {
        // A gap: what came before these was lost or is late. Ask the assignee for it all (these included).
        const last = Math.max(...events.map((e) => e.seq));
        void this.catchUp(taskId, assignee, last).catch(() => undefined);
      }
      return Promise.resolve();
    }
    this.#tails.set(taskId, [...tail, ...run]);
    this.#wake(taskId);
    return this.#appends.run(taskId, async () => {
      try {
        await this.#append(taskId, run, run[0]!.seq - 1);
      } finally {
        // Stored now (or not at all: then the gap is fetched again later); readers find it in the log.
        const rest = (this.#tails.get(taskId) ?? []).filter((e) => e.seq > run.at(-1)!.seq && e.seq > this.head(taskId));
        if (rest.length > 0) this.#tails.set(taskId, rest);
        else this.#tails.delete(taskId);
      }
    });
  }


  async #append(taskId: string, run: StreamEvent[], head: number): Promise<void> {
    await this.#o.store.append(EVENTS_PREFIX + taskId, run.map(toStored), { expectedHead: head });
    this.#wake(taskId);
  }

  #queuePublish(e: StreamEvent): void {
    const queued = this.#outgoing.get(e.taskId);
    if (queued) return void queued.push(e);
    this.#outgoing.set(e.taskId, [e]);
    setImmediate(() => {
      const batch = this.#outgoing.get(e.taskId) ?? [];
      this.#outgoing.delete(e.taskId);
      void this.#o.topics.publish(eventsTopic(e.taskId), cbor.encode({ taskId: e.taskId, events: batch.map(toWire) }));
    });
  }

  async #onFetch(from: string, payload: unknown): Promise<{ type: string; payload: unknown }> {
    const p = payload as { taskId?: unknown; after?: unknown; limit?: unknown } | null;
    const taskId = typeof p?.taskId === 'string' && TASK_ID.test(p.taskId) ? p.taskId : undefined;
    if (!taskId || typeof p?.after !== 'number' || !Number.isSafeInteger(p.after) || p.after < 0) {
      return { type: 'task.events.reply', payload: { error: 'bad request' } };
    }
    if (this.#o.requesterOf(taskId) !== from) return { type: 'task.events.reply', payload: { error: `not the requester of ${taskId}` } };
    const limit = typeof p.limit === 'number' ? Math.min(Math.max(1, p.limit), FETCH_MAX) : FETCH_MAX;
    const events: unknown[] = [];
    let bytes = 0;
    for (const e of this.#o.store.read(EVENTS_PREFIX + taskId, p.after + 1)) {
      const w = toWire(fromStored(taskId, e));
      bytes += cbor.encode(w).byteLength;
      if (events.length > 0 && bytes > FETCH_MAX_BYTES) break;
      events.push(w);
      if (events.length >= limit) break;
    }
    return { type: 'task.events.reply', payload: { events, last: this.head(taskId) } };
  }

  #waitersOf(taskId: string): Set<() => void> {
    let set = this.#waiters.get(taskId);
    if (!set) this.#waiters.set(taskId, (set = new Set()));
    return set;
  }

  #wake(taskId: string): void {
    const set = this.#waiters.get(taskId);
    if (!set) return;
    if (set.size === 0) return void this.#waiters.delete(taskId);
    for (const w of set) w();
  }
}

/** The events after `head` that continue it without a gap, in order. */
function contiguous(events: StreamEvent[], head: number): StreamEvent[] {
  const bySeq = new Map(events.map((e) => [e.seq, e]));
  const run: StreamEvent[] = [];
  for (let s = head + 1; bySeq.has(s); s++) run.push(bySeq.get(s)!);
  return run;
}

function toStored(e: Omit<StreamEvent, 'seq'>) {
  const { kind, at, taskId: _t, ...data } = e as StreamEvent;
  const { seq: _s, ...rest } = data as Partial<StreamEvent>;
  return { type: kind, at, data: rest };
}

function fromStored(taskId: string, e: StoredEvent): StreamEvent {
  return { taskId, seq: e.seq, kind: e.type as StreamEventKind, at: e.at, ...(e.data as Omit<StreamEvent, 'taskId' | 'seq' | 'kind' | 'at'>) };
}

/** On the wire: the event without its task id (the batch carries it). */
function toWire(e: StreamEvent) {
  const { taskId: _t, ...rest } = e;
  return rest;
}

function parseEventBatch(data: Uint8Array, taskId: string, assignee: string): StreamEvent[] {
  if (data.byteLength > 2 * 1024 * 1024) throw invalid('events', 'too large');
  const batch = cbor.decode(data) as { taskId?: unknown; events?: unknown };
  if (batch?.taskId !== taskId) throw invalid('events.taskId', 'wrong task');
  return parseEvents(batch.events, taskId, assignee);
}

/** Remote events are checked field by field; the author must be the task's assignee. */
export function parseEvents(v: unknown, taskId: string, assignee: string): StreamEvent[] {
  if (!Array.isArray(v) || v.length > FETCH_MAX * 2) throw invalid('events', 'not a list of events');
  const budget = new ContentBudget();
  return v.map((raw, i): StreamEvent => {
    const e = raw as Record<string, unknown>;
    const f = `events[${i}]`;
    if (typeof e !== 'object' || e === null) throw invalid(f, 'not an event');
    if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) throw invalid(`${f}.seq`, 'not a number');
    if (!KINDS.includes(e.kind as StreamEventKind)) throw invalid(`${f}.kind`, 'unknown kind');
    if (typeof e.text !== 'string' || e.text.length > TASK_LIMITS.contentBytes) throw invalid(`${f}.text`, 'not a string');
    if (e.author !== assignee) throw invalid(`${f}.author`, 'not the assignee');
    if (!Number.isSafeInteger(e.at)) throw invalid(`${f}.at`, 'not a time');
    if (e.progress !== undefined && (typeof e.progress !== 'number' || !(e.progress >= 0 && e.progress <= 1))) throw invalid(`${f}.progress`, 'not in 0..1');
    budget.add(f, Buffer.byteLength(e.text));
    return {
      taskId,
      seq: e.seq as number,
      kind: e.kind as StreamEventKind,
      text: e.text,
      ...(e.data === undefined ? {} : { data: jsonValue(`${f}.data`, e.data) }),
      ...(e.artifact === undefined ? {} : { artifact: parseArtifacts(`${f}.artifact`, [e.artifact], budget)[0]! }),
      ...(e.progress === undefined ? {} : { progress: e.progress as number }),
      ...(TASK_STATES.includes(e.state as TaskState) ? { state: e.state as TaskState } : {}),
      author: assignee,
      at: e.at as number,
    };
  });
}
