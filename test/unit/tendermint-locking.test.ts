// The paper's locking and proof-of-lock (POL) rules, scripted round by round, with real Ed25519 signatures
// (node:crypto): a validator locked on a block does not prevote another one unless it sees 2f+1 prevotes for that
// block from a round at least as recent as its lock (lines 22-33), and a POL in the current round relocks it
// (lines 36-43). Validator A (index 0) is the core under test; B, C and D are played by the test. At height 1 the
// proposer of round r is validator (1 + r) mod 4: B, C, D, A, B, …
import { describe, expect, it } from 'vitest';
import { verifyCommit } from '../../machines/tendermint/index.ts';
import { hashBlock } from '../sim/tendermint-cluster.ts';
import { Harness, sent, short } from '../sim/tendermint-harness.ts';

const B = 1;
const C = 2;
const D = 3;

describe('tendermint locking (proof of lock)', () => {
  it('a validator locked on X prevotes nil for Y without a POL as recent as its lock, and unlocks with one', () => {
    const h = new Harness({ n: 4, self: 0, crypto: 'ed25519' });
    h.start();
    const x = h.block(1, ['e1'], C);
    const y = h.block(1, ['e2'], B);

    // Round 0 (B proposes Y): A never gets the proposal, but B, C and D prevote Y — a POL for Y in round 0.
    h.deliver(...h.votes([B, C, D], 'prevote', 1, 0, y));
    expect(sent(h.timeout('propose', 1, 0), 'prevote')).toEqual(['0:nil']);
    expect(sent(h.timeout('prevote', 1, 0), 'precommit')).toEqual(['0:nil']);
    h.deliver(...h.votes([B, C], 'precommit', 1, 0, null));
    h.timeout('precommit', 1, 0);

    // Round 1 (C proposes X): A is not locked, prevotes X; with C and D it sees 2f+1 prevotes for X and locks on
    // X in round 1 (line 36).
    expect(sent(h.deliver(h.proposal(C, 1, 1, x)), 'prevote')).toEqual([`1:${short(x)}`]);
    expect(sent(h.deliver(...h.votes([C, D], 'prevote', 1, 1, x)), 'precommit')).toEqual([`1:${short(x)}`]);
    expect(h.core.status).toMatchObject({ round: 1, lockedRound: 1, lockedHash: hashBlock(x), validRound: 1 });
    h.deliver(...h.votes([B, C], 'precommit', 1, 1, null));
    h.timeout('precommit', 1, 1);

    // Round 2 (D proposes Y with validRound 0): the POL for Y is from round 0, older than A's lock (round 1):
    // line 28 fires and line 30 makes the prevote nil. A stays locked on X.
    expect(sent(h.deliver(h.proposal(D, 1, 2, y, 0)), 'prevote')).toEqual(['2:nil']);
    expect(h.core.status).toMatchObject({ round: 2, lockedRound: 1, lockedHash: hashBlock(x) });

    // B and C are in round 3 already (f+1 of them): A follows (line 55). It is round 3's proposer, and re-proposes
    // its valid value X with validRound 1, sending the POL along (line 14), then prevotes it.
    const r3 = h.deliver(...h.votes([B, C], 'prevote', 1, 3, null));
    expect(sent(r3, 'proposal')).toEqual([`3:${short(x)}`]);
    expect(r3.broadcast.find((m) => m.type === 'proposal')).toMatchObject({ validRound: 1, block: x });
    expect(r3.broadcast.filter((m) => m.type === 'prevote' && m.round === 1).map((m) => m.validator).sort()).toEqual([h.ids[0], h.ids[C], h.ids[D]].sort());
    expect(sent(r3, 'prevote').filter((v) => v.startsWith('3:'))).toEqual([`3:${short(x)}`]);
    h.timeout('prevote', 1, 3);
    h.deliver(...h.votes([B, C], 'precommit', 1, 3, null));
    h.timeout('precommit', 1, 3);

    // Round 4 (B proposes Y with validRound 2): A has no POL for Y in round 2 yet, so it waits (line 28 is not
    // enabled, and the block is not fresh: line 22 does not apply either).
    expect(h.deliver(h.proposal(B, 1, 4, y, 2)).broadcast).toEqual([]);
    expect(h.core.status).toMatchObject({ round: 4, step: 'propose', lockedRound: 1 });
    // The round-2 prevotes for Y arrive: a POL from round 2 ≥ A's lock (round 1). A unlocks: prevotes Y (line 29).
    expect(sent(h.deliver(...h.votes([B, C, D], 'prevote', 1, 2, y)), 'prevote')).toEqual([`4:${short(y)}`]);
    // With B and C, 2f+1 prevotes for Y in round 4: A relocks on Y (line 36) and precommits it.
    expect(sent(h.deliver(...h.votes([B, C], 'prevote', 1, 4, y)), 'precommit')).toEqual([`4:${short(y)}`]);
    expect(h.core.status).toMatchObject({ lockedRound: 4, lockedHash: hashBlock(y), validRound: 4, validHash: hashBlock(y) });
    // And 2f+1 precommits decide it, with a certificate any reader can check.
    const done = h.deliver(...h.votes([B, D], 'precommit', 1, 4, y));
    expect(done.decided.map((d) => [d.height, d.blockHash])).toEqual([[1, hashBlock(y)]]);
    expect(verifyCommit(done.decided[0]!.certificate, h.ids, h.crypto.verify)).toEqual({ ok: true });
    expect(done.decided[0]!.certificate.precommits.map((p) => p.validator).sort()).toEqual([h.ids[0], h.ids[B], h.ids[D]].sort());
  });

  it('a POL in the current round relocks: locked on X, A precommits Y once 2f+1 prevote Y (lines 36-43)', () => {
    const h = new Harness({ n: 4, self: 0, crypto: 'ed25519' });
    h.start();
    const x = h.block(1, ['e1'], B);
    const y = h.block(1, ['e2'], C);
    // Round 0: lock on X.
    h.deliver(h.proposal(B, 1, 0, x));
    expect(sent(h.deliver(...h.votes([B, C], 'prevote', 1, 0, x)), 'precommit')).toEqual([`0:${short(x)}`]);
    h.deliver(...h.votes([C, D], 'precommit', 1, 0, null));
    h.timeout('precommit', 1, 0);
    // Round 1: a fresh proposal of Y. Locked on X, A prevotes nil (line 24)…
    expect(sent(h.deliver(h.proposal(C, 1, 1, y)), 'prevote')).toEqual(['1:nil']);
    expect(h.core.status).toMatchObject({ lockedRound: 0, lockedHash: hashBlock(x) });
    // …but B, C and D prevote Y: a POL for Y in this very round. A relocks on Y and precommits it.
    const relock = h.deliver(...h.votes([B, C, D], 'prevote', 1, 1, y));
    expect(sent(relock, 'precommit')).toEqual([`1:${short(y)}`]);
    expect(h.core.status).toMatchObject({ step: 'precommit', lockedRound: 1, lockedHash: hashBlock(y), validRound: 1 });
    // The new lock is what a restart brings back.
    expect(relock.persist).toMatchObject({ lockedRound: 1, lockedHash: hashBlock(y), validRound: 1 });
    expect(relock.persist!.validPol.map((v) => v.validator).sort()).toEqual([h.ids[B], h.ids[C], h.ids[D]].sort());
  });
});
