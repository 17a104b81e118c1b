// The Tendermint core (machines/tendermint/core.ts) one step at a time: the test plays the other validators
// (test/sim/tendermint-harness.ts) and reads what the core says to do.
import { describe, expect, it } from 'vitest';
import {
  proposer,
  signBytes,
  timeoutMs,
  verifyCommit,
  verifyEvidence,
  type CommitCertificate,
  type Timeout,
} from '../../machines/tendermint/index.ts';
import { GENESIS, THREAD, hashBlock } from '../sim/tendermint-cluster.ts';
import { HARNESS_TIMEOUTS, Harness, sent, short } from '../sim/tendermint-harness.ts';

const kinds = (ts: Timeout[]) => ts.map((t) => `${t.kind}+${t.delayMs}`);

describe('tendermint core', () => {
  it('f = 0: pending entries are proposed and decided in one step, with no network and no timer', () => {
    const h = new Harness({ n: 1, self: 0 });
    const start = h.start();
    expect(start.broadcast).toEqual([]);
    expect(start.timeouts).toEqual([]);

    const r = h.pending(['e1', 'e2']);
    expect(r.decided).toHaveLength(1);
    const d = r.decided[0]!;
    expect(d).toMatchObject({ height: 1, blockHash: hashBlock(d.block), block: { height: 1, parent: GENESIS, entries: ['e1', 'e2'] } });
    expect(verifyCommit(d.certificate, h.ids, h.crypto.verify)).toEqual({ ok: true });
    expect(r.broadcast).toEqual([]);
    expect(r.timeouts).toEqual([]);
    // Height advances after the commit; round 0 of the next height, idle until the shell says entries are pending.
    expect(r.persist).toMatchObject({ height: 2, round: 0, step: 'propose', parentHash: d.blockHash, signed: [] });
    expect(h.core.status).toMatchObject({ height: 2, round: 0, step: 'propose', active: false });

    const next = h.pending(['e3']);
    expect(next.decided.map((x) => [x.height, x.block.parent, x.block.entries])).toEqual([[2, d.blockHash, ['e3']]]);
    // Nothing pending (getBlock has nothing): nothing happens, and nothing is left scheduled.
    h.mempool = [];
    const idle = h.pending([]);
    expect([idle.decided, idle.broadcast, idle.timeouts]).toEqual([[], [], []]);
  });

  it('idle: with no entries pending, no validator proposes, sends or sets a timer', () => {
    const cores = [0, 1, 2, 3].map((self) => new Harness({ n: 4, self }));
    for (const c of cores) {
      const r = c.start();
      expect([r.broadcast, r.timeouts, r.decided, r.requestCommits]).toEqual([[], [], [], []]);
      // A stale timer changes nothing either.
      const t = c.timeout('propose', 1, 0);
      expect([t.broadcast, t.timeouts]).toEqual([[], []]);
    }
    // Entries pending: the proposer of (height 1, round 0) proposes at once; the others only start timeoutPropose
    // (and the gossip timer), sending nothing.
    const first = proposer(cores[0]!.ids, 1, 0);
    for (const c of cores) {
      const r = c.pending(['e1']);
      if (c.ids[c.self] === first) {
        expect(sent(r, 'proposal')).toEqual([`0:${short(c.block(1, ['e1'], c.self))}`]);
        expect(sent(r, 'prevote')).toHaveLength(1);
      } else {
        expect(r.broadcast).toEqual([]);
        expect(kinds(r.timeouts).sort()).toEqual(['gossip+1000', 'propose+100']);
      }
    }
  });

  it('proposers rotate round-robin over the ordered validators by height + round', () => {
    const ids = ['a', 'b', 'c', 'd'];
    const table = [1, 2, 3].map((height) => [0, 1, 2, 3, 4].map((round) => proposer(ids, height, round)).join(''));
    expect(table).toEqual(['bcdab', 'cdabc', 'dabcd']);
    // A validator that is not the proposer of the round does not propose even with entries; in the next round,
    // where it is the proposer, it proposes at once.
    const h = new Harness({ n: 4, self: 2 }); // proposer of height 1 round 1
    h.start();
    expect(h.pending(['e1']).broadcast).toEqual([]);
    h.timeout('propose', 1, 0);
    h.deliver(...h.votes([0, 1], 'prevote', 1, 0, null));
    const r = h.deliver(...h.votes([0, 1], 'precommit', 1, 0, null));
    expect(kinds(r.timeouts)).toEqual([`precommit+${HARNESS_TIMEOUTS.precommitBaseMs}`]);
    const round1 = h.timeout('precommit', 1, 0);
    expect(sent(round1, 'proposal')).toEqual([`1:${short(h.block(1, ['e1'], 2))}`]);
    expect(h.core.status).toMatchObject({ round: 1, proposer: h.ids[2] });
  });

  it('timeouts grow with the round: base + round × delta for propose, prevote and precommit', () => {
    expect([0, 1, 2, 3].map((r) => timeoutMs(HARNESS_TIMEOUTS, 'propose', r))).toEqual([100, 150, 200, 250]);
    const h = new Harness({ n: 4, self: 0 }); // proposer of rounds 3, 7, …: rounds 0-2 time out
    h.start();
    const seen: string[] = [];
    const note = (ts: Timeout[]) => seen.push(...kinds(ts.filter((t) => t.kind !== 'gossip')));
    note(h.pending(['e1']).timeouts);
    for (let round = 0; round < 3; round++) {
      note(h.timeout('propose', 1, round).timeouts);
      // 2f+1 prevotes but no 2f+1 for one value: line 34 starts timeoutPrevote.
      const x = h.block(1, ['e99'], 1);
      note(h.deliver(h.vote(1, 'prevote', 1, round, x), h.vote(2, 'prevote', 1, round, null)).timeouts);
      note(h.timeout('prevote', 1, round).timeouts);
      note(h.deliver(...h.votes([1, 2], 'precommit', 1, round, null)).timeouts);
      note(h.timeout('precommit', 1, round).timeouts);
    }
    expect(seen).toEqual([
      'propose+100', 'prevote+60', 'precommit+40',
      'propose+150', 'prevote+90', 'precommit+60',
      'propose+200', 'prevote+120', 'precommit+80',
    ]);
    expect(h.core.status).toMatchObject({ round: 3, step: 'prevote' }); // round 3: it proposed
  });

  it('refuses a proposal whose block does not hash to the signed hash, and takes the real one after it', () => {
    const h = new Harness({ n: 4, self: 0 });
    h.start();
    const real = h.block(1, ['e1'], 1);
    const p = h.proposal(1, 1, 0, real);
    const tampered = { ...p, block: { ...real, entries: ['e1', 'e666'] } };
    const r1 = h.deliver(tampered);
    expect(r1.broadcast).toEqual([]);
    expect(h.core.status.step).toBe('propose');
    const r2 = h.deliver(p);
    expect(sent(r2, 'prevote')).toEqual([`0:${short(real)}`]);
    // A block that hashes right but is not valid (no entries) is prevoted nil (line 24).
    const h2 = new Harness({ n: 4, self: 0 });
    h2.start();
    expect(sent(h2.deliver(h2.proposal(1, 1, 0, h2.block(1, [], 1))), 'prevote')).toEqual(['0:nil']);
  });

  it('two conflicting votes or proposals from one validator become evidence with both signed messages', () => {
    const h = new Harness({ n: 4, self: 0 });
    h.start();
    const a = h.block(1, ['e10'], 1);
    const b = h.block(1, ['e11'], 1);
    const va = h.vote(2, 'prevote', 1, 0, a);
    const vb = h.vote(2, 'prevote', 1, 0, b);
    expect(h.deliver(va, va).evidence).toEqual([]); // a duplicate is not equivocation
    const r = h.deliver(vb);
    expect(r.evidence).toHaveLength(1);
    const e = r.evidence[0]!;
    expect(e).toMatchObject({ kind: 'duplicate-vote', validator: h.ids[2], height: 1, round: 0, first: va, second: vb });
    // Anyone with the validators' keys can check it; altered, it no longer checks.
    expect(verifyEvidence(e, h.ids, h.crypto.verify)).toEqual({ ok: true });
    expect(verifyEvidence({ ...e, second: { ...vb, blockHash: hashBlock(h.block(1, ['e12'], 1)) } }, h.ids, h.crypto.verify).ok).toBe(false);
    expect(verifyEvidence({ ...e, second: va }, h.ids, h.crypto.verify).ok).toBe(false);
    // One piece of evidence per validator, round and type is enough.
    expect(h.deliver(h.vote(2, 'prevote', 1, 0, null)).evidence).toEqual([]);
    // A nil and a block precommit conflict too.
    expect(h.deliver(h.vote(3, 'precommit', 1, 0, null), h.vote(3, 'precommit', 1, 0, a)).evidence.map((x) => x.kind)).toEqual(['duplicate-vote']);
    // Two proposals from the round's proposer: the evidence keeps what was signed, not the blocks.
    const pr = h.deliver(h.proposal(1, 1, 0, a), h.proposal(1, 1, 0, b));
    expect(pr.evidence).toHaveLength(1);
    expect(pr.evidence[0]).toMatchObject({ kind: 'duplicate-proposal', validator: h.ids[1], first: { blockHash: hashBlock(a) }, second: { blockHash: hashBlock(b) } });
    expect('block' in pr.evidence[0]!.first).toBe(false);
    expect(verifyEvidence(pr.evidence[0]!, h.ids, h.crypto.verify)).toEqual({ ok: true });
  });

  it('a validator restarted after prevoting never prevotes differently in that round', () => {
    const h = new Harness({ n: 4, self: 0 });
    h.start();
    const a = h.block(1, ['e10'], 1);
    const first = h.deliver(h.proposal(1, 1, 0, a));
    const prevote = first.broadcast.find((m) => m.type === 'prevote')!;
    expect(prevote.blockHash).toBe(hashBlock(a));
    // The prevote was in the state to persist, in the same Ready as the send.
    expect(first.persist?.signed).toContainEqual(prevote);

    const restarted = h.restart();
    // It sends the same signed prevote again (it may not have left before the crash) and asks its peers whether
    // it missed a height; it signs nothing new.
    expect(restarted.broadcast).toEqual([prevote]);
    expect(restarted.requestCommits.map((x) => x.from).sort()).toEqual([h.ids[1], h.ids[2], h.ids[3]]);
    expect(h.core.status).toMatchObject({ height: 1, round: 0, step: 'prevote' });
    // The timeoutPropose of the round, re-armed by a shell that persisted timers, does nothing.
    expect(h.timeout('propose', 1, 0).broadcast).toEqual([]);
    // The proposal again, and a second one for the round from its proposer: evidence, not a reason to prevote.
    const b = h.deliver(h.proposal(1, 1, 0, a), h.proposal(1, 1, 0, h.block(1, ['e11'], 1)));
    expect([b.broadcast, b.evidence.map((e) => e.kind)]).toEqual([[], ['duplicate-proposal']]);

    // Even a shell that lost the step (persisted the signed prevote, not the step) gets the same prevote back.
    const doctored = { ...h.persisted!, step: 'propose' as const };
    h.restart(doctored);
    const again = h.timeout('propose', 1, 0);
    expect(sent(again, 'prevote')).toEqual([`0:${short(a)}`]);
    expect(again.broadcast.find((m) => m.type === 'prevote')!.signature).toEqual(prevote.signature);
  });

  it('a lock survives a restart: locked on A in round 0, the restarted validator prevotes nil for B in round 1', () => {
    const h = new Harness({ n: 4, self: 0 });
    h.start();
    const a = h.block(1, ['e10'], 1);
    h.deliver(h.proposal(1, 1, 0, a));
    const locked = h.deliver(...h.votes([1, 2], 'prevote', 1, 0, a));
    expect(sent(locked, 'precommit')).toEqual([`0:${short(a)}`]);
    h.deliver(...h.votes([1, 2], 'precommit', 1, 0, null));
    h.timeout('precommit', 1, 0);
    h.restart();
    expect(h.core.status).toMatchObject({ round: 1, lockedRound: 0, lockedHash: hashBlock(a) });
    expect(sent(h.deliver(h.proposal(2, 1, 1, h.block(1, ['e11'], 2))), 'prevote')).toEqual(['1:nil']);
  });

  it('verifyCommit accepts 2f+1 distinct validators signing the block and refuses anything less', () => {
    const h = new Harness({ n: 4, self: 0 });
    const x = h.block(1, ['e99'], 1);
    const cert: CommitCertificate = { thread: THREAD, height: 1, round: 2, blockHash: hashBlock(x), precommits: h.votes([0, 1, 3], 'precommit', 1, 2, x) };
    const verify = h.crypto.verify;
    expect(verifyCommit(cert, h.ids, verify)).toEqual({ ok: true });
    const bad = (c: CommitCertificate) => verifyCommit(c, h.ids, verify);
    expect(bad({ ...cert, precommits: cert.precommits.slice(0, 2) })).toMatchObject({ ok: false, reason: '2 precommits, 3 needed' });
    expect(bad({ ...cert, precommits: [...cert.precommits.slice(0, 2), cert.precommits[0]!] }).ok).toBe(false);
    expect(bad({ ...cert, precommits: [...cert.precommits.slice(0, 2), h.vote(3, 'precommit', 1, 1, x)] }).ok).toBe(false);
    expect(bad({ ...cert, precommits: [...cert.precommits.slice(0, 2), { ...cert.precommits[2]!, signature: new Uint8Array(8) }] }).ok).toBe(false);
    expect(bad({ ...cert, precommits: [...cert.precommits.slice(0, 2), h.vote(3, 'prevote', 1, 2, x)] }).ok).toBe(false);
    expect(verifyCommit(cert, h.ids.slice(0, 3), verify).ok).toBe(false); // validator 3 is not one of these
    expect(bad({ ...cert, height: 2 }).ok).toBe(false);
  });

  it('signs a fixed byte layout binding thread, height, round, type, validRound and block hash', () => {
    const hash = 'ab'.repeat(32);
    const bytes = signBytes({ type: 'precommit', thread: 'thr_x', height: 2 ** 32 + 5, round: 7, blockHash: hash });
    const expected = Buffer.concat([
      Buffer.from('moltmesh/tendermint/v1\n'), Buffer.from([3]), Buffer.from([0, 5]), Buffer.from('thr_x'),
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 5]), Buffer.from([0, 0, 0, 7]), Buffer.from([0xff, 0xff, 0xff, 0xff]),
      Buffer.from([32]), Buffer.alloc(32, 0xab),
    ]);
    expect(Buffer.from(bytes).toString('hex')).toBe(expected.toString('hex'));
    const nil = signBytes({ type: 'prevote', thread: 'thr_x', height: 1, round: 0, blockHash: null });
    expect(Buffer.from(nil).toString('hex')).toBe('6d6f6c746d6573682f74656e6465726d696e742f76310a' + '02' + '0005' + Buffer.from('thr_x').toString('hex') + '0000000000000001' + '00000000' + 'ffffffff' + '00');
    const prop = signBytes({ type: 'proposal', thread: 'thr_x', height: 1, round: 3, validRound: 1, blockHash: hash });
    expect(Buffer.from(prop.subarray(23, 24)).toString('hex')).toBe('01');
    expect(Buffer.from(prop.subarray(43, 47)).toString('hex')).toBe('00000001'); // validRound after height and round
    // Any field changes the bytes.
    const variants = [
      { type: 'prevote' as const }, { thread: 'thr_y' }, { height: 2 ** 32 + 6 }, { round: 8 }, { blockHash: 'ac' + 'ab'.repeat(31) }, { blockHash: null },
    ].map((v) => Buffer.from(signBytes({ type: 'precommit', thread: 'thr_x', height: 2 ** 32 + 5, round: 7, blockHash: hash, ...v })).toString('hex'));
    expect(new Set([Buffer.from(bytes).toString('hex'), ...variants]).size).toBe(variants.length + 1);
  });

  it('ignores garbage from the network: wrong shapes, strangers, other threads, bad signatures, upper-case hashes', () => {
    const h = new Harness({ n: 4, self: 0 });
    h.start();
    const x = h.block(1, ['e99'], 1);
    const good = h.vote(1, 'prevote', 1, 0, x);
    const junk: unknown[] = [
      null, 42, 'prevote', [], {}, { ...good, type: 'vote' }, { ...good, height: -1 }, { ...good, round: 1.5 }, { ...good, round: 2 ** 40 },
      { ...good, validator: 'did:key:z6MkStranger' }, { ...good, thread: 'thr_other' }, { ...good, signature: new Uint8Array(8) },
      { ...good, signature: 'sig' }, { ...good, blockHash: good.blockHash!.toUpperCase() }, { ...good, blockHash: 'xyz' },
      { ...h.proposal(1, 1, 0, x), validRound: 0 }, { ...h.proposal(1, 1, 0, x), block: undefined }, h.proposal(2, 1, 0, x),
      { ...h.proposal(1, 1, 0, x), block: 'not a block' },
    ];
    for (const m of junk) {
      const r = h.deliver(m);
      expect([r.broadcast, r.timeouts, r.evidence, r.decided]).toEqual([[], [], [], []]);
    }
    expect(h.core.status).toMatchObject({ height: 1, round: 0, step: 'propose', active: false });
  });

  it('catches up from a peer’s commit certificate, keeps next-height messages, and refuses forged certificates', () => {
    const h = new Harness({ n: 4, self: 0 });
    h.start();
    const b1 = h.block(1, ['e1'], 1);
    const b2 = h.block(2, ['e2'], 2, hashBlock(b1));
    // A fast proposer is already at height 2: its proposal waits for us (and tells us the height is live).
    const early = h.deliver(h.proposal(2, 2, 0, b2));
    expect(early.broadcast).toEqual([]);
    expect(h.core.status.active).toBe(true);
    const forged: CommitCertificate = { thread: THREAD, height: 1, round: 0, blockHash: hashBlock(b1), precommits: h.votes([1, 1, 1], 'precommit', 1, 0, b1) };
    expect(h.core.step({ type: 'commit', block: b1, certificate: forged }).decided).toEqual([]);
    const cert: CommitCertificate = { ...forged, precommits: h.votes([1, 2, 3], 'precommit', 1, 0, b1) };
    expect(h.core.step({ type: 'commit', block: { ...b1, entries: ['other'] }, certificate: cert }).decided).toEqual([]);
    const r = h.core.step({ type: 'commit', block: b1, certificate: cert, from: h.ids[1] });
    expect(r.decided.map((d) => [d.height, d.blockHash])).toEqual([[1, hashBlock(b1)]]);
    // At height 2 the kept proposal is taken at once, and the peer is asked for anything after height 1.
    expect(sent(r, 'prevote')).toEqual([`0:${short(b2)}`]);
    expect(r.requestCommits).toEqual([{ from: h.ids[1], height: 2 }]);
    // A message from a height we have decided: its signer is behind, send it the blocks.
    expect(h.core.peerHeight(h.ids[3]!)).toBe(-1);
    expect(h.deliver(h.vote(3, 'prevote', 1, 4, null)).sendCommits).toEqual([{ to: h.ids[3], height: 1 }]);
    // peerHeight: the highest height each validator signed something for that reached us, checked. A signer seen at
    // height 2 has decided height 1 (a shell need not push it that block); a forged signature counts for nothing.
    expect([h.core.peerHeight(h.ids[2]!), h.core.peerHeight(h.ids[3]!)]).toEqual([2, 1]);
    h.deliver({ ...h.vote(3, 'prevote', 2, 0, b2), signature: new Uint8Array(64) });
    expect(h.core.peerHeight(h.ids[3]!)).toBe(1);
    h.deliver(h.vote(3, 'prevote', 2, 0, b2));
    expect(h.core.peerHeight(h.ids[3]!)).toBe(2);
  });
});
