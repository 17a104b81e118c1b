// Threads end to end, Tendermint backend, with real daemons started in this process (separate data dirs, loopback
// only) and driven through gRPC: four validators appending at once end with one identical, verifiable chain whose
// blocks carry commit certificates; a validator replaced by a raw libp2p peer holding its key and signing
// conflicting votes cannot stop the three honest ones, which record the evidence; a validator stopped while blocks
// commit resumes from its persisted state and catches up; a thread of one validator (f = 0) commits with no peers
// at all. Then with daemons as processes: a validator killed with -9 in the middle of voting, twice, never signs a
// vote conflicting with one it sent before (nobody records evidence against it), and nothing acknowledged is lost.
// Prints the commit latency (p50) of four validators.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { multiaddr } from '@multiformats/multiaddr';
import { startDaemon, type RunningDaemon } from '../../actors/daemon.ts';
import { identityFromSeed, newSeed } from '../../actors/identity/ed25519.ts';
import { Transport } from '../../actors/transport/transport.ts';
import { verifyEntrySignature } from '../../actors/threads/threads.ts';
import { signBytes, verifyEvidence, type Evidence, type Vote } from '../../machines/tendermint/index.ts';
import { ThreadBackend, ThreadState, type Thread } from '../../proto/gen/moltmesh/v1/threads.ts';
import { connectClient, type MoltmeshClient } from '../../sdk/client.ts';
import { DaemonProcess } from '../support/daemon-process.ts';
import { pollUntil as until } from '../support/poll.ts';

interface Node {
  d: RunningDaemon;
  c: MoltmeshClient;
  dir: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

async function daemon(existingDir?: string): Promise<Node> {
  const dir = existingDir ?? mkdtempSync(join(tmpdir(), 'mm-tm-'));
  const d = await startDaemon(
    { dataDir: dir, port: 0, listen: ['/ip4/127.0.0.1/tcp/0'], ipfsBootstrap: false, mdns: false, cwd: dir },
    { log: (level, msg, fields) => { if (level === 'error' || process.env.LOG) console.log(level, msg, JSON.stringify(fields)); } },
  );
  const c = connectClient({ dataDir: dir });
  if (!existingDir) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => d.stop());
  cleanups.push(() => c.close());
  return { d, c, dir };
}

const tcp = (d: RunningDaemon) => d.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/'))!;

async function mesh(n: number): Promise<Node[]> {
  const ns = await Promise.all(Array.from({ length: n }, () => daemon()));
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await ns[i]!.c.diag.connect({ multiaddr: tcp(ns[j]!.d) });
  return ns;
}

const thread = async (c: MoltmeshClient, id: string): Promise<Thread> => (await c.a2a.getThread({ threadId: id })).thread!;
const append = (c: MoltmeshClient, threadId: string, entryId: string, payload: unknown) =>
  c.a2a.appendEntry({ threadId, kind: 'decision', payload: Buffer.from(JSON.stringify(payload)), contentType: '', entryId, returnOnAccept: false });

async function createTendermint(creator: Node, others: string[]): Promise<string> {
  const { thread: t } = await creator.c.a2a.createThread({ replicas: others, backend: ThreadBackend.THREAD_BACKEND_TENDERMINT, faultTolerance: 0 });
  expect(t!.backend).toBe(ThreadBackend.THREAD_BACKEND_TENDERMINT);
  return t!.id;
}

/** The first `n` blocks of a thread as SubscribeThread streams them. */
async function blocks(c: MoltmeshClient, threadId: string, n: number) {
  const stream = c.a2a.subscribeThread({ threadId, sinceHeight: 1 }, { timeoutMs: 10_000 });
  const out = [];
  for await (const { block } of stream) {
    out.push(block!);
    if (out.length === n) break;
  }
  stream.cancel();
  return out;
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('threads (tendermint) across daemons', () => {
  it('four validators append at once; all end with the identical chain, certified blocks, verify passes, no evidence', async () => {
    const ns = await mesh(4);
    const id = await createTendermint(ns[0]!, ns.slice(1).map((n) => n.d.did));
    const created = await thread(ns[0]!.c, id);
    expect(created.faultTolerance).toBe(1);
    expect(created.replicas).toEqual(ns.map((n) => n.d.did));
    for (const n of ns.slice(1)) await until('the validator to join', () => thread(n.c, id), (t) => t.state === ThreadState.THREAD_STATE_ACTIVE);

    const results = await Promise.all(ns.flatMap((n, k) => Array.from({ length: 10 }, (_, i) => append(n.c, id, `v${k}-${i}`, { k, i }))));
    expect(results.every((r) => r.committed)).toBe(true);
    const height = Math.max(...results.map((r) => r.height));
    const heads = await Promise.all(ns.map((n) => until('the validator to catch up', () => thread(n.c, id), (t) => t.height >= height)));
    expect(new Set(heads.map((t) => `${t.height}/${t.headHash}`)).size).toBe(1);
    for (const [i, n] of ns.entries()) {
      const v = await n.c.a2a.verifyThread({ threadId: id });
      expect([v.ok, v.entries, v.headHash]).toEqual([true, 40, heads[0]!.headHash]);
      expect(heads[i]!.evidence).toEqual([]);
      expect(ns.map((x) => x.d.did)).toContain(heads[i]!.leader);
    }
    // Every block carries its commit certificate: 2f+1 = 3 or more precommits by distinct validators.
    for (const n of ns) {
      for (const b of await blocks(n.c, id, heads[0]!.height)) {
        expect(new Set(b.commit.map((s) => s.validator)).size).toBeGreaterThanOrEqual(3);
        for (const s of b.commit) expect(verifyEntrySignature(s.validator, signBytes({ type: 'precommit', thread: id, height: b.height, round: s.round, blockHash: b.hash }), s.signature)).toBe(true);
      }
    }
    // Retrying an acknowledged entry id returns where it is; it is not appended twice.
    expect(await append(ns[2]!.c, id, 'v0-3', { k: 0, i: 3 })).toEqual(results[3]);

    // Commit latency, one append at a time, from each validator in turn.
    const lat: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      await append(ns[i % 4]!.c, id, `lat-${i}`, { i });
      lat.push(performance.now() - t0);
    }
    console.log(`tendermint, 4 validators in one process: commit latency p50 ${p50(lat).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`);
  }, 120_000);

  it('a validator down while 12 blocks commit resumes from its persisted state, catches up and takes part again', async () => {
    const ns = await mesh(4);
    const id = await createTendermint(ns[0]!, ns.slice(1).map((n) => n.d.did));
    for (const n of ns.slice(1)) await until('the validator to join', () => thread(n.c, id), (t) => t.state === ThreadState.THREAD_STATE_ACTIVE);
    await Promise.all(ns.map((n, k) => append(n.c, id, `before-${k}`, { k })));
    await until('the last validator to have them', () => thread(ns[3]!.c, id), (t) => t.height >= 1);

    const down = ns[3]!;
    down.c.close();
    await down.d.stop();
    for (let i = 0; i < 12; i++) expect((await append(ns[i % 3]!.c, id, `while-down-${i}`, { i })).committed).toBe(true);
    const target = await thread(ns[0]!.c, id);

    const back = await daemon(down.dir);
    for (const n of ns.slice(0, 3)) await back.c.diag.connect({ multiaddr: tcp(n.d) });
    const caught = await until('the restarted validator to catch up', () => thread(back.c, id), (t) => t.height >= target.height);
    expect(caught.headHash).toBe((await thread(ns[0]!.c, id)).headHash);
    // It votes and proposes again: a quorum of 3 now needs it only when another is down, but its own append commits.
    const r = await append(back.c, id, 'after', { back: true });
    expect(r.committed).toBe(true);
    const v = await back.c.a2a.verifyThread({ threadId: id });
    expect([v.ok, v.entries]).toEqual([true, 17]);
  }, 120_000);

  it('a thread of one validator (f = 0) commits with no peers', async () => {
    const [n] = [await daemon()];
    const id = await createTendermint(n!, []);
    expect((await thread(n!.c, id)).faultTolerance).toBe(0);
    const lat: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await append(n!.c, id, `solo-${i}`, { i });
      lat.push(performance.now() - t0);
      expect(r).toMatchObject({ committed: true, height: i + 1, index: 0 });
    }
    const v = await n!.c.a2a.verifyThread({ threadId: id });
    expect([v.ok, v.blocks, v.entries]).toEqual([true, 20, 20]);
    const [b] = await blocks(n!.c, id, 1);
    expect(b!.commit.map((s) => s.validator)).toEqual([n!.d.did]);
    console.log(`tendermint, f = 0: commit latency p50 ${p50(lat).toFixed(1)} ms`);
  }, 60_000);

  it('one validator is a raw libp2p peer signing conflicting votes: the honest three keep committing and record evidence', async () => {
    const ns = await mesh(3);
    const byzIdentity = await identityFromSeed(newSeed());
    const byz = await Transport.create({ identity: byzIdentity, listen: ['/ip4/127.0.0.1/tcp/0'], ipfsBootstrap: false, bootstrapPeers: [], mdns: false, requestTimeoutMs: 5_000 });
    cleanups.push(() => byz.stop());
    // It accepts the invite (and never joins), and answers every proposal with two prevotes and two precommits:
    // one for the block, one for nil, to every honest validator. It never proposes.
    let validators: string[] = [];
    let threadId = '';
    let equivocations = 0;
    byz.handle('thread', async (env) => {
      const p = env.payload as { kind?: string; genesis?: { thread: string; replicas: string[] } };
      if (p.kind === 'invite' && p.genesis) ({ thread: threadId, replicas: validators } = p.genesis);
      return { type: 'thread.ack', payload: { applied: true } };
    });
    const answered = new Set<string>();
    byz.handle('thread.tm', async (env) => {
      const p = env.payload as { thread?: string; k?: string; msgs?: { type: string; height: number; round: number; blockHash: string }[] };
      if (p.k !== 'msgs' || p.thread !== threadId) return { type: 'thread.tm.reply', payload: null };
      for (const m of p.msgs ?? []) {
        if (m.type !== 'proposal' || answered.has(`${m.height}/${m.round}`)) continue;
        answered.add(`${m.height}/${m.round}`);
        const votes: Vote[] = [];
        for (const type of ['prevote', 'precommit'] as const) {
          for (const blockHash of [m.blockHash, null]) {
            const unsigned = { type, thread: threadId, height: m.height, round: m.round, blockHash, validator: byzIdentity.did };
            votes.push({ ...unsigned, signature: byzIdentity.sign(signBytes(unsigned)) });
          }
        }
        equivocations++;
        for (const to of validators) {
          if (to !== byzIdentity.did) byz.request(to, 'thread.tm', { thread: threadId, k: 'msgs', msgs: votes }).catch(() => undefined);
        }
      }
      return { type: 'thread.tm.reply', payload: null };
    });
    await byz.start();
    for (const n of ns) await byz.libp2p.dial(multiaddr(tcp(n.d)));

    const id = await createTendermint(ns[0]!, [...ns.slice(1).map((n) => n.d.did), byzIdentity.did]);
    for (const n of ns.slice(1)) await until('the validator to join', () => thread(n.c, id), (t) => t.state === ThreadState.THREAD_STATE_ACTIVE);
    await until('the byzantine peer to be invited', async () => threadId, (t) => t === id);

    // Heights 3 and 7 have the silent peer as their first proposer: round 1 decides them.
    for (let i = 0; i < 8; i++) {
      const r = await append(ns[i % 3]!.c, id, `h-${i}`, { i });
      expect(r.committed).toBe(true);
    }
    const height = (await thread(ns[0]!.c, id)).height;
    const heads = await Promise.all(ns.map((n) => until('the validator to catch up', () => thread(n.c, id), (t) => t.height >= height)));
    expect(new Set(heads.map((t) => `${t.height}/${t.headHash}`)).size).toBe(1);
    expect(equivocations).toBeGreaterThan(0);
    for (const n of ns) {
      const v = await n.c.a2a.verifyThread({ threadId: id });
      expect([v.ok, v.entries]).toEqual([true, 8]);
      const t = await until('evidence', () => thread(n.c, id), (x) => x.evidence.length > 0);
      for (const e of t.evidence) {
        expect(e).toMatchObject({ validator: byzIdentity.did, kind: 'duplicate-vote' });
        // Anyone holding the DIDs can check it: both signed messages are in detail_json.
        const detail = JSON.parse(e.detailJson) as { thread: string; first: Record<string, unknown>; second: Record<string, unknown> };
        const bytes = (m: Record<string, unknown>) => ({ ...m, signature: new Uint8Array(Buffer.from(m.signature as string, 'hex')) });
        const evidence = { kind: e.kind, validator: e.validator, thread: detail.thread, height: e.height, round: e.round, first: bytes(detail.first), second: bytes(detail.second) } as Evidence;
        expect(verifyEvidence(evidence, validators, verifyEntrySignature)).toEqual({ ok: true });
      }
    }
    // `replay thread-tm/<id>` tells the story in words: rounds, decisions, the evidence recorded.
    const summaries: string[] = [];
    for await (const step of ns[0]!.c.diag.replayStream({ stream: `thread-tm/${id}` })) summaries.push((JSON.parse(step.eventJson) as { summary: string }).summary);
    expect(summaries.join('\n')).toMatch(/^height 3 round 1 (propose|prevote|precommit)/m);
    expect(summaries.join('\n')).toMatch(/decided 3 in round 1: [0-9a-f]{12}/);
    expect(summaries.join('\n')).toContain(`evidence: …${byzIdentity.did.slice(-6)} duplicate-vote at `);
  }, 120_000);
});

describe('threads (tendermint) across daemon processes', () => {
  it('kill -9 of a validator while it votes, twice: nothing acknowledged lost or duplicated, it catches up, and no evidence against anyone', async () => {
    const ds = Array.from({ length: 4 }, () => new DaemonProcess());
    for (const d of ds) cleanups.push(() => d.dispose());
    await Promise.all(ds.map((d) => d.start()));
    for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) await ds[i]!.client.diag.connect({ multiaddr: ds[j]!.tcpAddr });
    const { thread: created } = await ds[0]!.client.a2a.createThread({
      replicas: ds.slice(1).map((d) => d.did), backend: ThreadBackend.THREAD_BACKEND_TENDERMINT, faultTolerance: 1,
    });
    const id = created!.id;
    for (const d of ds.slice(1)) await until('the validator to join', () => thread(d.client, id), (t) => t.state === ThreadState.THREAD_STATE_ACTIVE);

    const victim = ds[2]!;
    const writers = ds.filter((d) => d !== victim);
    const acknowledged = new Set<string>();
    let done = 0;
    const writer = async (d: DaemonProcess, name: string) => {
      for (let i = 0; i < 25; i++) {
        const entryId = `${name}-${i}`;
        for (;;) {
          try {
            if ((await append(d.client, id, entryId, { i })).committed) break;
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        acknowledged.add(entryId);
      }
      done++;
    };
    const writing = Promise.all(writers.map((d, k) => writer(d, `w${k}`)));
    // Killed twice while the others append (every height is in progress: it is proposing and voting), restarted
    // each time from what it persisted.
    for (let round = 0; round < 2; round++) {
      await until('some appends', async () => acknowledged.size, (n) => n >= 15 + 25 * round);
      await victim.kill9();
      await new Promise((r) => setTimeout(r, 300));
      await victim.start();
      for (const d of writers) await victim.client.diag.connect({ multiaddr: d.tcpAddr });
    }
    await writing;
    expect([done, acknowledged.size]).toEqual([3, 75]);
    expect((await append(victim.client, id, 'victim', { back: true })).committed).toBe(true);

    const target = await thread(ds[0]!.client, id);
    const heads = await Promise.all(ds.map((d) => until('every validator to catch up', () => thread(d.client, id), (t) => t.height >= target.height, 30_000)));
    expect(new Set(heads.map((t) => t.headHash)).size).toBe(1);
    for (const [i, d] of ds.entries()) {
      const v = await d.client.a2a.verifyThread({ threadId: id });
      expect([v.ok, v.entries]).toEqual([true, 76]);
      // A restarted validator re-sends what it signed before the crash, never something new for the same step.
      expect(heads[i]!.evidence).toEqual([]);
    }
  }, 180_000);
});
