// Threads: commit latency for one client (AppendEntry until committed, one after another) and entries/s with many
// appends in flight (AppendEntry calls, then AppendEntryBatch calls), for a thread of one replica (f = 0), three
// Raft replicas and four Tendermint validators, each a daemon process on 127.0.0.1 (each cluster measured once its
// start-up work is done), beside a raw libp2p stream round trip (TCP + Noise + Yamux, one reused stream) measured
// in the run.
import { ThreadBackend, ThreadState } from '../../proto/gen/moltmesh/v1/threads.ts';
import type { MoltmeshClient } from '../../sdk/client.ts';
import { DaemonProcess } from '../support/daemon-process.ts';
import { measureRaw, withTimeout } from './messaging.bench.ts';
import { heading, line, row, summarize } from './stats.ts';

const WARMUP = 20;
const SEQUENTIAL = 200;
const N = 5_000;
const IN_FLIGHT = 256;
/** Batched throughput: AppendEntryBatch calls of BATCH entries, BATCHES_IN_FLIGHT at a time, N_BATCHED entries. */
const BATCH = 100;
const BATCHES_IN_FLIGHT = 8;
const N_BATCHED = 30_000;

async function cluster(n: number): Promise<DaemonProcess[]> {
  const ds = Array.from({ length: n }, () => new DaemonProcess());
  await Promise.all(ds.map((d) => d.start()));
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await ds[i]!.client.diag.connect({ multiaddr: ds[j]!.tcpAddr });
  return ds;
}

/**
 * Freshly started daemons spend about their first second and a half on start-up work (identify, the DHT's routing
 * table, thread joins, the JIT): up to a third of a core each. The figures are for a running cluster, so each
 * cluster idles this long before it is measured.
 */
const SETTLE_MS = 2_000;
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS));

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function measure(client: MoltmeshClient, threadId: string): Promise<{ p50: number; p99: number; rate: number; batchedRate: number }> {
  let k = 0;
  const append = () => client.a2a.appendEntry({ threadId, kind: 'bench', payload: Buffer.from(`{"n":${k++}}`), contentType: '', entryId: '', returnOnAccept: false });
  for (let i = 0; i < WARMUP; i++) await append();
  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t = performance.now();
    await append();
    samples.push(performance.now() - t);
  }
  const t0 = performance.now();
  let next = 0;
  await withTimeout(Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next++ < N) await append();
  })), 'thread throughput', 120_000);
  const rate = N / ((performance.now() - t0) / 1000);
  const batch = () => client.a2a.appendEntryBatch({
    threadId, returnOnAccept: false,
    entries: Array.from({ length: BATCH }, () => ({ kind: 'bench', payload: Buffer.from(`{"n":${k++}}`), contentType: '', entryId: '' })),
  });
  const t1 = performance.now();
  let nextBatch = 0;
  await withTimeout(Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, async () => {
    while (nextBatch++ < N_BATCHED / BATCH) await batch();
  })), 'batched thread throughput', 120_000);
  return { ...summarize(samples), rate, batchedRate: N_BATCHED / ((performance.now() - t1) / 1000) };
}

export async function benchThreads(): Promise<void> {
  heading(`threads (commit latency: ${SEQUENTIAL} sequential AppendEntry after ${WARMUP} warm-up; throughput: ${N} with ${IN_FLIGHT} in flight)`);
  console.log('ours: daemon processes, gRPC on unix sockets, one client; raw: a libp2p stream round trip between 2 processes');
  const raw = await measureRaw();
  const ds: DaemonProcess[] = [];
  try {
    const [solo] = await cluster(1);
    ds.push(solo!);
    const { thread: one } = await solo!.client.a2a.createThread({ replicas: [], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 0 });
    await settle();
    const f0 = await measure(solo!.client, one!.id);
    row('f = 0 commit p50', f0.p50, raw.latency.p50, 'ms', '≤ 1 ms');
    row('f = 0 commit p99', f0.p99, raw.latency.p99, 'ms');
    line('f = 0 entries/s', f0.rate, 'entries/s');
    line(`f = 0 entries/s, AppendEntryBatch of ${BATCH}, ${BATCHES_IN_FLIGHT} in flight`, f0.batchedRate, 'entries/s');
    await solo!.dispose();
    ds.length = 0;

    const three = await cluster(3);
    ds.push(...three);
    const [a, b, c] = three as [DaemonProcess, DaemonProcess, DaemonProcess];
    const { thread } = await a.client.a2a.createThread({ replicas: [b.did, c.did], backend: ThreadBackend.THREAD_BACKEND_RAFT, faultTolerance: 1 });
    for (const d of [b, c]) {
      await until('replicas to join', async () => (await d.client.a2a.getThread({ threadId: thread!.id })).thread!.state === ThreadState.THREAD_STATE_ACTIVE);
    }
    // Appends go to the leader's daemon, so they are not forwarded (the creator campaigns at once and again when a
    // replica joins, so it normally leads; asking keeps the figures right if another replica won).
    let leader = '';
    await until('a leader', async () => (leader = (await a.client.a2a.getThread({ threadId: thread!.id })).thread!.leader) !== '');
    await settle();
    const raft = await measure(three.find((d) => d.did === leader)!.client, thread!.id);
    row('raft, 3 replicas: commit p50', raft.p50, raw.latency.p50, 'ms', '≤ 3 ms');
    row('raft, 3 replicas: commit p99', raft.p99, raw.latency.p99, 'ms', '≤ 15 ms');
    row(`raft, 3 replicas: entries/s, ${IN_FLIGHT} in flight`, raft.rate, raw.rate, 'entries/s', '≥ 20,000/s');
    row(`raft, 3 replicas: entries/s, AppendEntryBatch of ${BATCH}, ${BATCHES_IN_FLIGHT} in flight`, raft.batchedRate, raw.rate, 'entries/s', '≥ 20,000/s');
    await Promise.all(three.map((d) => d.dispose()));
    ds.length = 0;

    const four = await cluster(4);
    ds.push(...four);
    const [v0, ...vs] = four as [DaemonProcess, ...DaemonProcess[]];
    const { thread: bft } = await v0.client.a2a.createThread({ replicas: vs.map((d) => d.did), backend: ThreadBackend.THREAD_BACKEND_TENDERMINT, faultTolerance: 1 });
    for (const d of vs) {
      await until('validators to join', async () => (await d.client.a2a.getThread({ threadId: bft!.id })).thread!.state === ThreadState.THREAD_STATE_ACTIVE);
    }
    await settle();
    const tm = await measure(v0.client, bft!.id);
    row('tendermint, 4 validators: commit p50', tm.p50, raw.latency.p50, 'ms', '≤ 15 ms');
    row('tendermint, 4 validators: commit p99', tm.p99, raw.latency.p99, 'ms');
    row(`tendermint, 4 validators: entries/s, ${IN_FLIGHT} in flight`, tm.rate, raw.rate, 'entries/s', '≥ 5,000/s');
    row(`tendermint, 4 validators: entries/s, AppendEntryBatch of ${BATCH}, ${BATCHES_IN_FLIGHT} in flight`, tm.batchedRate, raw.rate, 'entries/s', '≥ 5,000/s');
  } finally {
    await Promise.all(ds.map((d) => d.dispose()));
  }
}
