// Discovery and names on a 20-daemon mesh vs raw kad-dht on the same mesh, same run.
//
// Ours: MESH daemons on 127.0.0.1, daemon i offering `group-<i % 3>` (so each group capability has 6–7 agents) and
// `solo-<i>`, all bootstrapped to the first; NAMES of them claim a name each. Every call goes through a daemon's gRPC
// client on its unix socket, one call at a time, from a random daemon (for FindAgents one that does not offer the
// capability itself, whose own card would come first at once):
//   find first  = FindAgents(group-g, limit = its 6–7 agents) → the first verified card on the stream
//   find all    = the same stream → its last card (the limit: the daemon cancels its query then)
//   find end    = FindAgents(group-g, limit 100) → the stream's own end (the DHT query has run out)
//   resolve     = ResolveName of a name held by another daemon (a quorum read: its own copy and a GET_VALUE to the
//                 closest peers of its routing table until 3 storing peers have answered; the walk only if they fall short)
//   get card    = GetAgentCard of another daemon (the owner asked directly when connected, else the DHT)
// Raw: a plain libp2p node (TCP + Noise + Yamux + Identify + Ping + kad-dht with the mesh's protocol, server mode,
// passthroughMapper, validators and selectors that accept anything) joined to the same mesh, in this process:
//   dht.get(card key of a daemon) → the 3rd peer answering with a record (what resolve waits for) and → its end;
//   dht.findProviders(group-g's CID) → the first provider, and → its end.
// In-process only, also the CPU each kind of call costs the whole mesh (this process's CPU time during the call,
// less the idle mesh's share): on one event loop a call's latency is mostly that work, done one piece at a time.
//
// Where the daemons run: DISCOVERY_BENCH_DAEMONS=inprocess (default) starts all of them in this process with
// startDaemon (each its own data dir, libp2p host and LMDB), so they share one event loop with each other and with
// the raw node; =process starts each as a child process (DaemonProcess, like the e2e tests), 20 processes on the
// machine's cores, the raw node alone in this process. On a 2-core box the second is slower (20 event loops,
// their timers and GCs, scheduled on 2 cores), not more faithful: neither is one machine per daemon.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { startDaemon } from '../../actors/daemon.ts';
import { capabilityCid, cardKey } from '../../actors/discovery/dht.ts';
import { DHT_PROTOCOL } from '../../actors/transport/node.ts';
import { connectClient, type MoltmeshClient } from '../../sdk/client.ts';
import { DaemonProcess } from '../support/daemon-process.ts';
import { withTimeout } from './messaging.bench.ts';
import { dhtNode } from '../support/dht-node.ts';
import { heading, line, row, summarize } from './stats.ts';

const MESH = 20;
const GROUPS = 3;
const NAMES = 5;
const SAMPLES = 50;
const WARMUP = 10;
const FIND_TIMEOUT_MS = 10_000;
const READY_DEADLINE_MS = 120_000;
const CAP = 'a2a:v1:cap:';

const capsOf = (i: number) => [`group-${i % GROUPS}`, `solo-${i}`];
const nameOf = (k: number) => `bench-name-${k}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Agent {
  i: number;
  did: string;
  client: MoltmeshClient;
  tcpAddr: string;
  stop(): Promise<void>;
}

function configure(i: number, dir: string): void {
  writeFileSync(join(dir, 'moltbook.toml'), `[agent]\ndescription = "bench agent ${i}"\ncapabilities = [${capsOf(i).map((c) => `"${c}"`).join(', ')}]\n`);
}

async function startInProcess(): Promise<Agent[]> {
  process.setMaxListeners(100); // each daemon adds its own process-level error listeners
  const start = async (i: number, boot: string[]): Promise<Agent> => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-bench-disc-'));
    configure(i, dir);
    const d = await startDaemon(
      { dataDir: dir, port: 0, listen: ['/ip4/127.0.0.1/tcp/0'], ipfsBootstrap: false, mdns: false, bootstrap: boot, cwd: dir },
      { log: () => {} },
    );
    const client = connectClient({ dataDir: dir });
    return {
      i, did: d.did, client, tcpAddr: d.addresses.find((a) => a.includes('/tcp/'))!,
      stop: async () => {
        client.close();
        await d.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
  const first = await start(0, []);
  const rest = await Promise.all(Array.from({ length: MESH - 1 }, (_, k) => start(k + 1, [first.tcpAddr])));
  return [first, ...rest];
}

async function startProcesses(): Promise<Agent[]> {
  const start = async (i: number, boot: string[]): Promise<Agent> => {
    const p = new DaemonProcess({ args: boot.flatMap((b) => ['--bootstrap', b]) });
    configure(i, p.dataDir);
    try {
      await p.start(60_000);
    } catch (err) {
      await p.dispose();
      throw err;
    }
    return { i, did: p.did, client: p.client, tcpAddr: p.tcpAddr, stop: () => p.dispose() };
  };
  const first = await start(0, []);
  const rest = await Promise.allSettled(Array.from({ length: MESH - 1 }, (_, k) => start(k + 1, [first.tcpAddr])));
  const ok = rest.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = rest.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all([first, ...ok].map((a) => a.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return [first, ...ok];
}

/** The raw baseline: kad-dht alone, on the mesh's protocol, accepting and choosing records without looking. */
async function rawDhtNode() {
  const accept = async () => {};
  const first = () => 0;
  return dhtNode({
    protocol: DHT_PROTOCOL,
    validators: { 'moltmesh-card': accept, 'moltmesh-name': accept }, selectors: { 'moltmesh-card': first, 'moltmesh-name': first },
  });
}

type Timed = { first: number; all: number; end: number; count: number };

/** FindAgents on `a`: ms to the first card, to the `want`-th, and to the stream's end (limit 100 unless `limit`). */
async function timedFind(a: Agent, capability: string, want: number, limit = 100): Promise<Timed> {
  const t0 = performance.now();
  let first = NaN;
  let all = NaN;
  let count = 0;
  for await (const _ of a.client.a2a.findAgents({ capability, limit, timeoutMs: FIND_TIMEOUT_MS }, { timeoutMs: FIND_TIMEOUT_MS + 5_000 })) {
    count++;
    const t = performance.now() - t0;
    if (count === 1) first = t;
    if (count === want) all = t;
  }
  return { first, all, end: performance.now() - t0, count };
}

export async function benchDiscovery(): Promise<void> {
  const mode = process.env.DISCOVERY_BENCH_DAEMONS === 'process' ? 'process' : 'inprocess';
  heading(`discovery (${MESH}-daemon mesh on loopback, ${mode === 'process' ? 'one child process each' : 'all in this process'}; ` +
    `${SAMPLES} samples each after ${WARMUP} warm-up, one at a time, from a random daemon)`);
  console.log('ours: gRPC FindAgents / ResolveName / GetAgentCard on a daemon\'s unix socket; raw: kad-dht get / findProviders ' +
    'from a plain kad-dht node joined to the same mesh (records accepted unchecked)');
  const random = (n: number) => Math.floor(Math.random() * n);
  const t0 = performance.now();
  const agents = mode === 'process' ? await startProcesses() : await startInProcess();
  const startedMs = performance.now() - t0;
  let raw: Awaited<ReturnType<typeof rawDhtNode>> | undefined;
  try {
    const expected = new Map<string, Set<string>>();
    for (const a of agents) for (const c of capsOf(a.i)) expected.set(CAP + c, (expected.get(CAP + c) ?? new Set()).add(a.did));
    const groups = Array.from({ length: GROUPS }, (_, g) => `${CAP}group-${g}`);

    // Ready: each group capability found in full from a few daemons.
    const readyDeadline = Date.now() + READY_DEADLINE_MS;
    for (let round = 0; ; round++) {
      const ok = await Promise.all(groups.map(async (c, g) => {
        const found = await timedFind(agents[(round * GROUPS + g) % MESH]!, c, expected.get(c)!.size, expected.get(c)!.size);
        return found.count === expected.get(c)!.size;
      }));
      if (ok.every(Boolean)) break;
      if (Date.now() > readyDeadline) throw new Error(`the mesh did not find every group capability within ${READY_DEADLINE_MS} ms`);
      await sleep(200);
    }
    const readyMs = performance.now() - t0 - startedMs;

    // Names: held by the first NAMES daemons.
    for (let k = 0; k < NAMES; k++) await withTimeout(agents[k]!.client.a2a.claimName({ name: nameOf(k) }), `claim ${nameOf(k)}`, 30_000);

    raw = await rawDhtNode();
    await Promise.all(agents.map((a) => raw!.dial(multiaddr(a.tcpAddr))));
    const rawDht = raw.services.dht;
    const deadline = Date.now() + 10_000;
    while ((rawDht as unknown as { routingTable: { size: number } }).routingTable.size < MESH - 1 && Date.now() < deadline) await sleep(20);
    // The mesh's own background work, measured idle for 3 s before sampling, after the claims and the raw node's
    // arrival have settled (in-process only).
    let idleCpu = NaN;
    if (mode === 'inprocess') {
      await sleep(5_000);
      const c = process.cpuUsage();
      const t = performance.now();
      await sleep(3_000);
      const d = process.cpuUsage(c);
      idleCpu = ((d.user + d.system) / 1000 / (performance.now() - t)) * 100;
    }
    const cpu0 = process.cpuUsage();
    const tSamples = performance.now();

    // ---- samples: ours and raw interleaved, so both see the same mesh ----
    const s = {
      first: [] as number[], all: [] as number[], end: [] as number[], resolve: [] as number[], card: [] as number[],
      rawGet3: [] as number[], rawGet: [] as number[], rawProvFirst: [] as number[], rawProvEnd: [] as number[],
    };
    let short = 0;
    let fewHolders = 0;
    // CPU of this process per call (in-process: the whole mesh's work for it, plus the mesh's background), by kind.
    // Less the idle mesh's share over the call's duration, so what remains is the call's own work.
    const cpuOf: Record<string, number> = {};
    const cpuMark = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
    let mark = cpuMark();
    let markT = performance.now();
    const charge = (kind: string, keep: boolean) => {
      const [now, t] = [cpuMark(), performance.now()];
      if (keep) cpuOf[kind] = (cpuOf[kind] ?? 0) + (now - mark) - (Number.isNaN(idleCpu) ? 0 : (idleCpu / 100) * (t - markT));
      [mark, markT] = [now, t];
    };
    /** A daemon that does not offer `cap` (its own card would be the first result at once) and is not `not`. */
    const askerFor = (cap: string, not?: Agent) => {
      const pool = agents.filter((a) => !expected.get(cap)!.has(a.did) && a !== not);
      return pool[random(pool.length)]!;
    };
    for (let n = 0; n < WARMUP + SAMPLES; n++) {
      const keep = n >= WARMUP;
      const g = groups[n % GROUPS]!;
      const want = expected.get(g)!.size;
      [mark, markT] = [cpuMark(), performance.now()];

      // FindAgents to the first card and to all the capability's agents (limit = their number: the stream ends at the last).
      const f = await timedFind(askerFor(g), g, want, want);
      if (f.count < want) short++;
      charge('find-all', keep);
      // …and to the stream's own end (a high limit: the DHT query runs out).
      const e = await timedFind(askerFor(g), g, want);
      if (e.count < want) short++;
      charge('find-end', keep);
      // ResolveName of a name held by another daemon.
      const k = random(NAMES);
      const resolver = agents[NAMES + random(MESH - NAMES)]!;
      let t = performance.now();
      const r = await resolver.client.a2a.resolveName({ name: nameOf(k) }, { timeoutMs: 20_000 });
      const resolveMs = performance.now() - t;
      if (r.record!.did !== agents[k]!.did) throw new Error(`${nameOf(k)} resolved to ${r.record!.did}`);
      charge('resolve', keep);
      // GetAgentCard of another daemon.
      const target = agents[random(MESH)]!;
      const getter = agents.filter((x) => x !== target)[random(MESH - 1)]!;
      t = performance.now();
      await getter.client.a2a.getAgentCard({ did: target.did }, { timeoutMs: 20_000 });
      const cardMs = performance.now() - t;
      charge('card', keep);

      // Raw: get of a daemon's card key, until 3 peers answered with a record (what GetAgentCard and ResolveName
      // wait for from the DHT) and to the query's end.
      const key = cardKey(agents[random(MESH)]!.did);
      let get3 = NaN;
      let answered = 0;
      t = performance.now();
      for await (const ev of rawDht.get(key, { signal: AbortSignal.timeout(20_000) })) {
        if (ev.name === 'PEER_RESPONSE' && ev.record && ++answered === 3) get3 = performance.now() - t;
      }
      const rawGetMs = performance.now() - t;
      if (answered < 3) fewHolders++; // a card put while its daemon knew few peers (at start) is held by few
      charge('raw-get', keep);
      // findProviders of the same group capability, to the first provider and to the end.
      t = performance.now();
      let provFirst = NaN;
      const providers = new Set<string>();
      for await (const ev of rawDht.findProviders(capabilityCid(g), { signal: AbortSignal.timeout(20_000) })) {
        if (ev.name !== 'PROVIDER') continue;
        if (Number.isNaN(provFirst)) provFirst = performance.now() - t;
        for (const p of ev.providers) providers.add(p.id.toString());
      }
      const provEnd = performance.now() - t;
      if (providers.size < want) short++;
      charge('raw-providers', keep);

      if (!keep) continue;
      s.first.push(f.first); s.all.push(f.all); s.end.push(e.end); s.resolve.push(resolveMs); s.card.push(cardMs);
      s.rawGet3.push(get3); s.rawGet.push(rawGetMs); s.rawProvFirst.push(provFirst); s.rawProvEnd.push(provEnd);
    }
    const cpu = mode === 'inprocess' ? process.cpuUsage(cpu0) : undefined;
    const wall = performance.now() - tSamples;

    const q = (xs: number[]) => summarize(xs.filter((x) => !Number.isNaN(x)));
    const [first, all, end, resolve, card, rawGet3, rawGet, rawFirst, rawEnd] =
      [s.first, s.all, s.end, s.resolve, s.card, s.rawGet3, s.rawGet, s.rawProvFirst, s.rawProvEnd].map(q) as ReturnType<typeof q>[];
    line(`mesh started (${MESH} daemons)`, startedMs, 'ms');
    line('  then every group capability found', readyMs, 'ms');
    row('FindAgents → first result p50', first!.p50, rawFirst!.p50, 'ms', '≤ 50 ms');
    row('FindAgents → first result p99', first!.p99, rawFirst!.p99, 'ms');
    line('FindAgents → all 6–7 agents (limit = 6–7) p50', all!.p50, 'ms');
    line('FindAgents → all agents p99', all!.p99, 'ms');
    row('FindAgents → stream end (query done) p50', end!.p50, rawEnd!.p50, 'ms');
    row('FindAgents → stream end p99', end!.p99, rawEnd!.p99, 'ms');
    row('ResolveName (held elsewhere) p50', resolve!.p50, rawGet3!.p50, 'ms', '≤ 30 ms');
    row('ResolveName p99', resolve!.p99, rawGet3!.p99, 'ms');
    row('GetAgentCard (another daemon) p50', card!.p50, rawGet3!.p50, 'ms');
    row('GetAgentCard p99', card!.p99, rawGet3!.p99, 'ms');
    line('  raw findProviders → first provider p50', rawFirst!.p50, 'ms');
    line('  raw findProviders → query end p50', rawEnd!.p50, 'ms');
    line('  raw get (card key) → 3 records p50', rawGet3!.p50, 'ms');
    line('  raw get (card key) → query end p50', rawGet!.p50, 'ms');
    line('  raw get (card key) → query end p99', rawGet!.p99, 'ms');
    if (cpu) {
      line('  CPU busy while sampling (this process)', ((cpu.user + cpu.system) / 1000 / wall) * 100, '%');
      const per = (kind: string) => (cpuOf[kind] ?? NaN) / SAMPLES;
      line('  CPU of the idle mesh (background)', idleCpu, '%');
      console.log('  CPU per call, whole mesh, above idle:');
      line('    FindAgents to all agents', per('find-all'), 'ms');
      line('    FindAgents to stream end', per('find-end'), 'ms');
      line('    ResolveName', per('resolve'), 'ms');
      line('    GetAgentCard', per('card'), 'ms');
      line('    raw get, to 3 records and on to its end', per('raw-get'), 'ms');
      line('    raw findProviders to its end', per('raw-providers'), 'ms');
    }
    if (short) line('  searches that found fewer than all agents', short, `of ${3 * (WARMUP + SAMPLES)}`);
    if (fewHolders) line('  raw gets answered by fewer than 3 holders', fewHolders, `of ${WARMUP + SAMPLES}`);
  } finally {
    await Promise.resolve(raw?.stop()).catch(() => undefined);
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
  }
}

if (import.meta.main) {
  await benchDiscovery();
  process.exit(0);
}
