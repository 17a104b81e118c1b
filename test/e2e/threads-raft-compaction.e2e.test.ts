// Raft log compaction end to end in one process: three real RaftReplica shells (actors/threads/raft-replica.ts),
// each with its own LMDB event store and chain store in a temp dir, exchanging their consensus messages through an
// in-memory network (cloned, one event-loop turn later, as a transport would). With compaction lowered to every
// COMPACT_AFTER entries, a stream of appends compacts every log several times: the `thread-raft/` stream stays a
// BASE and a few READYs, and the core's log stays short. A replica that is down holds compaction back; restarted,
// it recovers from its BASE, catches up, and compaction goes on. The chains end identical and verify, and `replay`
// describes the BASE in words.
import { afterEach, describe, expect, it } from 'vitest';
import { identityFromSeed, newSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { ChainStore } from '../../actors/threads/chain-store.ts';
import { describeRaftEvent } from '../../actors/threads/consensus-log.ts';
import { RAFT_PREFIX, RaftReplica } from '../../actors/threads/raft-replica.ts';
import { verifyEntrySignature } from '../../actors/threads/threads.ts';
import { signEntry, toHex, type Genesis } from '../../machines/chain.ts';
import type { Message } from '../../machines/raft/index.ts';
import { systemClock } from '../../runtime/clock.ts';
import { EventStore } from '../../runtime/event-store.ts';
import { replayStream } from '../../runtime/replay.ts';
import { mulberry32 } from '../sim/raft-prng.ts';
import { tempDir, until } from '../support/temp-dir.ts';

const THREAD = 'thr_01JZ0000000000000000000001';
const COMPACT_AFTER = 10;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Node {
  readonly identity: Identity;
  readonly dir: string;
  store: EventStore;
  chain: ChainStore;
  replica: RaftReplica | null;
  /** Compactions logged by this node's shells. */
  compactions: number;
}

async function cluster() {
  const identities = await Promise.all([0, 1, 2].map(() => identityFromSeed(newSeed())));
  const replicas = identities.map((i) => i.did);
  const genesis: Genesis = { thread: THREAD, backend: 'raft', replicas, creator: replicas[0]!, createdAt: Date.now() - 1_000 };
  const problems: string[] = [];
  const nodes = new Map<string, Node>();

  const start = (node: Node, campaign: boolean) => {
    const random = mulberry32(replicas.indexOf(node.identity.did) + 1);
    node.replica = new RaftReplica({
      thread: THREAD, self: node.identity.did, replicas, store: node.store, chain: node.chain, clock: systemClock,
      log: (level, msg) => {
        if (msg === 'raft: log compacted') node.compactions++;
        if (level === 'error' || level === 'warn') problems.push(msg);
      },
      onCrash: (err) => problems.push(`crash: ${String(err)}`),
      random: () => random.next(), campaign, compactAfter: { entries: COMPACT_AFTER, bytes: Infinity },
      send: (to: string, m: Message) => setImmediate(() => nodes.get(to)?.replica?.receive(structuredClone(m))),
    });
  };
  for (const identity of identities) {
    const dir = tempDir('mm-raft-compaction-');
    const store = new EventStore(dir.path, { durable: false });
    const node: Node = { identity, dir: dir.path, store, chain: new ChainStore(store, genesis), replica: null, compactions: 0 };
    nodes.set(identity.did, node);
    cleanups.push(dir.cleanup);
    cleanups.push(async () => {
      node.replica?.stop();
      await node.store.close();
    });
  }
  const all = [...nodes.values()];
  all.forEach((n, i) => start(n, i === 0));

  let appended = 0;
  /** Append `count` entries one after another, each at the next live replica in turn (forwarded to the leader). */
  const append = async (count: number, live = all) => {
    for (let i = 0; i < count; i++) {
      const at = live[appended % live.length]!;
      const id = `e${++appended}`;
      const bytes = signEntry({ thread: THREAD, id, author: at.identity.did, kind: 'note', contentType: 'application/json', payload: new TextEncoder().encode(`{"n":${appended}}`), submittedAt: Date.now() }, at.identity.sign);
      await at.replica!.accept(id, bytes, false);
      await at.chain.landed(id, AbortSignal.timeout(10_000));
    }
  };
  const events = (n: Node) => [...n.store.read(RAFT_PREFIX + THREAD)];
  /** Entries the core holds in memory. */
  const held = (n: Node) => {
    const st = n.replica!.status();
    return st.lastIndex - st.base.index;
  };
  return { all, genesis, problems, start, append, events, held, appendedCount: () => appended };
}

describe('threads (raft): log compaction with LMDB', () => {
  it('compacts each log again and again; a replica down holds it back, restarts from its BASE and catches up; the chains stay identical', async () => {
    const { all, genesis, problems, start, append, events, held, appendedCount } = await cluster();
    await until(() => all.every((n) => n.replica!.leader !== null), 10_000, 'a leader');

    await append(4 * COMPACT_AFTER);
    for (const n of all) {
      expect(n.compactions).toBeGreaterThanOrEqual(2);
      const log = events(n);
      expect(log[0]!.type).toBe('BASE'); // every earlier event went with it
      expect(log.length).toBeLessThanOrEqual(2 * COMPACT_AFTER + 2);
      expect(held(n)).toBeLessThanOrEqual(2 * COMPACT_AFTER + 2);
    }

    // A follower goes down: the others commit without it, but cannot compact what it may lack.
    const down = all.find((n) => n.replica!.leader !== n.identity.did)!;
    const up = all.filter((n) => n !== down);
    const downLast = down.replica!.status().lastIndex;
    down.replica!.stop();
    down.replica = null;
    await down.store.close();
    await append(2 * COMPACT_AFTER, up);
    for (const n of up) expect(n.replica!.status().base.index).toBeLessThanOrEqual(downLast);

    // Restarted from what its disk holds: a BASE, then READYs.
    down.store = new EventStore(down.dir, { durable: false });
    down.chain = new ChainStore(down.store, genesis);
    expect(events(down)[0]!.type).toBe('BASE');
    const baseBefore = (events(down)[0]!.data as { base: { index: number } }).base.index;
    down.compactions = 0;
    start(down, false);
    expect(down.replica!.status().base.index).toBe(baseBefore);
    await append(3 * COMPACT_AFTER);
    for (const n of all) {
      expect(n.replica!.status().base.index).toBeGreaterThan(downLast);
      expect(events(n).length).toBeLessThanOrEqual(2 * COMPACT_AFTER + 2);
      expect(held(n)).toBeLessThanOrEqual(2 * COMPACT_AFTER + 2);
    }
    expect(down.compactions).toBeGreaterThanOrEqual(1);

    const total = appendedCount();
    await until(() => all.every((n) => n.chain.locate(`e${total}`)), 10_000, 'every replica to hold the last entry');
    const heads = all.map((n) => [n.chain.height, toHex(n.chain.head)]);
    expect(new Set(heads.map((h) => h.join()))).toHaveLength(1);
    for (const n of all) expect(n.chain.verify(verifyEntrySignature)).toMatchObject({ entries: total, head: n.chain.head });
    expect(problems).toEqual([]);

    const [first, ...rest] = [...replayStream(down.store, RAFT_PREFIX + THREAD, undefined, describeRaftEvent)];
    expect(first).toMatchObject({ type: 'BASE', event: { summary: expect.stringMatching(/^log compacted to index \d+ \(term \d+\); \d+ entr(y|ies) kept; hard state term \d+, vote …\w{6}, commit \d+$/) } });
    expect(rest.map((step) => step.type)).toEqual(rest.map(() => 'READY'));
  }, 30_000);
});
