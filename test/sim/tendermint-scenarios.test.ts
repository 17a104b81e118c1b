// Scripted cluster runs (tendermint-cluster.ts): real Ed25519 end to end, an idle thread that stays silent, a
// partition that stops commits until it heals, crashes between persisting and sending, a thread of one, and
// seven validators with faults.
import { describe, expect, it } from 'vitest';
import { Cluster } from './tendermint-cluster.ts';

const calm = { gst: 0, lossPct: 0, dupPct: 0, maxDelayBeforeGst: 5, maxDelayAfterGst: 5 };

describe('tendermint cluster', () => {
  it('real Ed25519: four validators, one equivocating, a lossy network — every entry committed, the equivocator caught', () => {
    const c = new Cluster({
      n: 4, seed: 2024, crypto: 'ed25519',
      network: { gst: 1500, lossPct: 20, dupPct: 10, maxDelayBeforeGst: 80, maxDelayAfterGst: 10 },
      byzantine: { index: 2, modes: [{ at: 0, mode: 'equivocate' }] },
    });
    for (let i = 0; i < 6; i++) c.submit(100 + i * 300, 2);
    c.run(20_000, () => c.now > 1600 && c.allCommitted());
    expect(c.allCommitted()).toBe(true);
    expect(c.stats.evidence).toBeGreaterThan(0);
    expect(c.stats.doubleVotesChecked).toBeGreaterThan(0);
    const chains = c.honest.map((n) => n.chain.map((d) => d.blockHash).join());
    expect(new Set(chains).size).toBe(1); // the same blocks at every honest validator (caught up by now)
  });

  it('an idle thread sends nothing and sets no timer; after committing it goes quiet again', () => {
    const c = new Cluster({ n: 4, seed: 1, network: calm });
    c.run(10_000);
    // Only the heights exchanged when the connections came up (one per ordered pair), answered by nothing.
    expect([c.stats.consensusPackets, c.stats.packetsSent, c.queued]).toEqual([0, 12, 0]);
    c.submit(10_000, 3);
    c.run(20_000, () => c.allCommitted());
    expect(c.allCommitted()).toBe(true);
    const committedAt = c.now;
    expect(committedAt - 10_000).toBeLessThan(50); // the proposer had the entries: no timeout on the way
    c.run(60_000);
    // Stale timers fired and did nothing; nothing was sent once every validator had decided.
    expect(c.queued).toBe(0);
    expect(c.lastSendAt).toBeLessThan(committedAt + 20);
    expect(c.honest.map((n) => n.chain.length)).toEqual([1, 1, 1, 1]);
  });

  it('a 2 | 2 partition commits nothing; once it heals, commits resume within the liveness bound', () => {
    const c = new Cluster({ n: 4, seed: 7, network: { ...calm, gst: 3_000 } });
    c.partition(0, 3_000, [true, true, false, false]);
    c.submit(100, 2);
    c.submit(1_000, 1);
    c.run(3_000);
    expect(c.stats.decisions).toBe(0);
    c.run(3_000 + 5_000, () => c.allCommitted());
    expect(c.allCommitted()).toBe(true);
    expect(c.now - 3_000).toBeLessThan(2_000);
  });

  it('validators that crash between persisting a step and sending it resend the same votes and the thread commits', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = new Cluster({ n: 4, seed, network: { gst: 2_000, lossPct: 10, dupPct: 5, maxDelayBeforeGst: 30, maxDelayAfterGst: 5 } });
      c.submit(0, 2);
      c.crash(1 + (seed % 5), seed % 4, 300, true);
      c.crash(3 + (seed % 7), (seed + 1) % 4, 500, true);
      c.submit(1_200, 1);
      c.run(2_000 + 5_000, () => c.now > 1_200 && c.allCommitted());
      expect(c.allCommitted()).toBe(true); // and no honest validator signed two different votes (checked per step)
    }
  });

  it('f = 0: a thread of one decides each submission at the instant it arrives, with no packet and no timer', () => {
    const c = new Cluster({ n: 1, seed: 3, network: calm });
    for (const at of [10, 20, 500]) c.submit(at, 2);
    const decidedAt: number[] = [];
    c.run(1_000, () => {
      if (c.nodes[0]!.chain.length > decidedAt.length) decidedAt.push(c.now);
      return false;
    });
    expect(decidedAt).toEqual([10, 20, 500]);
    expect([c.stats.packetsSent, c.queued]).toEqual([0, 0]);
  });

  it('seven validators (f = 2): a Byzantine one sending garbage and a crashed one do not stop or fork the thread', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = new Cluster({
        n: 7, seed,
        network: { gst: 1_000, lossPct: 15, dupPct: 5, maxDelayBeforeGst: 50, maxDelayAfterGst: 10 },
        byzantine: { index: seed % 7, modes: [{ at: 0, mode: 'garbage' }, { at: 600, mode: 'equivocate' }] },
      });
      c.crash(50, (seed + 1) % 7, 10_000, false); // down for good: f = 2 faults in all
      for (let i = 0; i < 4; i++) c.submit(i * 250, 2);
      c.run(8_000, () => c.now > 1_000 && c.honest.every((n) => !n.core || c.submitted.every((e) => n.applied.has(e))));
      for (const n of c.honest) if (n.core) expect(c.submitted.every((e) => n.applied.has(e))).toBe(true);
    }
  });
});
