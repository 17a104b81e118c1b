// Token buckets per remote peer, for inbound envelopes.
//
// Checked before an envelope's signature is verified: verification is the costly step (~200 µs), so a peer that
// floods us with envelopes — signed or not — is refused cheaply once past its burst. A bucket refills at `perSecond`
// tokens up to `burst`; an envelope takes one token before it is decoded, and a `batch` then takes one more per
// further inner request, so batching does not multiply a peer's rate.
//
// A full bucket is the same as no bucket, so buckets that have refilled are dropped: memory follows the number of
// peers that sent recently, and the bound on it (oldest dropped first) can only hand a peer a fresh burst.

export interface RateLimit {
  /** Sustained envelopes per second per peer. */
  perSecond: number;
  /** Envelopes a peer may send at once after being idle. */
  burst: number;
}

export const DEFAULT_INBOUND_RATE: RateLimit = { perSecond: 2_000, burst: 4_000 };
const MAX_PEERS = 4_096;

interface Bucket { tokens: number; at: number }

export class PeerRateLimiter {
  private readonly limit: RateLimit;
  private readonly buckets = new Map<string, Bucket>();
  private nextSweepAt = 0;

  constructor(limit: Partial<RateLimit> = {}) {
    this.limit = { ...DEFAULT_INBOUND_RATE, ...limit };
    if (!(this.limit.perSecond > 0) || !(this.limit.burst >= 1)) throw new RangeError('rate limit: perSecond > 0 and burst ≥ 1');
  }

  /** Takes `count` tokens from `peer`'s bucket; false (taking none) when it holds fewer: refuse the envelope. */
  take(peer: string, now: number, count = 1): boolean {
    this.sweep(now);
    let b = this.buckets.get(peer);
    if (b === undefined) {
      if (this.buckets.size >= MAX_PEERS) this.buckets.delete(this.buckets.keys().next().value as string);
      b = { tokens: this.limit.burst, at: now };
      this.buckets.set(peer, b);
    } else {
      b.tokens = this.refilled(b, now);
      b.at = now;
    }
    if (b.tokens < count) return false;
    b.tokens -= count;
    return true;
  }

  private refilled(b: Bucket, now: number): number {
    return Math.min(this.limit.burst, b.tokens + (Math.max(0, now - b.at) * this.limit.perSecond) / 1000);
  }

  // Once a second at most, so the cost per envelope stays constant.
  private sweep(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + 1000;
    for (const [peer, b] of this.buckets) if (this.refilled(b, now) >= this.limit.burst) this.buckets.delete(peer);
  }
}
