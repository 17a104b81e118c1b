// Remembers recently accepted envelope ids so a replayed envelope is refused as a duplicate.
//
// An envelope is only accepted while fresh (|now - ts| ≤ window), so an id needs remembering only until its
// envelope turns stale (ts + window); after that the freshness check refuses it on its own. Memory is bounded:
// when full, the oldest-inserted ids are forgotten and `floorTs` rises to the newest ts among them, and any
// envelope at or below the floor is then refused as stale — we can no longer prove it is not a replay.
// So the bound never weakens replay protection; under extreme load it only narrows the freshness window.

export class ReplayGuard {
  readonly windowMs: number;
  readonly maxEntries: number;
  // key → ts of the envelope; Map keeps insertion order, which eviction relies on.
  private readonly seen = new Map<string, number>();
  private floor = -Infinity;
  private nextSweepAt = 0;

  constructor(opts: { windowMs?: number; maxEntries?: number } = {}) {
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    this.maxEntries = opts.maxEntries ?? 200_000;
  }

  /** Envelopes with ts at or below this must be refused as stale (ids older than this were forgotten). */
  get floorTs(): number {
    return this.floor;
  }

  get size(): number {
    return this.seen.size;
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  /** Records an accepted id. Call only after every other check passed, so forgeries cannot fill the set. */
  add(key: string, ts: number, now: number): void {
    this.sweep(now);
    this.seen.set(key, ts);
    while (this.seen.size > this.maxEntries) {
      const [oldest, oldestTs] = this.seen.entries().next().value as [string, number];
      this.seen.delete(oldest);
      if (oldestTs > this.floor) this.floor = oldestTs;
    }
  }

  // A full scan, but at most a few times per window, so the cost per add stays constant.
  private sweep(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.max(1, this.windowMs / 4);
    for (const [key, ts] of this.seen) {
      if (ts + this.windowMs < now) this.seen.delete(key);
    }
  }
}
