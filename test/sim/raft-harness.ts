// A hand-driven Raft cluster for scripted tests (Figure 8, pre-vote, check-quorum, catch-up…): no randomness and
// no clock unless the test asks. The test ticks replicas, delivers (or drops, or holds) queued messages by
// predicate, crashes and restarts replicas. Every replica runs the shell contract with a MemoryDisk: persist the
// Ready, then queue its messages, then apply, then advance; and compacts its log when the test says (`compact`).
import { RaftCore, type Message, type RaftConfig, type Ready } from '../../machines/raft/index.ts';
import { MemoryDisk } from './raft-disk.ts';

type Overrides = Partial<Omit<RaftConfig<any>, 'id' | 'peers'>>; // any: entrySize takes the harness's payload type

interface HarnessNode<P> {
  readonly id: string;
  readonly disk: MemoryDisk<P>;
  core: RaftCore<P> | null;
}

/** What to do with a queued message: deliver it now, drop it, or leave it queued. */
export type Verdict = 'deliver' | 'drop' | 'hold';

export class RaftHarness<P = string> {
  readonly ids: readonly string[];
  readonly #nodes = new Map<string, HarnessNode<P>>();
  readonly #config: (id: string) => Overrides;
  /** Sent and not yet delivered or dropped, in send order. */
  queue: Message<P>[] = [];
  /** Every message ever delivered, in order (for assertions about traffic). */
  readonly delivered: Message<P>[] = [];
  /** Every Ready processed, per replica. */
  readonly readies = new Map<string, Ready<P>[]>();

  /**
   * `config` per replica; by default T = 10, H = 1 and a fixed random of 0.5 (every timeout is 15 ticks), so
   * nothing happens by chance — tests that want an election call `campaign()` or pass their own random.
   */
  constructor(ids: readonly string[], config: (id: string) => Overrides = () => ({})) {
    this.ids = ids;
    this.#config = config;
    for (const id of ids) {
      this.#nodes.set(id, { id, disk: new MemoryDisk<P>(), core: null });
      this.readies.set(id, []);
      this.#start(id);
    }
  }

  #start(id: string): void {
    const node = this.#nodes.get(id)!;
    const persisted = node.disk.lastIndex > 0 || node.disk.hardState.term > 0 ? node.disk.load() : undefined;
    node.core = new RaftCore<P>(
      {
        id,
        peers: this.ids,
        electionTicks: 10,
        heartbeatTicks: 1,
        random: () => 0.5,
        applied: node.disk.applied.length,
        ...this.#config(id),
      },
      persisted,
    );
  }

  core(id: string): RaftCore<P> {
    const c = this.#nodes.get(id)?.core;
    if (!c) throw new Error(`${id} is down`);
    return c;
  }

  disk(id: string): MemoryDisk<P> {
    return this.#nodes.get(id)!.disk;
  }

  /** The payloads `id` has applied (the leaders' empty entries left out). */
  applied(id: string): P[] {
    return this.disk(id).applied.flatMap((e) => (e.data === null ? [] : [e.data]));
  }

  isUp(id: string): boolean {
    return this.#nodes.get(id)!.core !== null;
  }

  /** Run the shell loop on every live replica until none has a Ready. */
  drive(): void {
    for (let again = true; again; ) {
      again = false;
      for (const node of this.#nodes.values()) {
        const core = node.core;
        if (!core) continue;
        while (core.hasReady()) {
          again = true;
          const rd = core.ready();
          node.disk.persist(rd);
          this.queue.push(...rd.messages);
          node.disk.apply(rd.committed);
          core.advance(rd);
          this.readies.get(node.id)!.push(rd);
        }
      }
    }
  }

  tick(id: string, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.core(id).tick();
      this.drive();
    }
  }

  /** Tick every live replica `times` times (delivering nothing). */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.ids) if (this.isUp(id)) this.core(id).tick();
      this.drive();
    }
  }

  /**
   * Deliver queued messages until none is deliverable (answers included: it runs the conversation to its end).
   * `verdict` decides per message (default: deliver). Messages to a crashed replica are dropped.
   */
  deliver(verdict: (m: Message<P>) => Verdict = () => 'deliver', maxRounds = 10_000): void {
    this.drive();
    for (let round = 0; round < maxRounds; round++) {
      const held: Message<P>[] = [];
      const now: Message<P>[] = [];
      for (const m of this.queue) {
        const v = this.isUp(m.to) ? verdict(m) : 'drop';
        if (v === 'deliver') now.push(m);
        else if (v === 'hold') held.push(m);
      }
      this.queue = held;
      if (now.length === 0) return;
      for (const m of now) {
        if (!this.isUp(m.to)) continue;
        this.delivered.push(m);
        this.core(m.to).step(m);
        this.drive();
      }
    }
    throw new Error('harness: messages still flowing after maxRounds');
  }

  /** Deliver only messages among `group` (others are dropped: a partition while this runs). */
  deliverWithin(group: readonly string[]): void {
    this.deliver((m) => (group.includes(m.from) && group.includes(m.to) ? 'deliver' : 'drop'));
  }

  /** Lose everything in memory: the core, its unsent messages; messages queued to it are dropped on delivery. */
  crash(id: string): void {
    this.#nodes.get(id)!.core = null;
    this.queue = this.queue.filter((m) => m.from !== id && m.to !== id);
  }

  /** Rebuild the replica from its disk (hard state, log, applied index). */
  restart(id: string): void {
    this.#start(id);
    this.drive();
  }

  /** Compact `id`'s log up to `index` as a shell does: the disk first (one step), then the core. */
  compact(id: string, index: number): void {
    const core = this.core(id);
    const allowed = core.status().compactable;
    if (index > allowed) throw new Error(`harness: ${id} may compact up to ${allowed}, not ${index}`);
    this.disk(id).compact(index);
    core.compact(index);
  }

  propose(id: string, data: P) {
    const r = this.core(id).propose(data);
    this.drive();
    return r;
  }
}
