// A Tendermint validator (the actor, with real LMDB) judges a proposed block's time: a block stamped before its
// parent or more than a minute ahead of the validator's clock gets a nil prevote; one stamped now gets a prevote
// for its hash. The proposer is played by the test, holding the proposer's key.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { identityFromSeed, newSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { ChainStore } from '../../actors/threads/chain-store.ts';
import { TendermintValidator, type TmPayload } from '../../actors/threads/tendermint-validator.ts';
import { verifyEntrySignature } from '../../actors/threads/threads.ts';
import { blockHash, genesisHash, makeBlock, signEntry, toHex, type Genesis } from '../../machines/chain.ts';
import { signBytes, type Vote } from '../../machines/tendermint/index.ts';
import { systemClock } from '../../runtime/clock.ts';
import { EventStore } from '../../runtime/event-store.ts';

const THREAD = 'thr_01JZ0000000000000000000000';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Validator 0 under test; validator 1 proposes height 1, round 0 (round-robin: (height + round) mod n). */
async function setup() {
  const ids: Identity[] = await Promise.all([0, 1, 2, 3].map(() => identityFromSeed(newSeed())));
  const replicas = ids.map((i) => i.did);
  const genesis: Genesis = { thread: THREAD, backend: 'tendermint', replicas, creator: replicas[0]!, createdAt: Date.now() - 1_000 };
  const dir = mkdtempSync(join(tmpdir(), 'mm-tm-time-'));
  const store = new EventStore(dir);
  const prevotes: Vote[] = [];
  let onPrevote: () => void = () => undefined;
  const validator = new TendermintValidator({
    thread: THREAD, self: replicas[0]!, replicas, store, chain: new ChainStore(store, genesis), clock: systemClock,
    log: () => undefined, onCrash: (err) => { throw err; },
    verify: verifyEntrySignature, sign: ids[0]!.sign,
    send: async () => null,
    tell: (_to: string, payload: TmPayload) => {
      if (payload.k !== 'msgs') return;
      for (const m of payload.msgs as Vote[]) {
        if (m.type !== 'prevote') continue;
        prevotes.push(m);
        onPrevote();
      }
    },
  });
  cleanups.push(async () => {
    validator.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const proposer = ids[1]!;
  /** Validator 1's proposal for height 1, round 0 of a block stamped `time`; resolves with our prevote's hash. */
  const propose = async (time: number): Promise<string | null> => {
    const entry = signEntry({ thread: THREAD, id: 'e1', author: proposer.did, kind: 'decision', contentType: 'application/json', payload: new TextEncoder().encode('{}'), submittedAt: Date.now() }, proposer.sign);
    const block = makeBlock({ thread: THREAD, height: 1, parent: genesisHash(genesis), proposer: proposer.did, time, entries: [entry] });
    const unsigned = { type: 'proposal' as const, thread: THREAD, height: 1, round: 0, validRound: -1, blockHash: toHex(blockHash(block)), validator: proposer.did };
    const voted = new Promise<void>((resolve) => (onPrevote = resolve));
    validator.receive(proposer.did, { thread: THREAD, k: 'msgs', msgs: [{ ...unsigned, block, signature: proposer.sign(signBytes(unsigned)) }] });
    await voted;
    return prevotes.find((p) => p.height === 1 && p.round === 0)!.blockHash;
  };
  return { propose };
}

describe('tendermint validator: block time', () => {
  it('prevotes for a block stamped now', async () => {
    const { propose } = await setup();
    expect(await propose(Date.now())).toMatch(/^[0-9a-f]{64}$/);
  });

  it('prevotes nil for a block stamped more than a minute ahead of its clock', async () => {
    const { propose } = await setup();
    expect(await propose(Date.now() + 3_600_000)).toBeNull();
  });

  it('prevotes nil for a block stamped before its parent (here: before the thread was created)', async () => {
    const { propose } = await setup();
    expect(await propose(Date.now() - 3_600_000)).toBeNull();
  });
});
