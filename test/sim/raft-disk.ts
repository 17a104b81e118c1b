// One replica's "disk" in the Raft tests: what survives a crash. The shell half of the Ready contract lives
// here — write the hard state and entries (deleting an overwritten suffix first), keep the applied state machine,
// compact the log in one step (as the LMDB shell writes a BASE event that replaces the stream's earlier events in
// one transaction) — so the simulator and the scripted harness persist exactly the way the LMDB shell does.
import type { Entry, HardState, LogPosition, PersistedState, Ready } from '../../machines/raft/index.ts';

export class MemoryDisk<P> {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  /** The last compacted entry ((0, 0): none); `entries` start right after it. */
  base: LogPosition = { index: 0, term: 0 };
  readonly entries: Entry<P>[] = [];
  /** The state machine, durable with the rest: the entries applied, in order (applied[i] has index i + 1). */
  readonly applied: Entry<P>[] = [];

  get lastIndex(): number {
    return this.base.index + this.entries.length;
  }

  /** Step 1 of the contract. Throws if the core asks for a gap or to rewrite the compacted prefix (core bugs). */
  persist(rd: Ready<P>): void {
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      if (first <= this.base.index || first > this.lastIndex + 1) {
        throw new Error(`disk: Ready entries start at ${first}, disk holds ${this.base.index + 1}..${this.lastIndex}`);
      }
      this.entries.length = first - this.base.index - 1;
      for (const e of rd.entries) this.entries.push(e);
    }
    if (rd.hardState) this.hardState = rd.hardState;
  }

  /** Step 3: apply in order; throws on a gap or a repeat (each index is applied once). */
  apply(entries: readonly Entry<P>[]): void {
    for (const e of entries) {
      if (e.index !== this.applied.length + 1) {
        throw new Error(`disk: applying index ${e.index} after ${this.applied.length}`);
      }
      this.applied.push(e);
    }
  }

  /** Drop the entries up to `index` (which must be on this disk and applied), keeping its term as the base. */
  compact(index: number): void {
    if (index <= this.base.index) return;
    if (index > Math.min(this.lastIndex, this.applied.length)) throw new Error(`disk: cannot compact to ${index}`);
    const dropped = index - this.base.index;
    this.base = { index, term: this.term(index) };
    this.entries.splice(0, dropped);
  }

  /** The term at `index` (the base's included), or -1 when the disk has no such entry or compacted it. */
  term(index: number): number {
    if (index === this.base.index) return this.base.term;
    return this.entries[index - this.base.index - 1]?.term ?? -1;
  }

  /** The entry at `index`, if the disk holds it (not compacted). */
  entry(index: number): Entry<P> | undefined {
    return index > this.base.index ? this.entries[index - this.base.index - 1] : undefined;
  }

  load(): PersistedState<P> {
    return { hardState: this.hardState, base: this.base, entries: this.entries.slice() };
  }
}
