// One replica's "disk" in the Raft tests: what survives a crash. The shell half of the Ready contract lives
// here — write the hard state and entries (deleting an overwritten suffix first), keep the applied state machine —
// so the simulator and the scripted harness persist exactly the same way an LMDB shell would.
import type { Entry, HardState, PersistedState, Ready } from '../../machines/raft/index.ts';

export class MemoryDisk<P> {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  readonly entries: Entry<P>[] = [];
  /** The state machine, durable with the rest: the entries applied, in order (applied[i] has index i + 1). */
  readonly applied: Entry<P>[] = [];

  /** Step 1 of the contract. Throws if the core asks for a gap (a core bug, not a shell choice). */
  persist(rd: Ready<P>): void {
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      if (first < 1 || first > this.entries.length + 1) {
        throw new Error(`disk: Ready entries start at ${first}, disk ends at ${this.entries.length}`);
      }
      this.entries.length = first - 1;
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

  term(index: number): number {
    return index === 0 ? 0 : (this.entries[index - 1]?.term ?? -1);
  }

  load(): PersistedState<P> {
    return { hardState: this.hardState, entries: this.entries.slice() };
  }
}
