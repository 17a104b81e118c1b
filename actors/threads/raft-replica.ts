// The Raft actor of one thread on this replica: a thin shell around the pure core (machines/raft). It persists what
// the core says before sending what depends on it, ticks it, carries its messages as one-way signed envelopes
// (`send`: the transport's tells, no transport-level reply — Raft answers with messages of its own), and applies
// committed batches to the chain.
//
//   persisted   stream `thread-raft/<id>`: one READY event per Ready that must be durable (hard state and entries,
//               with the core's truncation rule: entries[0].index ≤ the last one means "replace from there");
//               replaying it rebuilds the core's state, and `replay thread-raft/<id>` shows the consensus log
//   compaction  once COMPACT_AFTER_ENTRIES entries (or COMPACT_AFTER_BYTES written) can go — applied to the chain
//               (`raft-applied`) and held by every replica (the core's `compactable`) — one BASE event (the last
//               hard state written, the base (index, term), the entries after it) replaces the stream's earlier
//               events in the same transaction, and the core drops them: memory and restart time stay bounded.
//               A replica that is down holds compaction back; one that lost its disk must be re-created
//   a batch     one Raft entry = { proposer, time, entries: [signed entry bytes…] }: the replica that took the
//               appends, its clock, and the entries, each signed by its author. Appends accepted in one turn, or
//               while the previous Ready is being written, share a batch (group commit)
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
import { fromLeader, RaftCore, type Entry, type HardState, type LogPosition, type Message, type PersistedState, type Ready, type Status } from '../../machines/raft/index.ts';
import { BLOCK_MAX_ENTRIES, decodeEntry, makeBlock } from '../../machines/chain.ts';
import type { ReplicaOptions } from './replica-options.ts';

export const RAFT_PREFIX = 'thread-raft/';
/** Ticks: 50 ms each; a heartbeat every 2, an election after 10–20 without a leader. */
const TICK_MS = 50;
const HEARTBEAT_TICKS = 2;
const ELECTION_TICKS = 10;
/** A pending append not committed after this long is proposed again (its forward or its leader was lost). */
const REPROPOSE_MS = 2_000;
/**
 * Most entry bytes in one batch (beyond a block's worth of entries), and in one AppendEntries or forwarded proposal:
 * a consensus message must stay well under the transport's envelope limit (~1 MiB), and a message always carries at
 * least one batch.
 */
const MAX_BATCH_BYTES = 256 * 1024;
const MAX_MESSAGE_BYTES = 512 * 1024;
/** How long a leader may hold a follower's commit notice back, waiting for an AppendEntries to carry it (#tellCommit). */
const COMMIT_HOLD_MS = 10;
/** How long a block decided from the Raft log may wait to be written with the next Raft write (#applyBatch). */
const BLOCK_WRITE_HOLD_MS = 10;
/**
 * Compact the log when this many entries can go, or when this many entry bytes were written since the last
 * compaction (whichever comes first), if any can go: the count bounds the events replayed at a restart, the bytes
 * bound memory when batches are large (a batch may be up to MAX_BATCH_BYTES). Each compaction costs one write of
 * the entries kept (those not yet on every replica: normally a round trip's worth).
 */
const COMPACT_AFTER_ENTRIES = 1_000;
const COMPACT_AFTER_BYTES = 4 * 1024 * 1024;

export interface RaftReplicaOptions extends ReplicaOptions {
  random: () => number;
  /** Sends one consensus message to a replica (fire and forget: Raft retries by itself). */
  send(to: string, message: Message): void;
  /** Campaign at once (the creator of a new thread). */
  campaign: boolean;
  /** When to compact the log (tests lower it); default COMPACT_AFTER_ENTRIES / COMPACT_AFTER_BYTES. */
  compactAfter?: { entries: number; bytes: number };
}

/** The data of the stream's events: READY (what one Ready made durable) and BASE (the log compacted so far). */
export type LoggedEntry = [index: number, term: number, data: Uint8Array | null];
export interface ReadyEventData {
  hardState: HardState | null;
  entries: LoggedEntry[];
}
export interface BaseEventData {
  hardState: HardState;
  base: LogPosition;
  entries: LoggedEntry[];
}

interface Batch {
  proposer: string;
  time: number;
  entries: Uint8Array[];
}

/** An entry this replica signed or accepted, with its id (known, so applying it needs no decoding). */
interface Accepted {
  id: string;
  bytes: Uint8Array;
}

export class RaftReplica {
  readonly #o: RaftReplicaOptions;
  readonly #core: RaftCore;
  readonly #stream: string;
  #pending = new Map<string, { bytes: Uint8Array; proposedAt: number }>();
  /**
   * Accepted entries not proposed yet. They go out together as one batch (one Raft entry, one block): those accepted
   * in one turn, and all those accepted while the previous Ready is being written (group commit) — so a busy
   * thread makes few large blocks, and an idle one proposes an append at once.
   */
  #batch: Accepted[] = [];
  #batchBytes = 0;
  #flushScheduled = false;
  /**
   * Batches this replica proposed, by their encoded bytes (the same object comes back in the committed Raft entry):
   * their entries' ids are known and valid (signed here for this thread, or accepted through `accept`), so the
   * batch and its entries need not be decoded again at apply. Other replicas decode them and decide the same.
   */
  readonly #proposed = new WeakMap<Uint8Array, { batch: Batch; ids: string[] }>();
  #driving = false;
  /** The drive loop's run (it never rejects: failures go to onCrash). */
  #driveLoop: Promise<void> = Promise.resolve();
  #again = false;
  #timer: unknown;
  /** Commit notices held back, by follower (the latest one each, held since `at`), and the timer that sends them. */
  readonly #heldCommits = new Map<string, { m: Message; at: number }>();
  #commitTimer: unknown;
  #blockWriteTimer: unknown;
  #stopped = false;
  /** The last log index written (a truncation can lower it), and the last hard state written. */
  #durableIndex = 0;
  #durableHardState: HardState;
  /** Entry bytes written since the last compaction (COMPACT_AFTER_BYTES). */
  #bytesSinceBase = 0;
  /** Followers the leader cannot catch up (their entries were compacted), already reported. */
  #stranded = new Set<string>();
  /** f = 0: entries waiting for the block being written. */
  #solo: Accepted[] = [];
  #soloWriting = false;
  #leader: string | null = null;
  #leading = false;

  constructor(options: RaftReplicaOptions) {
    this.#o = options;
    this.#stream = RAFT_PREFIX + options.thread;
    const { hardState, base, entries } = recoverLog(options.store, this.#stream);
    this.#durableIndex = base.index + entries.length;
    this.#durableHardState = hardState;
    const applied = Math.min(this.#appliedToChain(), this.#durableIndex);
    this.#core = new RaftCore({
      id: options.self, peers: options.replicas, electionTicks: ELECTION_TICKS, heartbeatTicks: HEARTBEAT_TICKS, random: options.random, applied,
      maxBytesPerMessage: MAX_MESSAGE_BYTES, entrySize: (data) => data.length,
    }, { hardState, base, entries });
    for (const { key, value } of options.store.rows<Uint8Array>('index', ['pending', options.thread])) {
      this.#pending.set(String(key[2]), { bytes: value, proposedAt: 0 });
    }
    if (options.replicas.length === 1) {
      // f = 0: no log, no ticks, no election (we lead); what was accepted durably before a restart is committed now.
      this.#leader = options.self;
      if (this.#pending.size > 0) this.#propose([...this.#pending].map(([id, p]) => ({ id, bytes: p.bytes })));
      return;
    }
    if (options.campaign && hardState.term === 0) this.#core.campaign();
    this.#schedule();
    this.#drive();
  }

  get leader(): string | null {
    return this.#leader;
  }

  /** The Raft core's status (its log's base and length, the compactable index…), for diagnostics and tests. */
  status(): Status {
    return this.#core.status();
  }

  /** Stops at once; resolves when the write in flight, if any, is done (a restarted shell then reads all of it). */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearTimeout(this.#timer);
    this.#o.clock.clearTimeout(this.#commitTimer);
    this.#o.clock.clearTimeout(this.#blockWriteTimer);
    // The chain outlives this shell (a restarted one continues it): blocks it holds must not wait for us.
    this.#o.chain.flushWrites();
    return this.#driveLoop;
  }

  /**
   * A replica joined the thread (the creator hears it). The creator campaigned at once, but its first votes may have
   * reached replicas that had not joined yet: with no leader known, it campaigns again now instead of after an
   * election timeout, so a new thread's first append need not wait for one. Through a pre-vote: the shell's view
   * of the leader lags the core's, and a live leader elsewhere must keep its term.
   */
  peerJoined(): void {
    if (this.#stopped || this.#leader !== null || this.#o.replicas.length === 1) return;
    this.#core.campaign({ preVote: true });
    this.#drive();
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
    this.#queue({ id, bytes });
  }

  #queue(item: Accepted): void {
    this.#batch.push(item);
    this.#batchBytes += item.bytes.length;
    if (this.#batch.length >= BLOCK_MAX_ENTRIES || this.#batchBytes >= MAX_BATCH_BYTES) {
      this.#propose(this.#takeBatch());
      return;
    }
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      // While a Ready is being written, the drive loop proposes the batch itself, before its next Ready.
      if (!this.#driving && this.#batch.length > 0) this.#propose(this.#takeBatch());
    });
  }

  #takeBatch(): Accepted[] {
    const items = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    return items;
  }

  #propose(items: Accepted[]): void {
    if (this.#o.replicas.length === 1) {
      // Nobody to agree with: the batch is committed as it is appended — and what arrives while a block is being
      // written goes into the next one (group commit).
      this.#solo.push(...items);
      if (!this.#soloWriting) void this.#writeSolo();
      return;
    }
    this.#proposeToCore(items);
    this.#drive();
  }

  #proposeToCore(items: Accepted[]): void {
    const batch: Batch = { proposer: this.#o.self, time: this.#o.clock.now(), entries: items.map((i) => i.bytes) };
    const data = encodeCanonical(batch as never);
    this.#proposed.set(data, { batch, ids: items.map((i) => i.id) });
    const result = this.#core.propose(data);
    if (result.ok) return;
    // No leader yet: the entries stay pending, due at once — the first tick that knows a leader proposes them.
    for (const item of items) {
      const p = this.#pending.get(item.id);
      if (p) p.proposedAt = -Infinity;
    }
    this.#o.log('debug', 'raft: no leader yet; the append waits', { thread: this.#o.thread });
  }

  async #writeSolo(): Promise<void> {
    this.#soloWriting = true;
    try {
      while (this.#solo.length > 0 && !this.#stopped) {
        const items = this.#solo.splice(0, BLOCK_MAX_ENTRIES);
        const batch = { proposer: this.#o.self, time: this.#o.clock.now(), entries: items.map((i) => i.bytes) };
        await this.#applyBatch(batch, undefined, items.map((i) => i.id));
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
    if (this.#leader === null) return; // nowhere to propose: they stay due
    const now = this.#o.clock.now();
    const stale: Accepted[] = [];
    for (const [id, p] of this.#pending) {
      if (now - p.proposedAt < REPROPOSE_MS) continue;
      if (this.#o.chain.locate(id)) {
        this.#pending.delete(id);
        continue;
      }
      p.proposedAt = now;
      stale.push({ id, bytes: p.bytes });
    }
    if (stale.length > 0) this.#propose(stale);
  }

  /** Persist, send, apply, advance — one Ready at a time, until the core has nothing more. */
  #drive(): void {
    if (this.#driving) {
      this.#again = true;
      return;
    }
    this.#driving = true;
    this.#driveLoop = (async () => {
      try {
        do {
          this.#again = false;
          for (;;) {
            if (this.#batch.length > 0) this.#proposeToCore(this.#takeBatch());
            if (this.#stopped || !this.#core.hasReady()) break;
            const rd = this.#core.ready();
            // Committed entries already durable here (an earlier Ready) are applied while this Ready is written: in
            // the same turn, both writes share one LMDB transaction and fsync. A lagging follower can receive
            // entries and their commit in one message; those are applied only after their write.
            const durableFirst = rd.committed.length > 0 && rd.committed[rd.committed.length - 1]!.index > this.#durableIndex;
            const persisted = this.#persist(rd);
            // A leader's AppendEntries promise nothing about its own disk (its entries count toward a quorum only
            // once `advance` says they are written), so they go out while it writes (the Raft thesis §10.2.1):
            // the leader's fsync and the followers' run side by side. Commit notices promise nothing either (they go
            // once applying has started, below). Everything else — votes, acknowledgements — waits for the write.
            const leading = this.#leading;
            if (leading) {
              for (const m of rd.messages) {
                if (m.type === 'app') this.#heldCommits.delete(m.to); // it carries the commit index too
                if (m.type === 'app' || m.type === 'heartbeat') this.#o.send(m.to, m);
              }
            }
            if (durableFirst) await persisted;
            // Stopped meanwhile: a restarted shell may have read the log without this write, so nothing may act on it
            // (no send, no apply): as far as anyone knows, it never happened.
            if (this.#stopped) return;
            // Applying a batch from the Raft log notifies waiting clients synchronously, so their replies are queued
            // before the commit notices to the followers are signed (those are off the client's path).
            const applied = (async () => { for (const e of rd.committed) await this.#apply(e); })();
            if (leading) {
              const ours = rd.committed.every((e) => e.data === null || this.#proposed.has(e.data));
              for (const m of rd.messages) if (m.type === 'commit') this.#tellCommit(m, ours);
            }
            await persisted;
            if (this.#stopped) return void applied.catch(() => undefined); // (applying is the restarted shell's now)
            for (const m of rd.messages) if (!(leading && fromLeader(m))) this.#o.send(m.to, m);
            await applied;
            if (rd.softState) {
              if (rd.softState.lead !== this.#leader) this.#o.log('debug', 'raft: leader changed', { thread: this.#o.thread, leader: rd.softState.lead, role: rd.softState.role });
              this.#leader = rd.softState.lead;
              this.#leading = rd.softState.role === 'leader';
            }
            this.#core.advance(rd);
            // Between Readies nothing is being written to the log: the one safe point to rewrite it. Never once
            // stopped: a restarted shell may already be writing the same stream.
            if (!this.#stopped) {
              const st = this.#core.status();
              this.#reportStranded(st.needCompactedEntries, st.base.index + 1);
              await this.#maybeCompact(st);
            }
          }
        } while (this.#again && !this.#stopped);
      } catch (err) {
        this.#o.onCrash(err);
      } finally {
        this.#driving = false;
      }
    })();
  }

  /**
   * A commit notice for batches proposed here may wait up to COMMIT_HOLD_MS: the next AppendEntries to that follower
   * carries the commit index anyway (with a busy client it comes within a round trip), which saves a message each
   * way and lets the follower write the block together with its next entries (one fsync instead of two). Nobody
   * waits for it: our clients were answered at our commit. A notice for a batch a follower forwarded goes at once,
   * as that follower's client waits for it; an idle thread's followers learn the commit when the timer fires.
   */
  #tellCommit(m: Message, hold: boolean): void {
    if (!hold) {
      this.#heldCommits.delete(m.to);
      this.#o.send(m.to, m);
      return;
    }
    // A newer notice replaces the held one but keeps its deadline: a follower learns a commit within the hold.
    const at = this.#heldCommits.get(m.to)?.at ?? this.#o.clock.now();
    this.#heldCommits.set(m.to, { m, at });
    this.#armCommitTimer();
  }

  #armCommitTimer(): void {
    if (this.#commitTimer !== undefined || this.#heldCommits.size === 0) return;
    const first = Math.min(...[...this.#heldCommits.values()].map((h) => h.at));
    this.#commitTimer = this.#o.clock.setTimeout(() => {
      this.#commitTimer = undefined;
      if (this.#stopped) return;
      const now = this.#o.clock.now();
      for (const [to, held] of this.#heldCommits) {
        if (now - held.at < COMMIT_HOLD_MS) continue;
        this.#heldCommits.delete(to);
        this.#o.send(to, held.m);
      }
      this.#armCommitTimer();
    }, Math.max(0, first + COMMIT_HOLD_MS - this.#o.clock.now()));
  }

  async #persist(rd: Ready): Promise<void> {
    // A commit index alone may be written lazily (it is re-learned); terms, votes and entries must be durable first.
    if (!rd.mustSync) return;
    this.#o.chain.flushWrites(); // decided blocks waiting for a write: this one (same turn, same fsync)
    const data: ReadyEventData = { hardState: rd.hardState ?? null, entries: rd.entries.map(logged) };
    await this.#o.store.append(this.#stream, [{ type: 'READY', at: this.#o.clock.now(), data }]);
    const last = rd.entries[rd.entries.length - 1];
    if (last) this.#durableIndex = last.index;
    if (rd.hardState) this.#durableHardState = rd.hardState;
    for (const e of rd.entries) this.#bytesSinceBase += e.data?.length ?? 0;
  }

  /** The last Raft index whose block is durable in the chain (entries after it are applied again after a restart). */
  #appliedToChain(): number {
    return this.#o.store.getRow<number>('index', ['raft-applied', this.#o.thread]) ?? 0;
  }

  /**
   * Called between Readies (no log write in flight): compact the log if enough of it can go. One BASE event holds
   * what the stream's events made durable — the last hard state written, the base, the entries after it up to the
   * last one written — and replaces them in one transaction (so a crash leaves the old events or the BASE); the
   * core drops the entries once it is durable.
   */
  async #maybeCompact(st: Status): Promise<void> {
    const limits = this.#o.compactAfter ?? { entries: COMPACT_AFTER_ENTRIES, bytes: COMPACT_AFTER_BYTES };
    const compactable = st.compactable - st.base.index;
    if (compactable <= 0 || (compactable < limits.entries && this.#bytesSinceBase < limits.bytes)) return;
    // The log in memory up to its persisted index is exactly what the events hold — unless a conflicting suffix
    // was overwritten in memory and not yet on disk (the persisted index then fell below the last one written):
    // compact at a later Ready. Only blocks already durable in the chain may lose their entries.
    if (st.persistedIndex !== this.#durableIndex) return;
    const index = Math.min(st.compactable, st.persistedIndex, this.#appliedToChain());
    // Never rewrite more entries than it drops: while a replica that was down catches up, the safe index rises a
    // little at a time, and each BASE would copy the whole lag again (quadratic writes, each one a stall here).
    if (index - st.base.index < st.persistedIndex - index) return;
    const [at, ...kept] = this.#core.entries(index, st.persistedIndex);
    const data: BaseEventData = { hardState: this.#durableHardState, base: { index, term: at!.term }, entries: kept.map(logged) };
    await this.#o.store.append(this.#stream, [{ type: 'BASE', at: this.#o.clock.now(), data }], { rebase: true });
    this.#core.compact(index);
    this.#bytesSinceBase = 0;
    this.#o.log('debug', 'raft: log compacted', { thread: this.#o.thread, index, kept: kept.length });
  }

  #reportStranded(followers: readonly string[], firstIndex: number): void {
    if (followers.length === 0 && this.#stranded.size === 0) return; // the usual case, on every Ready
    for (const id of followers) {
      if (this.#stranded.has(id)) continue;
      this.#o.log('error', `raft: replica ${id} needs entries below ${firstIndex}, which were compacted; re-create that replica`, { thread: this.#o.thread });
    }
    this.#stranded = new Set(followers);
  }

  async #apply(e: Entry): Promise<void> {
    if (e.data === null) return; // a new leader's empty entry
    const ours = this.#proposed.get(e.data);
    if (ours) await this.#applyBatch(ours.batch, e.index, ours.ids);
    else await this.#applyBatch(decodeCanonical(e.data) as unknown as Batch, e.index);
  }

  /**
   * A committed batch becomes the next block (`raftIndex`: its Raft entry, recorded as applied with the block).
   * `knownIds`: the entries' ids when they are ours (valid by construction), else each entry is decoded and checked.
   */
  async #applyBatch(batch: Batch, raftIndex: number | undefined, knownIds?: string[]): Promise<void> {
    const chain = this.#o.chain;
    const seen = new Set<string>();
    const entries: Uint8Array[] = [];
    const ids: string[] = [];
    for (const [i, bytes] of batch.entries.entries()) {
      let id: string;
      if (knownIds) id = knownIds[i]!;
      else {
        try {
          const entry = decodeEntry(bytes);
          if (entry.thread !== this.#o.thread || !this.#o.replicas.includes(entry.author)) continue;
          id = entry.id;
        } catch {
          continue; // not a valid signed entry: never in the chain (every replica decides the same)
        }
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
      ], { ids: chunkIds, recoverable: raftIndex !== undefined, deferWrite: raftIndex !== undefined });
      for (const id of chunkIds) this.#pending.delete(id);
      // A block from the Raft log is final once decided (the log re-derives it after a crash), so its write runs
      // behind, and blocks decided one after another share a commit; f = 0 has no log: its write is the commit.
      if (raftIndex === undefined) await written;
      else written.catch((err) => this.#o.onCrash(err));
    }
    // A block from the Raft log waits for the next Raft write to share its fsync (a follower's next entries, a
    // leader's next proposal), or at most BLOCK_WRITE_HOLD_MS.
    if (raftIndex !== undefined && this.#o.chain.hasDeferredWrites) {
      this.#blockWriteTimer ??= this.#o.clock.setTimeout(() => {
        this.#blockWriteTimer = undefined;
        this.#o.chain.flushWrites();
      }, BLOCK_WRITE_HOLD_MS);
    }
  }
}

const logged = (e: Entry): LoggedEntry => [e.index, e.term, e.data];

/**
 * Rebuild the hard state and log from the stream: a BASE (the first event, if the log was ever compacted) sets all
 * three, then each READY's entries replace the log's from their index on.
 */
function recoverLog(store: EventStore, stream: string): Required<PersistedState> {
  let hardState: HardState = { term: 0, vote: null, commit: 0 };
  let base: LogPosition = { index: 0, term: 0 };
  let entries: Entry[] = [];
  for (const e of store.read(stream)) {
    const d = e.data as ReadyEventData | BaseEventData;
    if (e.type === 'BASE') {
      base = (d as BaseEventData).base;
      entries = [];
    }
    if (d.hardState) hardState = d.hardState;
    for (const [index, term, data] of d.entries) {
      entries.length = Math.min(entries.length, index - base.index - 1);
      entries.push({ index, term, data });
    }
  }
  return { hardState, base, entries };
}

