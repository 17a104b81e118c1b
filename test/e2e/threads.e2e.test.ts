// Threads end to end, Raft backend, with daemons as processes on 127.0.0.1: three replicas appending at once end
// with one identical, verifiable chain; kill -9 of the leader during appends loses and duplicates nothing that was
// acknowledged, and the restarted replica catches up; a thread of one replica (f = 0) works with no peers at all;
// a non-member's append is refused; a consensus actor past its crash budget fails its thread alone; a batch append
// keeps request order, shares blocks and is all-or-nothing on bad input.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ThreadBackend, ThreadState, type Thread } from '../../proto/gen/moltmesh/v1/threads.ts';
import type { MoltmeshClient } from '../../sdk/client.ts';
import { EventStore } from '../../runtime/event-store.ts';
import { DaemonProcess } from '../support/daemon-process.ts';
import { pollUntil as until } from '../support/poll.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function daemons(n: number): Promise<DaemonProcess[]> {
  const ds = Array.from({ length: n }, () => new DaemonProcess());
  for (const d of ds) cleanups.push(() => d.dispose());
  await Promise.all(ds.map((d) => d.start()));
  // A full mesh: each dials the ones after it.
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await ds[i]!.client.diag.connect({ multiaddr: ds[j]!.tcpAddr });
  return ds;
}

const thread = async (c: MoltmeshClient, id: string): Promise<Thread> => (await c.a2a.getThread({ threadId: id })).thread!;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

async function append(c: MoltmeshClient, threadId: string, entryId: string, payload: unknown) {
  return c.a2a.appendEntry({ threadId, kind: 'decision', payload: json(payload), contentType: '', entryId, returnOnAccept: false });
}

/** Every entry id in the chain, in order (paging through GetThreadEntries). */
async function entryIds(c: MoltmeshClient, threadId: string): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = '';
  do {
    const page = await c.a2a.getThreadEntries({ threadId, sinceHeight: 0, pageSize: 500, pageToken });
    ids.push(...page.entries.map((e) => e.entryId));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return ids;
}

describe('threads (raft) across daemon processes', () => {
  it('three replicas append at once; every replica ends with the identical chain and verify-thread passes', async () => {
    const ds = await daemons(3);
    const [a, b, c] = ds as [DaemonProcess, DaemonProcess, DaemonProcess];
    const { thread: created } = await a.client.a2a.createThread({ replicas: [b.did, c.did], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 0 });
    expect(created!.faultTolerance).toBe(1);
    const id = created!.id;
    for (const d of [b, c]) await until('the replica to join', () => thread(d.client, id), (t) => t.state === ThreadState.THREAD_STATE_ACTIVE);

    const results = await Promise.all(ds.flatMap((d, k) => Array.from({ length: 20 }, (_, i) => append(d.client, id, `r${k}-${i}`, { k, i }))));
    expect(results.every((r) => r.committed)).toBe(true);
    const height = Math.max(...results.map((r) => r.height));
    const heads = await Promise.all(ds.map((d) => until('the replica to catch up', () => thread(d.client, id), (t) => t.height >= height)));
    expect(new Set(heads.map((t) => t.headHash)).size).toBe(1);
    for (const d of ds) {
      const v = await d.client.a2a.verifyThread({ threadId: id });
      expect([v.ok, v.entries, v.headHash]).toEqual([true, 60, heads[0]!.headHash]);
    }
    // Retrying an acknowledged entry id returns where it is; it is not appended twice.
    const again = await append(b.client, id, 'r0-3', { k: 0, i: 3 });
    expect(again).toEqual(results[3]);
    expect((await entryIds(c.client, id)).filter((e) => e === 'r0-3')).toHaveLength(1);
  }, 90_000);

  it('kill -9 of the leader during appends: a new leader, nothing acknowledged lost or duplicated, the restarted replica catches up', async () => {
    const ds = await daemons(3);
    const [a, b, c] = ds as [DaemonProcess, DaemonProcess, DaemonProcess];
    const { thread: created } = await a.client.a2a.createThread({ replicas: [b.did, c.did], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 1 });
    const id = created!.id;
    for (const d of [b, c]) await until('the replica to join', () => thread(d.client, id), (t) => t.state === ThreadState.THREAD_STATE_ACTIVE);
    await append(a.client, id, 'first', 0);
    const leaderDid = (await until('a leader', () => thread(a.client, id), (t) => t.leader !== '')).leader;
    const leader = ds.find((d) => d.did === leaderDid)!;
    const others = ds.filter((d) => d !== leader);

    // Two writers on the surviving replicas; each retries an entry (same id) until it is acknowledged.
    const acknowledged = new Set<string>();
    let killed = false;
    const writer = async (d: DaemonProcess, name: string) => {
      for (let i = 0; i < 30; i++) {
        const entryId = `${name}-${i}`;
        for (;;) {
          try {
            const r = await append(d.client, id, entryId, { i });
            if (r.committed) break;
          } catch {
            await new Promise((r) => setTimeout(r, 100)); // no leader yet: the election is under way
          }
        }
        acknowledged.add(entryId);
        if (i === 10 && !killed) {
          killed = true;
          await leader.kill9();
        }
      }
    };
    await Promise.all(others.map((d, k) => writer(d, `w${k}`)));
    expect(acknowledged.size).toBe(60);
    const newLeader = (await until('a new leader', () => thread(others[0]!.client, id), (t) => t.leader !== '' && t.leader !== leaderDid)).leader;
    expect(others.map((d) => d.did)).toContain(newLeader);

    await leader.start();
    for (const d of others) await leader.client.diag.connect({ multiaddr: d.tcpAddr });
    const target = await thread(others[0]!.client, id);
    const caughtUp = await until('the restarted replica to catch up', () => thread(leader.client, id), (t) => t.height >= target.height, 30_000);
    expect(caughtUp.headHash).toBe(target.headHash);
    for (const d of ds) {
      const ids = await entryIds(d.client, id);
      expect(new Set(ids).size).toBe(ids.length); // nothing twice
      for (const e of acknowledged) expect(ids).toContain(e); // nothing acknowledged lost
      expect((await d.client.a2a.verifyThread({ threadId: id })).ok).toBe(true);
    }
  }, 120_000);

  it('a thread of one replica (f = 0) commits with no peers at all', async () => {
    const [solo] = await daemons(1);
    const { thread: t } = await solo!.client.a2a.createThread({ replicas: [], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 0 });
    expect([t!.state, t!.replicas]).toEqual([ThreadState.THREAD_STATE_ACTIVE, [solo!.did]]);
    const r = await append(solo!.client, t!.id, 'only', { vote: 'approve' });
    expect([r.committed, r.height, r.index]).toEqual([true, 1, 0]);
    const v = await solo!.client.a2a.verifyThread({ threadId: t!.id });
    expect([v.ok, v.blocks, v.entries]).toEqual([true, 1, 1]);
  }, 30_000);

  it('a consensus actor past its crash budget fails its thread, with the reason, and the other threads carry on', async () => {
    const [d] = await daemons(1);
    const create = async () => (await d!.client.a2a.createThread({ replicas: [], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 0 })).thread!.id;
    const [broken, healthy] = [await create(), await create()];
    await append(d!.client, broken, 'before', 1);
    await d!.stop();
    // A consensus log this version cannot read: its actor crashes on every start.
    const store = new EventStore(join(d!.dataDir, 'store'));
    await store.append(`thread-raft/${broken}`, [{ type: 'READY', at: Date.now(), data: { hardState: null, entries: 'garbled' } }]);
    await store.close();
    await d!.start();
    const failed = await until('the broken thread to fail', () => thread(d!.client, broken), (t) => t.state === ThreadState.THREAD_STATE_FAILED);
    expect(failed.failureReason).toMatch(/^consensus failed: crashed 4 times in 60s; last error: .+/);
    const refused = await append(d!.client, broken, 'after', 2).catch((e: Error & { code?: string }) => e);
    expect(refused).toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining(`thread ${broken} failed here: consensus failed`) });
    expect(await append(d!.client, healthy, 'fine', 3)).toMatchObject({ committed: true, height: 1 });
    expect((await d!.client.a2a.verifyThread({ threadId: broken })).ok).toBe(true); // what it committed before stays readable
  }, 60_000);

  it('n and f that do not fit the backend are refused with the rule; a non-member\'s append is PERMISSION_DENIED', async () => {
    const [a, b, outsider] = await daemons(3);
    const err = await a!.client.a2a.createThread({ replicas: [b!.did], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 1 }).catch((e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('raft needs n ≥ 2f+1 replicas: tolerating 1 crashed replica takes 3, and there are 2') });
    // A thread of A and B; the outsider is connected to both but was never invited.
    const { thread: t } = await a!.client.a2a.createThread({ replicas: [b!.did], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 0 });
    await until('B joined', () => thread(b!.client, t!.id), (x) => x.state === ThreadState.THREAD_STATE_ACTIVE);
    const refused = await append(outsider!.client, t!.id, 'intruder', { vote: 'reject' }).catch((e: Error & { code?: string }) => e);
    expect(refused).toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining(`not a replica of ${t!.id}`) });
    const missing = await outsider!.client.a2a.getThread({ threadId: t!.id }).catch((e: Error & { code?: string }) => e);
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    // The members carry on, and nothing of the outsider's is in their chain.
    await append(b!.client, t!.id, 'member', { vote: 'approve' });
    expect(await until('A has the member entry', () => entryIds(a!.client, t!.id), (ids) => ids.length > 0)).toEqual(['member']);
  }, 60_000);

  it('AppendEntryBatch: results in request order, entries sharing blocks; a retry duplicates nothing; one bad entry appends nothing', async () => {
    const [a, b] = await daemons(2);
    const { thread: t } = await a!.client.a2a.createThread({ replicas: [b!.did], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 0 });
    const id = t!.id;
    await until('B joined', () => thread(b!.client, id), (x) => x.state === ThreadState.THREAD_STATE_ACTIVE);
    const item = (entryId: string, kind = 'decision') => ({ kind, payload: json({ entryId }), contentType: '', entryId });
    const batch = Array.from({ length: 300 }, (_, i) => item(`b-${i}`));
    // From B: whichever replica leads, the batch is committed through it.
    const { results } = await b!.client.a2a.appendEntryBatch({ threadId: id, entries: batch, returnOnAccept: false });
    expect(results.map((r) => [r.entryId, r.committed])).toEqual(batch.map((e) => [e.entryId, true]));
    const positions = results.map((r) => r.height * 1e6 + r.index);
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
    expect(new Set(results.map((r) => r.height)).size).toBeLessThan(10);
    expect(await until('A has them all', () => entryIds(a!.client, id), (ids) => ids.length === 300)).toEqual(batch.map((e) => e.entryId));
    const again = await a!.client.a2a.appendEntryBatch({ threadId: id, entries: batch.slice(0, 5), returnOnAccept: false });
    expect(again.results).toEqual(results.slice(0, 5));

    const refusal = (entries: ReturnType<typeof item>[]) =>
      a!.client.a2a.appendEntryBatch({ threadId: id, entries, returnOnAccept: false }).catch((e: Error & { code?: string }) => e);
    expect(await refusal([item('c-0'), item('c-1', '')])).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('entries[1].kind') });
    expect(await refusal([item('c-0'), item('c-0')])).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('entries[1].entry_id') });
    expect(await refusal(Array.from({ length: 1001 }, (_, i) => item(`c-${i}`)))).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('at most 1000') });
    expect(await refusal([])).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('entries') });
    expect(await refusal([item('c-0'), { ...item('c-1'), contentType: 'x'.repeat(200) }])).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('entries[1].content_type') });
    // return_on_accept: answered once accepted here; they commit after.
    const accepted = await b!.client.a2a.appendEntryBatch({ threadId: id, entries: batch.slice(0, 20).map((e) => ({ ...e, entryId: `a-${e.entryId}` })), returnOnAccept: true });
    expect(accepted.results.map((r) => r.entryId)).toEqual(batch.slice(0, 20).map((e) => `a-${e.entryId}`));
    await until('the accepted entries to commit', () => entryIds(a!.client, id), (ids) => ids.length === 320);
    const v = await b!.client.a2a.verifyThread({ threadId: id });
    expect([v.ok, v.entries]).toEqual([true, 320]);
    expect((await entryIds(b!.client, id)).some((e) => e.startsWith('c-'))).toBe(false);
  }, 60_000);
});
