// A new Raft thread's first append waits for neither an election timeout nor the re-proposal delay. The creator
// campaigns at creation, before any replica has joined, so those votes reach nobody; when a replica joins, the
// creator campaigns again (peerJoined), and an append it took while leaderless is proposed at the first tick that
// knows the leader. Real RaftReplica shells on real LMDB, an in-memory network, and a clock driven by hand: no
// election timeout can fire unless the test moves time, and it moves it by one tick.
import { afterEach, describe, expect, it } from 'vitest';
import { identityFromSeed, newSeed } from '../../actors/identity/ed25519.ts';
import { ChainStore } from '../../actors/threads/chain-store.ts';
import { RaftReplica } from '../../actors/threads/raft-replica.ts';
import { signEntry, type Genesis } from '../../machines/chain.ts';
import type { Message } from '../../machines/raft/index.ts';
import { EventStore } from '../../runtime/event-store.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { tempDir, until } from '../support/temp-dir.ts';

const THREAD = 'thr_01JZ0000000000000000000003';
const TICK_MS = 50;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('raft: a new thread\'s first append', () => {
  it('commits after a replica joins and one tick, with no election timeout and no re-proposal wait', async () => {
    const clock = new ManualClock();
    const identities = await Promise.all([0, 1, 2].map(() => identityFromSeed(newSeed())));
    const replicas = identities.map((i) => i.did);
    const [creator, joiner] = identities as [typeof identities[0], typeof identities[0]];
    const genesis: Genesis = { thread: THREAD, backend: 'raft', replicas, creator: creator.did, createdAt: clock.now() };
    const problems: string[] = [];
    let dropped = false;
    const running = new Map<string, RaftReplica>();
    const start = (identity: typeof creator, campaign: boolean) => {
      const dir = tempDir('mm-raft-first-');
      const store = new EventStore(dir.path, { durable: false });
      const chain = new ChainStore(store, genesis);
      const replica = new RaftReplica({
        thread: THREAD, self: identity.did, replicas, store, chain, clock, campaign, random: () => 0.5,
        log: (level, msg) => {
          if (msg === 'raft: no leader yet; the append waits') dropped = true;
          if (level === 'error' || level === 'warn') problems.push(msg);
        },
        onCrash: (err) => problems.push(`crash: ${String(err)}`),
        // Replicas that have not joined run no replica: what is sent to them is lost.
        send: (to: string, m: Message) => setImmediate(() => running.get(to)?.receive(structuredClone(m))),
      });
      running.set(identity.did, replica);
      cleanups.push(dir.cleanup);
      cleanups.push(async () => {
        replica.stop();
        await store.close();
      });
      return { replica, chain };
    };

    const a = start(creator, true); // its votes go to replicas that have not joined
    const entry = signEntry({ thread: THREAD, id: 'first', author: creator.did, kind: 'note', contentType: 'application/json', payload: new TextEncoder().encode('{}'), submittedAt: clock.now() }, creator.sign);
    await a.replica.accept('first', entry, false);
    await until(() => dropped, 5_000, 'the leaderless proposal to be dropped');
    clock.advance(TICK_MS); // a tick with no leader: the append stays due
    expect(a.replica.leader).toBeNull();

    start(joiner, false);
    a.replica.peerJoined();
    await until(() => a.replica.leader === creator.did, 5_000, 'the creator to lead');
    clock.advance(TICK_MS);
    await a.chain.landed('first', AbortSignal.timeout(5_000));
    expect(clock.now() - genesis.createdAt).toBe(2 * TICK_MS); // far below an election timeout (10 ticks at least)
    expect(problems).toEqual([]);
  });
});
