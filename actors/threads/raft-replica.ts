// The Raft actor of one thread on this replica: a thin shell around the pure core (machines/raft). It persists what
// the core says before sending what depends on it, ticks it, carries its messages over signed envelopes on the
// direct libp2p sessions between replicas, and applies committed batches to the chain.
//
//   persisted   stream `thread-raft/<id>`: one READY event per Ready that must be durable (hard state and entries,
//               with the core's truncation rule: entries[0].index ≤ the last one means "replace from there");
//               replaying it rebuilds the core's state, and `replay thread-raft/<id>` shows the consensus log
//   a batch     one Raft entry = { proposer, time, entries: [signed entry bytes…] }: the replica that took the
//               appends, its clock, and the entries, each signed by its author
//   applying    committed batches become blocks (machines/chain.ts) in Raft order on every replica: entries that
//               do not decode, are not by a replica of the thread, or whose id is already in the chain, are left
//               out, and a batch left empty makes no block — so every replica builds the same chain, and retries
//               never duplicate. Raft's replicas are trusted (crash faults only), and each signs only its own
//               entries, so signatures are not checked again at apply; verify-thread checks every one.
//   accepted    with return_on_accept, an append is durable here before it is proposed (a 'pending' row, removed in
//               the transaction that commits its block) and proposed again after a restart; any pending append
//               whose forward or leader was lost is proposed again after a while
//   f = 0       a thread of one replica needs no log and no vote: a batch becomes its block at once (one commit)
import type { EventStore } from '../../runtime/event-store.ts';
import { decodeCanonical, encodeCanonical } from '../../runtime/canonical-cbor.ts';
import { RaftCore, type Entry, type HardState, type Message, type Ready } from '../../machines/raft/index.ts';
import { BLOCK_MAX_ENTRIES, decodeEntry, makeBlock } from '../../machines/chain.ts';
import type { ReplicaOptions } from './replica-options.ts';

export const RAFT_PREFIX = 'thread-raft/';
/** Ticks: 50 ms each; a heartbeat every 2, an election after 10–20 without a leader. */
const TICK_MS = 50;
const HEARTBEAT_TICKS = 2;
const ELECTION_TICKS = 10;
/** A pending append not committed after this long is proposed again (its forward or its leader was lost). */
const REPROPOSE_MS = 2_000;

export interface RaftReplicaOptions extends ReplicaOptions {
  random: () => number;
  /** Sends one consensus message to a replica (fire and forget: Raft retries by itself). */
  send(to: string, message: Message): void;
  /** Campaign at once (the creator of a new thread). */
  campaign: boolean;
}

interface Batch {
  proposer: string;
  time: number;
  entries: Uint8Array[];
}

export class RaftReplica {
  readonly #o: RaftReplicaOptions;
  readonly #core: RaftCore;
  readonly #stream: string;
  #pending = new Map<string, { bytes: Uint8Array; proposedAt: number }>();
  #batch: Uint8Array[] | undefined;
  #driving = false;
  #again = false;
  #timer: unknown;
  #stopped = false;
  /** The last log index written (a truncation can lower it). */
  #durableIndex = 0;
  /** f = 0: entries waiting for the block being written. */
  #solo: Uint8Array[] = [];
  #soloWriting = false;
  #leader: string | null = null;
  #leading = false;

  constructor(options: RaftReplicaOptions) {
    this.#o = options;
    this.#stream = RAFT_PREFIX + options.thread;
    const { hardState, entries } = recoverLog(options.store, this.#stream);
    const applied = Math.min(options.store.getRow<number>('index', ['raft-applied', options.thread]) ?? 0, entries.length);
    this.#durableIndex = entries.length;
    this.#core = new RaftCore({
      id: options.self, peers: options.replicas, electionTicks: ELECTION_TICKS, heartbeatTicks: HEARTBEAT_TICKS, random: options.random, applied,
    }, { hardState, entries });
    for (const { key, value } of options.store.rows<Uint8Array>('index', ['pending', options.thread])) {
      this.#pending.set(String(key[2]), { bytes: value, proposedAt: 0 });
    }
    if (options.replicas.length === 1) {
      // f = 0: no log, no ticks, no election (we lead); what was accepted durably before a restart is committed now.
      this.#leader = options.self;
      if (this.#pending.size > 0) this.#propose([...this.#pending.values()].map((p) => p.bytes));
      return;
    }
    if (options.campaign && hardState.term === 0) this.#core.campaign();
    this.#schedule();
    this.#drive();
  }

  get leader(): string | null {
    return this.#leader;
  }

  stop(): void {
    this.#stopped = true;
    this.#o.clock.clearTimeout(this.#timer);
  }

  /** A consensus message from replica `from` (the transport checked its signature and that it is a replica). */
  receive(message: Message): void {
    if (this.#stopped) return;
    this.#core.step(message);
    this.#drive();
  }

  /**
   * Accept a signed entry and propose it (batched with the others of this turn); with `durable`, it is written here
   * first, so a restart proposes it again. Commitment shows up in the chain.
   */
  async accept(id: string, bytes: Uint8Array, durable: boolean): Promise<void> {
    if (this.#pending.has(id)) return;
    if (durable) await this.#o.store.writeRows([{ table: 'index', key: ['pending', this.#o.thread, id], value: bytes }]);
    if (this.#o.chain.locate(id) || this.#pending.has(id)) return;
    this.#pending.set(id, { bytes, proposedAt: this.#o.clock.now() });
    this.#queue(bytes);
  }

  /** Entries appended in one turn go out as one batch (at most a block's worth): one Raft entry, one round. */
  #queue(bytes: Uint8Array): void {
    if (this.#batch && this.#batch.length < BLOCK_MAX_ENTRIES) {
      this.#batch.push(bytes);
      return;
    }
    this.#batch = [bytes];
    const batch = this.#batch;
    queueMicrotask(() => {
      if (this.#batch === batch) this.#batch = undefined;
      this.#propose(batch);
    });
  }

  #propose(entries: Uint8Array[]): void {
    const batch: Batch = { proposer: this.#o.self, time: this.#o.clock.now(), entries };
    if (this.#o.replicas.length === 1) {
      // Nobody to agree with: the batch is committed as it is appended — and what arrives while a block is being
      // written goes into the next one (group commit).
      this.#solo.push(...entries);
      if (!this.#soloWriting) void this.#writeSolo();
      return;
    }
    const result = this.#core.propose(encodeCanonical(batch as never));
    // No leader yet: the entries stay pending and go out again on a later tick.
    if (!result.ok) this.#o.log('debug', 'raft: no leader yet; the append waits', { thread: this.#o.thread });
    this.#drive();
  }

  async #writeSolo(): Promise<void> {
    this.#soloWriting = true;
    try {
      while (this.#solo.length > 0 && !this.#stopped) {
        const entries = this.#solo.splice(0, BLOCK_MAX_ENTRIES);
        await this.#applyBatch({ proposer: this.#o.self, time: this.#o.clock.now(), entries }, undefined);
      }
    } catch (err) {
      this.#o.onCrash(err);
    } finally {
      this.#soloWriting = false;
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      try {
        this.#core.tick();
        this.#reproposeStale();
        this.#drive();
      } catch (err) {
        this.#o.onCrash(err);
        return;
      }
      this.#schedule();
    }, TICK_MS);
  }

  #reproposeStale(): void {
    const now = this.#o.clock.now();
    const stale: Uint8Array[] = [];
    for (const [id, p] of this.#pending) {
      if (now - p.proposedAt < REPROPOSE_MS) continue;
      if (this.#o.chain.locate(id)) {
        this.#pending.delete(id);
        continue;
      }
      p.proposedAt = now;
      stale.push(p.bytes);
    }
    if (stale.length > 0 && this.#leader !== null) this.#propose(stale);
  }

  /** Persist, send, apply, advance — one Ready at a time, until the core has nothing more. */
  #drive(): void {
    if (this.#driving) {
      this.#again = true;
      return;
    }
    this.#driving = true;
    void (async () => {
      try {
        do {
          this.#again = false;
          while (!this.#stopped && this.#core.hasReady()) {
            const rd = this.#core.ready();
            // Committed entries already durable here (an earlier Ready) are applied while this Ready is written: in
            // the same turn, both writes share one LMDB transaction and fsync. A lagging follower can receive
            // entries and their commit in one message; those are applied only after their write.
            const durableFirst = rd.committed.length > 0 && rd.committed[rd.committed.length - 1]!.index > this.#durableIndex;
            const persisted = this.#persist(rd);
            // A leader's AppendEntries promise nothing about its own disk (its entries count toward a quorum only
            // once `advance` says they are written), so they go out while it writes (the Raft thesis §10.2.1):
            // the leader's fsync and the followers' run side by side. Everything else waits for the write.
            const early = rd.messages.filter((m) => m.type === 'app' || m.type === 'heartbeat');
            const late = early.length === 0 ? rd.messages : rd.messages.filter((m) => m.type !== 'app' && m.type !== 'heartbeat');
            if (this.#leading) for (const m of early) this.#o.send(m.to, m);
            if (durableFirst) await persisted;
            const applied = (async () => { for (const e of rd.committed) await this.#apply(e); })();
            await persisted;
            for (const m of this.#leading ? late : rd.messages) this.#o.send(m.to, m);
            await applied;
            if (rd.softState) {
              this.#leader = rd.softState.lead;
              this.#leading = rd.softState.role === 'leader';
            }
            this.#core.advance(rd);
          }
        } while (this.#again && !this.#stopped);
      } catch (err) {
        this.#o.onCrash(err);
      } finally {
        this.#driving = false;
      }
    })();
  }

  async #persist(rd: Ready): Promise<void> {
    // A commit index alone may be written lazily (it is re-learned); terms, votes and entries must be durable first.
    if (!rd.mustSync) return;
    await this.#o.store.append(this.#stream, [{
      type: 'READY', at: this.#o.clock.now(),
      data: { hardState: rd.hardState ?? null, entries: rd.entries.map((e) => [e.index, e.term, e.data]) },
    }]);
    const last = rd.entries[rd.entries.length - 1];
    if (last) this.#durableIndex = last.index;
  }

  async #apply(e: Entry): Promise<void> {
    if (e.data === null) return; // a new leader's empty entry
    await this.#applyBatch(decodeCanonical(e.data) as unknown as Batch, e.index);
  }

  /** A committed batch becomes the next block (`raftIndex`: its Raft entry, recorded as applied with the block). */
  async #applyBatch(batch: Batch, raftIndex: number | undefined): Promise<void> {
    const chain = this.#o.chain;
    const seen = new Set<string>();
    const entries: Uint8Array[] = [];
    const ids: string[] = [];
    for (const bytes of batch.entries) {
      let id: string;
      try {
        const entry = decodeEntry(bytes);
        if (entry.thread !== this.#o.thread || !this.#o.replicas.includes(entry.author)) continue;
        id = entry.id;
      } catch {
        continue; // not a valid signed entry: never in the chain (every replica decides the same)
      }
      if (seen.has(id) || chain.locate(id)) continue;
      seen.add(id);
      entries.push(bytes);
      ids.push(id);
    }
    // A batch larger than a block (from a peer that does not cap them) still applies, as consecutive blocks: a
    // committed entry that every replica failed to apply would stop the thread everywhere.
    for (let from = 0; from < entries.length; from += BLOCK_MAX_ENTRIES) {
      const chunk = entries.slice(from, from + BLOCK_MAX_ENTRIES);
      const chunkIds = ids.slice(from, from + BLOCK_MAX_ENTRIES);
      const last = from + BLOCK_MAX_ENTRIES >= entries.length;
      const block = makeBlock({ thread: this.#o.thread, height: chain.height + 1, parent: chain.head, proposer: batch.proposer, time: batch.time, entries: chunk });
      const written = chain.commit(block, this.#o.clock.now(), undefined, [
        ...(raftIndex === undefined || !last ? [] : [{ table: 'index' as const, key: ['raft-applied', this.#o.thread], value: raftIndex }]),
        ...chunkIds.map((id) => ({ table: 'index' as const, key: ['pending', this.#o.thread, id] })),
      ], { ids: chunkIds, recoverable: raftIndex !== undefined });
      for (const id of chunkIds) this.#pending.delete(id);
      // A block from the Raft log is final once decided (the log re-derives it after a crash), so its write runs
      // behind, and blocks decided one after another share a commit; f = 0 has no log: its write is the commit.
      if (raftIndex === undefined) await written;
      else written.catch((err) => this.#o.onCrash(err));
    }
  }
}

/** Rebuild the hard state and log from the READY events (later entries replace earlier ones from their index). */
function recoverLog(store: EventStore, stream: string): { hardState: HardState; entries: Entry[] } {
  let hardState: HardState = { term: 0, vote: null, commit: 0 };
  const entries: Entry[] = [];
  for (const e of store.read(stream)) {
    const d = e.data as { hardState: HardState | null; entries: [number, number, Uint8Array | null][] };
    if (d.hardState) hardState = d.hardState;
    for (const [index, term, data] of d.entries) {
      entries.length = Math.min(entries.length, index - 1);
      entries.push({ index, term, data });
    }
  }
  return { hardState, entries };
}

