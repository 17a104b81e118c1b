// The replicated log as one replica holds it in memory, with four marks:
//
//   base │ base+1 ……… persisted ……… committed? ……… unsent-1 │ unsent ……… last
//        └─ durable (acknowledged by advance) ─┘             └─ not yet handed to a Ready ─┘
//
// `base` is the last entry compacted away (index 0, term 0 until the first compaction): the entries up to it are
// gone, but its term is kept, so an append right after it can still be checked (log matching) and an empty log still says
// how up to date it is (the election restriction). Only committed, durable entries are compacted, and the core
// compacts only what every replica holds (see RaftCore.compact), so no one needs them again.
// `persisted` is what this replica may promise (a leader counts itself toward a quorum only up to it);
// `unsentFrom` is where the next Ready's entries start (lowered when a conflicting suffix is overwritten, so the
// shell deletes it from disk too); `committed` only grows.
import type { Entry, LogPosition } from './types.ts';

const EMPTY_PREFIX: LogPosition = { index: 0, term: 0 };

export class RaftLog<P> {
  #base: LogPosition;
  /** entries[i] has index base.index + 1 + i. */
  readonly #entries: Entry<P>[];
  #committed: number;
  #persisted: number;
  #unsentFrom: number;

  constructor(entries: readonly Entry<P>[] = [], committed = 0, base: LogPosition = EMPTY_PREFIX) {
    entries.forEach((e, i) => {
      const want = base.index + 1 + i;
      if (e.index !== want) throw new Error(`raft log: persisted entry ${i} has index ${e.index}, want ${want}`);
      if (e.term < (i === 0 ? base.term : entries[i - 1].term)) throw new Error(`raft log: term goes down at index ${e.index}`);
    });
    const last = base.index + entries.length;
    if (committed > last) throw new Error(`raft log: commit ${committed} is beyond the persisted log (last index ${last})`);
    this.#base = base;
    this.#entries = entries.slice();
    // Compacted entries were committed, even if the commit index itself was written lazily and lost.
    this.#committed = Math.max(committed, base.index);
    this.#persisted = last;
    this.#unsentFrom = last + 1;
  }

  get base(): LogPosition {
    return this.#base;
  }

  get lastIndex(): number {
    return this.#base.index + this.#entries.length;
  }

  get lastTerm(): number {
    return this.term(this.lastIndex);
  }

  get committed(): number {
    return this.#committed;
  }

  get persisted(): number {
    return this.#persisted;
  }

  /** The term of the entry at `index` (the base's included), or -1 when this log has no such entry or compacted it. */
  term(index: number): number {
    if (index === this.#base.index) return this.#base.term;
    const e = this.#entries[index - this.#base.index - 1];
    return e === undefined ? -1 : e.term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** The election restriction (§5.4.1): a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm;
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex);
  }

  /**
   * Entries lo..hi inclusive (hi clamped to the log). The returned array is fresh; the entries are shared
   * (immutable). Asking for a compacted entry is a bug of the caller, so it throws.
   */
  slice(lo: number, hi: number): Entry<P>[] {
    if (lo <= this.#base.index && lo <= hi) throw new Error(`raft log: entries up to ${this.#base.index} were compacted (asked from ${lo})`);
    const offset = this.#base.index + 1;
    return this.#entries.slice(lo - offset, Math.min(hi, this.lastIndex) - offset + 1);
  }

  /**
   * Write `entries` (contiguous, starting at most one past the end), replacing whatever this log held from
   * `entries[0].index` on. Overwriting a committed entry would break safety, so it throws.
   */
  append(entries: readonly Entry<P>[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first > this.lastIndex + 1) throw new Error(`raft log: gap: appending ${first} after ${this.lastIndex}`);
    if (first <= this.#committed) {
      throw new Error(`raft log: overwriting committed entry ${first} (committed ${this.#committed})`);
    }
    this.#entries.length = first - this.#base.index - 1;
    for (const e of entries) this.#entries.push(e);
    if (first <= this.#persisted) this.#persisted = first - 1;
    if (first < this.#unsentFrom) this.#unsentFrom = first;
  }

  /**
   * A follower's AppendEntries (§5.3): if our log matches the leader's at (prevIndex, prevTerm), adopt `entries`,
   * truncating only from the first real conflict (a stale, reordered message must not cut off newer entries), and
   * advance the commit index — but never past the last entry this message vouches for. Returns that last index,
   * or null when the logs do not match at prevIndex (or prevIndex is below our base: the caller answers those).
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry<P>[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    const conflict = this.#findConflict(entries);
    if (conflict !== 0) this.append(entries.slice(conflict - entries[0].index));
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** The first index of `entries` whose term differs from ours or that we lack; 0 when we hold them all. */
  #findConflict(entries: readonly Entry<P>[]): number {
    for (const e of entries) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The last index ≤ `index` whose term is ≤ `term`, with that term: no entry above it can match a log whose entry
   * at `index` has term `term` (terms only grow along a log), so a prober can jump straight there. When even the
   * base's term is higher, the answer is among the compacted entries: (0, 0), the one guess that is always low enough.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = Math.min(index, this.lastIndex); i >= this.#base.index; i--) {
      const t = this.term(i);
      if (t <= term) return [i, t];
    }
    return [0, 0];
  }

  commitTo(index: number): boolean {
    if (index <= this.#committed) return false;
    // A leader only names a commit index up to what this replica acknowledged holding: past our log, the log lost
    // entries it had acknowledged (its data was deleted or replaced), which Raft cannot repair (as etcd says too).
    if (index > this.lastIndex) {
      throw new Error(`raft log: commit ${index} beyond last index ${this.lastIndex}: this replica lost log entries it had acknowledged (was its data directory deleted or replaced?); re-create the replica`);
    }
    this.#committed = index;
    return true;
  }

  /**
   * Drop the entries up to `index`, which becomes the base. Only committed entries that are durable here may go
   * (the caller — RaftCore.compact — also makes sure every replica holds them).
   */
  compact(index: number): void {
    if (index <= this.#base.index) return;
    if (index > this.#committed || index > this.#persisted) {
      throw new Error(`raft log: cannot compact to ${index}: committed ${this.#committed}, persisted ${this.#persisted}`);
    }
    const dropped = index - this.#base.index;
    this.#base = { index, term: this.term(index) };
    this.#entries.splice(0, dropped);
  }

  hasUnsent(): boolean {
    return this.#unsentFrom <= this.lastIndex;
  }

  /** The entries the next Ready must write (from the lowest rewritten index), now counted as handed out. */
  takeUnsent(): Entry<P>[] {
    const out = this.slice(this.#unsentFrom, this.lastIndex);
    this.#unsentFrom = this.lastIndex + 1;
    return out;
  }

  /**
   * The shell has persisted a Ready whose entries ended at (index, term). They are durable only if this log still
   * holds them and nothing at or below `index` has been rewritten since (which would have lowered unsentFrom).
   */
  persistedTo(index: number, term: number): void {
    if (index > this.#persisted && this.matchTerm(index, term) && this.#unsentFrom > index) this.#persisted = index;
  }
}
