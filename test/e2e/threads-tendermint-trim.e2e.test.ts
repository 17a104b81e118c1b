// Tendermint's consensus log trimmed, end to end in one process: four real TendermintValidator shells
// (actors/threads/tendermint-validator.ts), each with its own LMDB event store and chain store in a temp dir,
// exchanging their messages through an in-memory network (cloned, one event-loop turn later, as a transport would).
// With trimming lowered to every TRIM_AFTER events, a stream of appends trims every log several times: the
// `thread-tm/` stream stays a BASE and a few READYs. A validator restarted from a trimmed log resumes from the state
// its BASE (or a later READY) holds and keeps deciding; the chains end identical and verify, and `replay` says where
// the log was trimmed.
import { afterEach, describe, expect, it } from 'vitest';
import { identityFromSeed, newSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { ChainStore } from '../../actors/threads/chain-store.ts';
import { describeTendermintEvent } from '../../actors/threads/consensus-log.ts';
import { lastStoredState, TM_PREFIX, TendermintValidator } from '../../actors/threads/tendermint-validator.ts';
import { verifyEntrySignature } from '../../actors/threads/threads.ts';
import { signEntry, toHex, type Genesis } from '../../machines/chain.ts';
import { systemClock } from '../../runtime/clock.ts';
import { EventStore } from '../../runtime/event-store.ts';
import { replayStream } from '../../runtime/replay.ts';
import { tempDir, until } from '../support/temp-dir.ts';

const THREAD = 'thr_01JZ0000000000000000000002';
const TRIM_AFTER = 12;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Node {
  readonly identity: Identity;
  readonly dir: string;
  store: EventStore;
  chain: ChainStore;
  validator: TendermintValidator | null;
}

async function cluster() {
  const identities = await Promise.all([0, 1, 2, 3].map(() => identityFromSeed(newSeed())));
  const replicas = identities.map((i) => i.did);
  const genesis: Genesis = { thread: THREAD, backend: 'tendermint', replicas, creator: replicas[0]!, createdAt: Date.now() - 1_000 };
  const problems: string[] = [];
  const nodes = new Map<string, Node>();
  const deliver = (from: string, to: string, payload: unknown) => nodes.get(to)?.validator?.receive(from, structuredClone(payload));

  const start = (node: Node) => {
    const self = node.identity.did;
    node.validator = new TendermintValidator({
      thread: THREAD, self, replicas, store: node.store, chain: node.chain, clock: systemClock,
      log: (level, msg) => {
        if (level === 'error' || level === 'warn') problems.push(msg);
      },
      onCrash: (err) => problems.push(`crash: ${String(err)}`),
      verify: verifyEntrySignature, sign: node.identity.sign, trimAfterEvents: TRIM_AFTER,
      send: async (to, payload) => {
        await new Promise((r) => setImmediate(r));
        const reply = deliver(self, to, payload);
        if (reply === undefined) throw new Error(`${to} is down`);
        return structuredClone(reply);
      },
      tell: (to, payload) => void setImmediate(() => deliver(self, to, payload)),
    });
  };
  for (const identity of identities) {
    const dir = tempDir('mm-tm-trim-');
    const store = new EventStore(dir.path, { durable: false });
    const node: Node = { identity, dir: dir.path, store, chain: new ChainStore(store, genesis), validator: null };
    nodes.set(identity.did, node);
    cleanups.push(dir.cleanup);
    cleanups.push(async () => {
      node.validator?.stop();
      await node.store.close();
    });
  }
  const all = [...nodes.values()];
  all.forEach(start);

  let appended = 0;
  /** Append `count` entries one after another, each at the next validator in turn, until it is in that one's chain. */
  const append = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const at = all[appended % all.length]!;
      const id = `e${++appended}`;
      const bytes = signEntry({ thread: THREAD, id, author: at.identity.did, kind: 'note', contentType: 'application/json', payload: new TextEncoder().encode(`{"n":${appended}}`), submittedAt: Date.now() }, at.identity.sign);
      await at.validator!.accept(id, bytes, false);
      await at.chain.landed(id, AbortSignal.timeout(10_000));
    }
  };
  const events = (n: Node) => [...n.store.read(TM_PREFIX + THREAD)];
  return { all, genesis, problems, start, append, events, appendedCount: () => appended };
}

describe('threads (tendermint): the consensus log trimmed, with LMDB', () => {
  it('a restart resumes from the newest state: a READY after the BASE, else the BASE, else none', async () => {
    const dir = tempDir('mm-tm-trim-state-');
    const store = new EventStore(dir.path, { durable: false });
    cleanups.push(dir.cleanup, () => store.close());
    const stream = TM_PREFIX + THREAD;
    const event = (type: string, state: string | null) => ({ type, at: 0, data: { state: state && { height: 1, tag: state }, decided: [], evidence: [] } });
    const newest = () => (lastStoredState(store, stream) as { tag: string } | null)?.tag ?? null;
    await store.append(stream, [event('READY', 'a'), event('READY', 'b'), event('READY', null)]);
    expect(newest()).toBe('b');
    await store.append(stream, [event('BASE', 'b'), event('READY', null)], { rebase: true });
    expect(newest()).toBe('b'); // from the BASE: what it replaced is gone
    await store.append(stream, [event('READY', 'c')]);
    expect(newest()).toBe('c');
    await store.append(stream, [event('BASE', null)], { rebase: true });
    expect(newest()).toBeNull(); // nothing before the BASE is read
  });

  it('trims each log again and again; a validator restarted from a trimmed log resumes and keeps deciding; the chains stay identical', async () => {
    const { all, genesis, problems, start, append, events, appendedCount } = await cluster();

    await append(4 * TRIM_AFTER);
    for (const n of all) {
      const log = events(n);
      expect(log[0]!.type).toBe('BASE'); // every earlier event went with it
      expect((log[0]!.data as { state: unknown }).state).not.toBeNull(); // carrying the state written before it
      expect(log[0]!.seq).toBeGreaterThan(2 * TRIM_AFTER); // trimmed more than once
      expect(log.length).toBeLessThanOrEqual(2 * TRIM_AFTER + 2);
    }

    // One validator restarts from what its disk holds: a BASE, then READYs.
    const restarted = all[1]!;
    restarted.validator!.stop();
    restarted.validator = null;
    await restarted.store.close();
    restarted.store = new EventStore(restarted.dir, { durable: false });
    restarted.chain = new ChainStore(restarted.store, genesis);
    expect(events(restarted)[0]!.type).toBe('BASE');
    start(restarted);
    expect(restarted.validator!.status.height).toBe(restarted.chain.height + 1);
    await append(3 * TRIM_AFTER);

    const total = appendedCount();
    await until(() => all.every((n) => n.chain.locate(`e${total}`)), 10_000, 'every validator to hold the last entry');
    expect(new Set(all.map((n) => `${n.chain.height} ${toHex(n.chain.head)}`)).size).toBe(1);
    for (const n of all) {
      const report = n.chain.verify(verifyEntrySignature);
      expect([report.bad, report.entries]).toEqual([undefined, total]);
      expect(events(n).length).toBeLessThanOrEqual(2 * TRIM_AFTER + 2);
    }
    expect(problems).toEqual([]);

    const [first, ...rest] = [...replayStream(restarted.store, TM_PREFIX + THREAD, undefined, describeTendermintEvent)];
    expect(first).toMatchObject({ type: 'BASE', event: { summary: expect.stringMatching(/^log trimmed: the events before this one were dropped/) } });
    expect(rest.map((step) => step.type)).toEqual(rest.map(() => 'READY'));
  }, 60_000);
});
