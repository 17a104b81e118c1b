// Per-peer inbound rate limit: the bucket itself, and a transport refusing a flood before verifying it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFromSeed, newSeed } from '../../actors/identity/ed25519.ts';
import { PeerRateLimiter } from '../../actors/transport/rate-limit.ts';
import { Transport } from '../../actors/transport/transport.ts';

describe('PeerRateLimiter', () => {
  it('allows a burst, then the sustained rate, per peer', () => {
    const limiter = new PeerRateLimiter({ perSecond: 10, burst: 3 });
    const t = 1_000_000;
    expect([1, 2, 3, 4].map(() => limiter.take('p', t))).toEqual([true, true, true, false]);
    expect(limiter.take('q', t)).toBe(true); // another peer has its own bucket
    expect(limiter.take('p', t + 50)).toBe(false); // half a token
    expect(limiter.take('p', t + 100)).toBe(true);
    expect(limiter.take('p', t + 100)).toBe(false);
    // Idle long enough, the bucket is full again but never holds more than the burst.
    expect([1, 2, 3, 4].map(() => limiter.take('p', t + 60_000))).toEqual([true, true, true, false]);
  });

  it('refuses nonsense limits', () => {
    expect(() => new PeerRateLimiter({ perSecond: 0 })).toThrow(RangeError);
  });
});

describe('a transport under a flood', () => {
  const LOOPBACK_TCP = ['/ip4/127.0.0.1/tcp/0'];
  const make = async (extra: Partial<Parameters<typeof Transport.create>[0]>) => {
    const t = await Transport.create({
      identity: await identityFromSeed(newSeed()), listen: LOOPBACK_TCP, ipfsBootstrap: false, bootstrapPeers: [],
      mdns: false, requestTimeoutMs: 5000, ...extra,
    });
    await t.start();
    return t;
  };
  let server: Transport;
  let calls = 0;
  beforeAll(async () => {
    server = await make({ inboundRate: { perSecond: 5, burst: 10 } });
    server.handle('echo', async (env) => {
      calls++;
      return { type: 'echo.ok', payload: env.payload };
    });
  });
  afterAll(() => server?.stop());

  it('past the burst, resets the flooding peer\'s stream without verifying or answering, and recovers', async () => {
    // No batching on the flooding side: 30 envelopes at once.
    const flooder = await make({ maxBatch: 1 });
    try {
      await flooder.connect(server.addresses()[0]!);
      const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => flooder.request(server.did, 'echo', i)));
      const refused = results.filter((r) => r.status === 'rejected');
      // At most the burst got through; the 11th envelope reset the stream, failing whatever was still in flight.
      expect(results.length - refused.length).toBeLessThanOrEqual(10);
      expect(refused.length).toBeGreaterThanOrEqual(20);
      for (const r of refused) expect(r.reason).toMatchObject({ code: 'UNAVAILABLE' });
      expect(calls).toBeLessThanOrEqual(10);
      expect(server.stats().rejected['rate-limited']).toBeGreaterThanOrEqual(1);
      expect(server.stats().received).toBeLessThanOrEqual(10); // refused envelopes were never opened
      const signedReplies = server.stats().sent;
      expect(signedReplies).toBeLessThanOrEqual(10); // and never answered

      // Another peer is not affected.
      const other = await make({});
      try {
        await other.connect(server.addresses()[0]!);
        expect((await other.request(server.did, 'echo', 'other')).payload).toBe('other');
      } finally {
        await other.stop();
      }
      // The flooder's bucket refills at the sustained rate.
      await new Promise((r) => setTimeout(r, 450));
      expect((await flooder.request(server.did, 'echo', 'later')).payload).toBe('later');
    } finally {
      await flooder.stop();
    }
  });
});
