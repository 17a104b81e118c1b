// A persisted actor: an xstate machine bound to one event stream.
//
// The order of things is the whole point:
//   1. an event arrives (a command, a timer firing, the result of an effect) and is stamped with the clock;
//   2. the machine steps purely; an event the state does not handle is refused and nothing is written;
//   3. the event, the effects it asks for and its timer changes are appended in ONE durable transaction;
//   4. only then is the new state visible, timers armed, and effects performed.
// Recovery folds the log (from a snapshot when there is one) with every action discarded, re-arms timers from
// their persisted due times, and performs only effects that were never acknowledged. So replay never repeats
// a side effect, and a crash between append and effect re-runs the effect at most once more (effects are
// at-least-once; their receivers deduplicate).
import type { AnyEventObject, AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { Clock } from './clock.ts';
import { countMove, liveRow, type EventStore, type RowOp } from './event-store.ts';
import { INIT_EVENT, start, stateOf, step, stepStored, type Effect, type Step, type TimerOp } from './transitions.ts';

export interface PersistedActorOptions {
  store: EventStore;
  stream: string;
  machine: AnyStateMachine;
  clock: Clock;
  /** Performs one effect. Resolves with events to feed back, appended together with the effect's acknowledgement. */
  perform(effect: Effect): Promise<AnyEventObject[] | void>;
  /** Called when something inside the actor throws; the supervisor decides what happens next. */
  onCrash(error: unknown): void;
  /** Store a snapshot (a replay cache) every this many events; a final state always stores one. */
  snapshotEvery?: number;
  /**
   * Keep a durable count of this group's actors per state label (index rows ['count', group, label]), updated in
   * the same transaction as each change of label, so "how many are in each state" never needs a replay.
   */
  count?: { group: string; label(snapshot: AnyMachineSnapshot): string };
  /**
   * Whether reaching a final state retires effects still pending from earlier steps (default true: their results
   * no longer matter, e.g. an attempt of a delivery that has ended). False when every effect must happen even
   * after the end (a task's messages to its peer): a finished stream then stays in the live index, and is
   * resumed at start, until its last effect is acknowledged.
   */
  retireEffectsAtFinal?: boolean;
}

export interface Transition {
  seq: number;
  event: EventObject & { at: number };
  snapshot: AnyMachineSnapshot;
  effects: Effect[];
}

interface TimerRow {
  due: number;
  event: EventObject;
}

export class PersistedActor {
  readonly stream: string;
  readonly #o: PersistedActorOptions;
  #snapshot!: AnyMachineSnapshot;
  #seq = 0;
  #lastSnapshotSeq = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #timers = new Map<string, unknown>();
  /** Effects performed but not yet acknowledged, by row key: what a final state must retire. */
  #pendingEffects = new Map<string, (string | number)[]>();
  #listeners = new Set<(t: Transition) => void>();
  #stopped = false;
  #settledWaiters: (() => void)[] = [];
  /** Built by settle(): appends, but never performs effects or arms timers. */
  #inert = false;

  private constructor(options: PersistedActorOptions) {
    this.#o = options;
    this.stream = options.stream;
  }

  /** Start a new stream: the machine's initial state from `input`, then `firstEvents`, in one append. */
  static async create(options: PersistedActorOptions, input: unknown, firstEvents: EventObject[] = []): Promise<PersistedActor> {
    const actor = new PersistedActor(options);
    const at = options.clock.now();
    const init = start(options.machine, input, at);
    actor.#snapshot = init.snapshot;
    await actor.#enqueue(() => actor.#commit([{ event: { type: INIT_EVENT, at, input }, step: init }], firstEvents, [], 0));
    return actor;
  }

  /** Rebuild from the log. Throws if the stream does not exist. */
  static async recover(options: PersistedActorOptions): Promise<PersistedActor> {
    const actor = PersistedActor.#fold(options);
    const snapshot = actor.#snapshot;
    for (const { key, value } of options.store.rows<TimerRow>('timers', [options.stream])) {
      actor.#arm(String(key[1]), value.due, value.event);
    }
    // A finished actor performs nothing more, whatever rows a crash left behind — unless its effects outlive it.
    if (snapshot.status !== 'done' || options.retireEffectsAtFinal === false) {
      for (const { key, value } of options.store.rows<Effect>('effects', [options.stream])) actor.#perform(key, value);
    }
    return actor;
  }

  /**
   * Feed one event to a stream whose actor is not running — e.g. one its supervisor stopped for good — with the
   * same step and bookkeeping as `send()` (effects and timers retired, live index, counters), performing and
   * arming nothing.
   */
  static async settle(options: PersistedActorOptions, event: AnyEventObject): Promise<{ accepted: boolean; seq: number }> {
    const actor = PersistedActor.#fold(options);
    actor.#inert = true;
    for (const { key } of options.store.rows('effects', [options.stream])) actor.#pendingEffects.set(key.join('/'), key);
    return actor.#commit([], [event], [], actor.#seq);
  }

  static #fold(options: PersistedActorOptions): PersistedActor {
    const actor = new PersistedActor(options);
    const { snapshot, seq } = foldStream(options.store, options.stream, options.machine);
    if (!snapshot) throw new Error(`stream ${options.stream} does not exist`);
    actor.#snapshot = snapshot;
    actor.#seq = seq;
    actor.#lastSnapshotSeq = seq;
    return actor;
  }

  get snapshot(): AnyMachineSnapshot {
    return this.#snapshot;
  }

  get seq(): number {
    return this.#seq;
  }

  get done(): boolean {
    return this.#snapshot.status === 'done';
  }

  /** Resolves once no performed effect waits for its acknowledgement (e.g. before evicting a finished actor). */
  effectsSettled(): Promise<void> {
    if (this.#pendingEffects.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settledWaiters.push(resolve));
  }

  /** Feed an event. Resolves once it is durably appended (accepted) or refused by the current state. */
  send(event: EventObject): Promise<{ accepted: boolean; seq: number }> {
    return this.#enqueue(() => this.#commit([], [event], [], this.#seq)).catch((err: unknown) => {
      this.#o.onCrash(err);
      throw err;
    });
  }

  /** Resolves when every event queued so far has been appended or refused. */
  idle(): Promise<void> {
    return this.#queue.then(() => undefined);
  }

  subscribe(listener: (t: Transition) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Stop timers and ignore late effect results; what is persisted stays for the next recovery. Resolves once
   * an append already under way has landed, so a successor recovering the stream sees it.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const handle of this.#timers.values()) this.#o.clock.clearTimeout(handle);
    this.#timers.clear();
    await this.#queue;
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #commit(
    prepared: { event: EventObject & { at: number; input?: unknown }; step: Step }[],
    events: EventObject[],
    rows: RowOp[],
    expectedHead: number,
  ): Promise<{ accepted: boolean; seq: number }> {
    if (this.#stopped) throw new Error(`actor ${this.stream} is stopped`);
    const steps = [...prepared];
    let snapshot = this.#snapshot;
    for (const e of prepared) snapshot = e.step.snapshot;
    for (const raw of events) {
      const event = { ...raw, at: this.#o.clock.now() };
      const s = step(this.#o.machine, snapshot, event);
      if (!s.accepted) continue;
      steps.push({ event, step: s });
      snapshot = s.snapshot;
    }
    if (steps.length === 0) {
      if (rows.length > 0) await this.#o.store.writeRows(rows);
      return { accepted: false, seq: this.#seq };
    }

    // Everything the steps ask for becomes rows of the same transaction.
    const effectRows: { key: (string | number)[]; effect: Effect }[] = [];
    const timerOps: TimerOp[] = [];
    const allRows = [...rows];
    steps.forEach(({ step: s }, i) => {
      const seq = expectedHead + i + 1;
      s.effects.forEach((effect, j) => effectRows.push({ key: [this.stream, seq, j], effect }));
      timerOps.push(...s.timers);
    });
    for (const { key, effect } of effectRows) allRows.push({ table: 'effects', key, value: effect });
    // Reaching a final state retires every effect still pending from earlier steps (an attempt in flight that
    // lost the race): nothing may re-run them after a restart.
    const final = snapshot.status === 'done';
    const retire = this.#o.retireEffectsAtFinal !== false;
    if (final && retire) {
      for (const key of this.#pendingEffects.values()) allRows.push({ table: 'effects', key });
    }
    // The live index says which streams to resume at start; a final state also stores its snapshot in the same
    // transaction, so listing finished streams never needs a replay. Effects that outlive the end keep it live.
    const effectsLeft = !retire && (this.#pendingEffects.size > 0 || effectRows.length > 0);
    if (expectedHead === 0 || final) allRows.push(liveRow(this.stream, !final || effectsLeft));
    const count = this.#o.count;
    if (count) allRows.push(...countMove(count.group, expectedHead === 0 ? undefined : count.label(this.#snapshot), count.label(snapshot)));
    for (const t of timerOps) {
      allRows.push({ table: 'timers', key: [this.stream, t.id], value: t.op === 'set' ? { due: t.due, event: t.event } : undefined });
    }
    const stored = steps.map(({ event }) => {
      const { type, at, ...data } = event;
      return { type, at, data: type === INIT_EVENT ? (data as { input: unknown }).input : data };
    });
    const lastSeq = expectedHead + steps.length;
    const finalSnapshot = final ? { seq: lastSeq, state: stateOf(snapshot) } : undefined;
    const seq = await this.#o.store.append(this.stream, stored, { expectedHead, rows: allRows, snapshot: finalSnapshot });
    if (final) this.#lastSnapshotSeq = seq;
    // Retired with this append: their results, whenever they come, no longer matter.
    if (final && retire) this.#forgetPendingEffects();

    // Durable: now the new state is real.
    this.#snapshot = snapshot;
    this.#seq = seq;
    // Stopped while appending: what was appended is for the next incarnation to recover and perform.
    if (this.#stopped || this.#inert) return { accepted: true, seq };
    for (const t of timerOps) {
      if (t.op === 'set') this.#arm(t.id, t.due, t.event);
      else this.#disarm(t.id);
    }
    for (const { key, effect } of effectRows) this.#perform(key, effect);
    steps.forEach(({ event, step: s }, i) => {
      const t: Transition = { seq: expectedHead + i + 1, event, snapshot: s.snapshot, effects: s.effects };
      for (const l of this.#listeners) l(t);
    });
    this.#maybeSnapshot();
    return { accepted: true, seq };
  }

  #perform(key: (string | number)[], effect: Effect): void {
    const ack: RowOp = { table: 'effects', key };
    const id = key.join('/');
    this.#pendingEffects.set(id, key);
    this.#o.perform(effect).then(
      (events) => {
        if (this.#stopped) return;
        // Still pending until the acknowledgement is durable: a final state committed first retires it.
        this.#enqueue(() => {
          // The last effect of a finished stream that outlives its end: the stream is no longer live.
          const last = this.done && this.#o.retireEffectsAtFinal === false && [...this.#pendingEffects.keys()].every((k) => k === id);
          return this.#commit([], events ?? [], last ? [ack, liveRow(this.stream, false)] : [ack], this.#seq);
        }).then(() => {
          this.#pendingEffects.delete(id);
          if (this.#pendingEffects.size === 0) this.#forgetPendingEffects();
        }, (err) => this.#o.onCrash(err));
      },
      (err) => {
        if (!this.#stopped) this.#o.onCrash(err);
      },
    );
  }

  /** No effect is pending any more (all acknowledged, or retired): wake effectsSettled(). */
  #forgetPendingEffects(): void {
    this.#pendingEffects.clear();
    for (const resolve of this.#settledWaiters.splice(0)) resolve();
  }

  #arm(id: string, due: number, event: EventObject): void {
    this.#disarm(id);
    const handle = this.#o.clock.setTimeout(() => {
      this.#timers.delete(id);
      if (this.#stopped) return;
      // Timers longer than the platform's maximum (~24.8 days) fire early: wait again for the rest.
      if (this.#o.clock.now() < due) return this.#arm(id, due, event);
      const fired: RowOp = { table: 'timers', key: [this.stream, id] };
      this.#enqueue(() => this.#commit([], [event], [fired], this.#seq)).catch((err) => this.#o.onCrash(err));
    }, due - this.#o.clock.now());
    this.#timers.set(id, handle);
  }

  #disarm(id: string): void {
    const handle = this.#timers.get(id);
    if (handle !== undefined) this.#o.clock.clearTimeout(handle);
    this.#timers.delete(id);
  }

  #maybeSnapshot(): void {
    const every = this.#o.snapshotEvery ?? 200;
    if (this.#seq - this.#lastSnapshotSeq < every) return;
    this.#lastSnapshotSeq = this.#seq;
    this.#o.store.putSnapshot(this.stream, { seq: this.#seq, state: stateOf(this.#snapshot) }).catch(() => {
      // A lost snapshot costs replay time only.
    });
  }
}

/** Fold a stream's log into a snapshot, from the cached snapshot when one exists. No action runs. */
export function foldStream(
  store: EventStore,
  stream: string,
  machine: AnyStateMachine,
): { snapshot: AnyMachineSnapshot | undefined; seq: number } {
  const cached = store.getSnapshot<{ value: unknown; context: unknown }>(stream);
  let snapshot: AnyMachineSnapshot | undefined = cached
    ? machine.resolveState({ value: cached.state.value as never, context: cached.state.context as never })
    : undefined;
  let seq = cached?.seq ?? 0;
  for (const e of store.read(stream, seq + 1)) {
    snapshot = stepStored(machine, snapshot, e).snapshot;
    seq = e.seq;
  }
  return { snapshot, seq };
}
