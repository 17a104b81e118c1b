// The replicated log as one replica holds it in memory, with three marks:
//
//   1 ……… persisted ……… committed? ……… unsent-1 │ unsent ……… last
//   └─ durable (acknowledged by advance) ─┘        └─ not yet handed to a Ready ─┘
//
// `persisted` is what this replica may promise (a leader counts itself toward a quorum only up to it);
// `unsentFrom` is where the next Ready's entries start (lowered when a conflicting suffix is overwritten, so the
// shell deletes it from disk too); `committed` only grows. The whole log stays in memory: there are no snapshots
// or compaction (a shell that needs them truncates below its applied index and adds a snapshot message later).
import type { Entry } from './types.ts';

export class RaftLog<P> {
  /** entries[i - 1] has index i. */
  readonly #entries: Entry<P>[];
  #committed: number;
  #persisted: number;
  #unsentFrom: number;

  constructor(entries: readonly Entry<P>[] = [], committed = 0) {
    entries.forEach((e, i) => {
      if (e.index !== i + 1) throw new Error(`raft log: persisted entry ${i} has index ${e.index}, want ${i + 1}`);
      if (i > 0 && e.term < entries[i - 1].term) throw new Error(`raft log: term goes down at index ${e.index}`);
    });
    if (committed > entries.length) {
      throw new Error(`raft log: commit ${committed} is beyond the persisted log (last index ${entries.length})`);
    }
    this.#entries = entries.slice();
    this.#committed = committed;
    this.#persisted = entries.length;
    this.#unsentFrom = entries.length + 1;
  }

  get lastIndex(): number {
    return this.#entries.length;
  }

  get lastTerm(): number {
    return this.term(this.#entries.length);
  }

  get committed(): number {
    return this.#committed;
  }

  get persisted(): number {
    return this.#persisted;
  }

  /** The term of the entry at `index` (0 for index 0), or -1 when this log has no such entry. */
  term(index: number): number {
    if (index === 0) return 0;
    const e = this.#entries[index - 1];
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

  /** Entries lo..hi inclusive (clamped to the log). The returned array is fresh; the entries are shared (immutable). */
  slice(lo: number, hi: number): Entry<P>[] {
    return this.#entries.slice(Math.max(lo, 1) - 1, Math.min(hi, this.lastIndex));
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
    this.#entries.length = first - 1;
    for (const e of entries) this.#entries.push(e);
    if (first <= this.#persisted) this.#persisted = first - 1;
    if (first < this.#unsentFrom) this.#unsentFrom = first;
  }

  /**
   * A follower's AppendEntries (§5.3): if our log matches the leader's at (prevIndex, prevTerm), adopt `entries`,
   * truncating only from the first real conflict (a stale, reordered message must not cut off newer entries), and
   * advance the commit index — but never past the last entry this message vouches for. Returns that last index,
   * or null when the logs do not match at prevIndex.
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
   * at `index` has term `term` (terms only grow along a log), so a prober can jump straight there.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = Math.min(index, this.lastIndex); i > 0; i--) {
      const t = this.term(i);
      if (t <= term) return [i, t];
    }
    return [0, 0];
  }

  commitTo(index: number): boolean {
    if (index <= this.#committed) return false;
    if (index > this.lastIndex) throw new Error(`raft log: commit ${index} beyond last index ${this.lastIndex}`);
    this.#committed = index;
    return true;
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
