// Remembers recently accepted envelope ids, per sender, so a replayed envelope is refused as a duplicate.
//
// An envelope is only accepted while fresh (ts no more than `windowMs` old), so an id needs remembering only until
// its envelope turns stale (ts + window); after that the freshness check refuses it on its own.
//
// Memory is bounded twice, and each bound is paid for by a *floor* (envelopes with ts at or below it are refused as
// stale: we can no longer prove they are not replays) rather than by forgetting silently:
// - per sender, at most `maxEntries` ids: when full, the oldest-inserted id is forgotten and that sender's floor
//   rises to its ts;
// - at most `maxSenders` senders: the least recently active one is retired and its floor becomes the newest ts it
//   had recorded. Retired floors are kept (a number per sender, bounded by `maxRetired`, dropped once they fall out
//   of the window); past that bound the dropped floor raises a floor shared by every sender we hold nothing for.
//
// Floors are per sender because they follow the sender's own clock: one shared floor let a single peer stamping
// envelopes minutes ahead refuse everybody else's. Each floor is also clamped to our clock (≤ now), so no sender can
// push even its own floor into the future. The cost of the clamp: an evicted id whose ts is ahead of our clock could
// be accepted again until its ts passes — only by its own sender, as a sender must be the Noise-authenticated
// peer delivering the envelope (and receivers deduplicate by message id anyway).

interface Sender {
  /** id → ts; Map keeps insertion order, which eviction relies on. */
  seen: Map<string, number>;
  floor: number;
  /** Newest ts recorded, the floor this sender gets when retired. */
  newest: number;
}

export class ReplayGuard {
  readonly windowMs: number;
  readonly maxEntries: number;
  readonly maxSenders: number;
  readonly maxRetired: number;
  // Map order = least recently active first: a sender is re-inserted on each add.
  private readonly senders = new Map<string, Sender>();
  private readonly retired = new Map<string, number>();
  /** Floor for any sender neither tracked nor retired (raised when a retired floor had to be dropped early). */
  private forgottenFloor = -Infinity;
  private nextSweepAt = 0;

  constructor(opts: { windowMs?: number; maxEntries?: number; maxSenders?: number; maxRetired?: number } = {}) {
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    // ~160 bytes an id (measured): 4,096 × 128 senders ≈ 80 MiB at worst, and only for peers that really sent that
    // much validly signed traffic. A sender above ~14 envelopes/s fills its set within the window; its floor then
    // trails its newest envelope by 4,096 envelopes (≈ 2 s at the 2,000/s rate limit), which envelopes delivered in
    // order on one stream never fall behind. Retiring a sender costs it as little: its floor is its newest ts.
    this.maxEntries = opts.maxEntries ?? 4_096;
    this.maxSenders = opts.maxSenders ?? 128;
    this.maxRetired = opts.maxRetired ?? 65_536;
  }

  /** Envelopes from `sender` with ts at or below this must be refused as stale. */
  floorFor(sender: string): number {
    const s = this.senders.get(sender);
    if (s !== undefined) return s.floor;
    return this.retired.get(sender) ?? this.forgottenFloor;
  }

  has(sender: string, id: string): boolean {
    return this.senders.get(sender)?.seen.has(id) ?? false;
  }

  /** Ids held, over all senders. */
  get size(): number {
    let n = 0;
    for (const s of this.senders.values()) n += s.seen.size;
    return n;
  }

  get senderCount(): number {
    return this.senders.size;
  }

  /** Records an accepted id. Call only after every other check passed, so forgeries cannot fill the set. */
  add(sender: string, id: string, ts: number, now: number): void {
    this.sweep(now);
    let s = this.senders.get(sender);
    if (s === undefined) {
      s = { seen: new Map(), floor: this.floorFor(sender), newest: -Infinity };
      this.retired.delete(sender);
    } else {
      this.senders.delete(sender); // re-inserted below: most recently active last
    }
    this.senders.set(sender, s);
    s.seen.set(id, ts);
    if (ts > s.newest) s.newest = ts;
    while (s.seen.size > this.maxEntries) {
      const [oldest, oldestTs] = s.seen.entries().next().value as [string, number];
      s.seen.delete(oldest);
      s.floor = Math.max(s.floor, Math.min(oldestTs, now));
    }
    while (this.senders.size > this.maxSenders) {
      const [name, victim] = this.senders.entries().next().value as [string, Sender];
      this.senders.delete(name);
      this.retire(name, Math.max(victim.floor, Math.min(victim.newest, now)));
    }
  }

  private retire(sender: string, floor: number): void {
    this.retired.set(sender, floor);
    while (this.retired.size > this.maxRetired) {
      const [name, dropped] = this.retired.entries().next().value as [string, number];
      this.retired.delete(name);
      if (dropped > this.forgottenFloor) this.forgottenFloor = dropped;
    }
  }

  // At most a few times per window, so the cost per add stays constant. Ids are dropped from the front of each
  // sender's set (oldest inserted) while expired: senders stamp in order, so that is nearly all of them, and one
  // out of order only stays until the per-sender bound pushes it out.
  private sweep(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.max(1, this.windowMs / 4);
    const expired = (ts: number) => ts + this.windowMs < now;
    for (const [name, s] of this.senders) {
      for (const [id, ts] of s.seen) {
        if (!expired(ts)) break;
        s.seen.delete(id);
      }
      // Nothing left to remember and the floor can no longer refuse anything fresh: forget the sender.
      if (s.seen.size === 0 && expired(s.floor)) this.senders.delete(name);
    }
    for (const [name, floor] of this.retired) if (expired(floor)) this.retired.delete(name);
    if (expired(this.forgottenFloor)) this.forgottenFloor = -Infinity;
  }
}
