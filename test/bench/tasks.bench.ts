// Tasks between two daemons vs raw GossipSub, same machine, same run.
//
// Ours: two real daemon processes A (requester) and B (assignee) on 127.0.0.1, connected over TCP. B's agent is
// a worker loop in this process on B's gRPC client (SubscribeIncomingTasks → UpdateTask), not the example's child
// process, so the figures are about the daemons.
//   round trip    = A's CreateTask → the worker sees it → UpdateTask WORKING → UpdateTask COMPLETED (a small
//                   artifact) → A's WaitTask returns COMPLETED; sequential. (The task machine completes only from
//                   WORKING, so a worker makes two UpdateTask calls, as the example worker does; each also puts a
//                   STATUS event in the task's stream, an ending's before its transition.)
//   event latency = B's PublishTaskEvent (unary) → the event on A's SubscribeTaskEvents stream; one at a time
//   events/s      = N token events in one PublishTaskEvents client stream on B, until A's SubscribeTaskEvents has
//                   the N-th (B groups the events of one turn into one GossipSub message)
// Raw: a plain libp2p node in this process publishing and another in a child process (raw-gossip-peer.ts)
// subscribed, both TCP + Noise + Yamux + Identify + GossipSub as the daemon configures it, messages of the size of
// one event's GossipSub message (one at a time for latency; N with a window of RAW_WINDOW not yet delivered for
// messages/s). Arrival times come from the child on the machine's monotonic clock.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { encode as cborEncode } from 'cbor-x';
import { multiaddr } from '@multiformats/multiaddr';
import type { MoltmeshClient, ServerStream } from '../../sdk/client.ts';
import {
  TaskEventKind, TaskState, taskStateToJSON,
  type SubscribeIncomingTasksResponse, type SubscribeTaskEventsResponse,
} from '../../proto/gen/moltmesh/v1/tasks.ts';
import { cpuMs, daemonPid, ownCpuMs, withTimeout } from './messaging.bench.ts';
import { GOSSIP_TOPIC, plainGossipNode } from './raw-gossip-peer.ts';
import { withDaemonPair } from './daemon-pair.ts';
import { heading, line, row, summarize } from './stats.ts';

const RT_WARMUP = 20;
const ROUND_TRIPS = 100;
const EV_WARMUP = 50;
const EV_SEQUENTIAL = 200;
const N = 10_000;
const TOKEN_BYTES = 8;   // text of one token event
const RAW_WINDOW = 512;  // raw messages published and not yet reported delivered
const RT_SKILL = 'bench-round-trip';
const STREAM_SKILL = 'bench-stream';

/** Token text of exactly TOKEN_BYTES ASCII bytes. */
const token = (i: number) => ` w${i}`.padEnd(TOKEN_BYTES, '.').slice(0, TOKEN_BYTES);

/** Bytes of the GossipSub message data B publishes for one token event (the batch actors/tasks/task-events.ts sends). */
function eventMessageBytes(taskId: string, author: string): number {
  return cborEncode({ taskId, events: [{ seq: 1234, kind: 'token', at: Date.now(), text: token(1234), author }] }).byteLength;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- ours: B's agent, and A's event subscription ----

interface ServedTimes { seen: number; working: number; completed: number }

/**
 * The agent on B, on B's gRPC client: `bench-round-trip` tasks are accepted (WORKING) and completed with a small
 * artifact at once; `bench-stream` tasks are accepted and handed to the bench.
 */
class Worker {
  readonly #client: MoltmeshClient;
  readonly #stream: ServerStream<SubscribeIncomingTasksResponse>;
  readonly served = new Map<string, ServedTimes>();
  readonly #servedWaiters = new Map<string, () => void>();
  /** Stream tasks accepted so far: true, or the bench's waiter until then. */
  readonly #accepted = new Map<string, true | (() => void)>();
  failure: unknown;

  constructor(client: MoltmeshClient) {
    this.#client = client;
    // include_pending: a task offered before the stream is registered on B is still delivered on it.
    const stream = client.a2a.subscribeIncomingTasks({ includePending: true });
    this.#stream = stream;
    void (async () => {
      for await (const { task } of stream) {
        const seen = performance.now();
        if (task) this.#serve(task.id, task.skill, seen).catch((e: unknown) => void (this.failure ??= e));
      }
    })().catch((e: unknown) => void (this.failure ??= e));
  }

  async #serve(taskId: string, skill: string, seen: number): Promise<void> {
    await this.#client.a2a.updateTask({ taskId, state: TaskState.TASK_STATE_WORKING }, { timeoutMs: 10_000 });
    const working = performance.now();
    if (skill.endsWith(STREAM_SKILL)) {
      const waiter = this.#accepted.get(taskId);
      this.#accepted.set(taskId, true);
      return typeof waiter === 'function' ? waiter() : undefined;
    }
    await this.#client.a2a.updateTask({
      taskId, state: TaskState.TASK_STATE_COMPLETED,
      artifacts: [{ name: 'result', parts: [{ text: 'done', contentType: 'text/plain' }] }],
    }, { timeoutMs: 10_000 });
    this.served.set(taskId, { seen, working, completed: performance.now() });
    this.#servedWaiters.get(taskId)?.();
  }

  /** The worker's times for a task, once its COMPLETED call has returned (the requester may see it earlier). */
  timesOf(taskId: string): Promise<ServedTimes> {
    const now = this.served.get(taskId);
    if (now) return Promise.resolve(now);
    return new Promise((ok) => this.#servedWaiters.set(taskId, () => {
      this.#servedWaiters.delete(taskId);
      ok(this.served.get(taskId)!);
    }));
  }

  /** Resolves once the worker has accepted the task (it is WORKING on B). */
  accepted(taskId: string): Promise<void> {
    return new Promise((ok) => (this.#accepted.get(taskId) === true ? ok() : this.#accepted.set(taskId, ok)));
  }

  close(): void {
    this.#stream.cancel();
  }
}

/** A's SubscribeTaskEvents stream: the arrival time (performance.now()) of each event, by seq. */
class EventArrivals {
  readonly #at: number[] = [];
  readonly #waiters = new Map<number, (t: number) => void>();
  #failed: Error | undefined;
  readonly #onFail = new Set<(e: Error) => void>();

  constructor(stream: ServerStream<SubscribeTaskEventsResponse>) {
    void (async () => {
      for await (const { event } of stream) {
        const t = performance.now();
        const seq = event!.seq;
        this.#at[seq] = t;
        const w = this.#waiters.get(seq);
        if (w) {
          this.#waiters.delete(seq);
          w(t);
        }
      }
      throw new Error('task event subscription ended');
    })().catch((e: Error) => {
      this.#failed = e;
      for (const f of this.#onFail) f(e);
    });
  }

  /** Resolves with the arrival time of event `seq` (at once if it is here already). */
  at(seq: number): Promise<number> {
    return new Promise<number>((ok, fail) => {
      if (this.#failed) return fail(this.#failed);
      if (this.#at[seq] !== undefined) return ok(this.#at[seq]);
      this.#onFail.add(fail);
      this.#waiters.set(seq, (t) => {
        this.#onFail.delete(fail);
        ok(t);
      });
    });
  }
}

interface Figures {
  roundTrip: { p50: number; p99: number };
  /** Medians of each step of a round trip, from the CreateTask call (all clocks are this process's). */
  steps: { created: number; seen: number; working: number; completed: number };
  latency: { p50: number; p99: number };
  publishReply: { p50: number; p99: number };
  rate: number;
  publishRate: number;
  /** CPU ms per event during the events/s run: daemon A, daemon B, this process (gRPC clients). */
  cpuPerEvent: { a: number; b: number; bench: number };
  eventBytes: number;
}

function measureDaemons(): Promise<Figures> {
  return withDaemonPair(async (a, b, onCleanup) => {
    const w = new Worker(b.client);
    onCleanup(() => w.close());

    // 1. Round trips, one task at a time.
    const roundTrip = async () => {
      const t0 = performance.now();
      const { task } = await a.client.a2a.createTask({ to: b.did, skill: RT_SKILL }, { timeoutMs: 10_000 });
      const created = performance.now();
      const res = await a.client.a2a.waitTask({ taskId: task!.id, timeoutMs: 10_000 }, { timeoutMs: 15_000 });
      const done = performance.now();
      if (res.timedOut || res.task!.state !== TaskState.TASK_STATE_COMPLETED) {
        throw new Error(`task ${task!.id} is ${taskStateToJSON(res.task!.state)} after 10 s` +
          (w.failure ? ` (worker: ${w.failure instanceof Error ? w.failure.message : String(w.failure)})` : ''));
      }
      const s = await w.timesOf(task!.id);
      return { total: done - t0, created: created - t0, seen: s.seen - t0, working: s.working - t0, completed: s.completed - t0 };
    };
    for (let i = 0; i < RT_WARMUP; i++) await roundTrip();
    const trips: Awaited<ReturnType<typeof roundTrip>>[] = [];
    for (let i = 0; i < ROUND_TRIPS; i++) trips.push(await roundTrip());
    const median = (k: 'created' | 'seen' | 'working' | 'completed') => summarize(trips.map((t) => t[k])).p50;

    // 2. Event latency, on one task accepted by the worker; A follows it from seq 1.
    const { task } = await a.client.a2a.createTask({ to: b.did, skill: STREAM_SKILL }, { timeoutMs: 10_000 });
    const taskId = task!.id;
    await withTimeout(w.accepted(taskId), 'the worker to accept the stream task', 10_000);
    const sub = a.client.a2a.subscribeTaskEvents({ taskId, fromSeq: 1 });
    onCleanup(() => sub.cancel());
    const arrivals = new EventArrivals(sub);
    const publishOne = (i: number) =>
      b.client.a2a.publishTaskEvent({ taskId, kind: TaskEventKind.TASK_EVENT_KIND_TOKEN, text: token(i) }, { timeoutMs: 10_000 });
    // Warm-up. The first events may go out before B has heard of A's subscription to the task's topic; A then
    // fetches them from B when a later one shows the gap, so a warm-up event is waited for only briefly.
    let seq = 0;
    for (let i = 0; i < EV_WARMUP; i++) {
      seq = (await publishOne(i)).seq;
      await Promise.race([arrivals.at(seq), sleep(500)]);
    }
    await withTimeout(arrivals.at(seq), 'warm-up events on A', 10_000);
    const latency: number[] = [];
    const reply: number[] = [];
    for (let i = 0; i < EV_SEQUENTIAL; i++) {
      const t0 = performance.now();
      const res = await publishOne(EV_WARMUP + i);
      reply.push(performance.now() - t0);
      if (res.seq !== seq + 1) throw new Error(`event numbered ${res.seq}, expected ${seq + 1}`);
      seq = res.seq;
      latency.push((await withTimeout(arrivals.at(seq), `event ${seq} on A`, 10_000)) - t0);
    }

    // 3. Events/s: N tokens in one client stream on B, until A's subscription has the last one.
    const last = seq + N;
    const all = arrivals.at(last);
    const pids = [daemonPid(a), daemonPid(b)] as const;
    const cpu0 = [cpuMs(pids[0]), cpuMs(pids[1]), ownCpuMs()];
    const t0 = performance.now();
    let tPublished = 0;
    const tokens = function* () {
      for (let i = 0; i < N; i++) yield { taskId, kind: TaskEventKind.TASK_EVENT_KIND_TOKEN, text: token(i) };
    };
    const published = b.client.a2a.publishTaskEvents(tokens(), { timeoutMs: 60_000 }).then((r) => {
      tPublished = performance.now();
      if (r.count !== N || r.lastSeq !== last) throw new Error(`PublishTaskEvents appended ${r.count} (${r.firstSeq}..${r.lastSeq}), expected ${N} up to ${last}`);
    });
    const tAll = await withTimeout(Promise.all([all, published]).then(([t]) => t), `${N} events on A`);
    const cpu1 = [cpuMs(pids[0]), cpuMs(pids[1]), ownCpuMs()];
    const perEvent = (i: number) => (cpu1[i]! - cpu0[i]!) / N;

    return {
      roundTrip: summarize(trips.map((t) => t.total)),
      steps: { created: median('created'), seen: median('seen'), working: median('working'), completed: median('completed') },
      latency: summarize(latency), publishReply: summarize(reply),
      rate: N / ((tAll - t0) / 1000), publishRate: N / ((tPublished - t0) / 1000),
      cpuPerEvent: { a: perEvent(0), b: perEvent(1), bench: perEvent(2) },
      eventBytes: eventMessageBytes(taskId, b.did),
    };
  });
}

// ---- raw: GossipSub between two plain nodes ----

/** The child's reports: arrival time (ns, monotonic clock) of each message by seq. */
class GossipPeer {
  readonly child: ChildProcess;
  readonly addr: string;
  readonly #at = new Map<number, bigint>();
  readonly #waiters = new Map<number, (ns: bigint) => void>();
  #onReport: (() => void) | undefined;
  delivered = 0;
  lastNs = 0n;

  private constructor(child: ChildProcess, addr: string, lines: ReturnType<typeof createInterface>) {
    this.child = child;
    this.addr = addr;
    lines.on('line', (l) => {
      const [s, t] = l.split(' ');
      const seq = Number(s);
      const ns = BigInt(t!);
      this.#at.set(seq, ns);
      this.delivered += 1;
      if (ns > this.lastNs) this.lastNs = ns;
      const w = this.#waiters.get(seq);
      if (w) {
        this.#waiters.delete(seq);
        w(ns);
      }
      this.#onReport?.();
    });
  }

  static async start(): Promise<GossipPeer> {
    const child = spawn(process.execPath, [new URL('./raw-gossip-peer.ts', import.meta.url).pathname], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! });
    try {
      const addr = await withTimeout(new Promise<string>((ok, fail) => {
        child.once('exit', (code) => fail(new Error(`raw gossip peer exited with ${code}`)));
        lines.once('line', (l) => ok((JSON.parse(l) as { addr: string }).addr));
      }), 'raw gossip peer start', 15_000);
      return new GossipPeer(child, addr, lines);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** Resolves with the arrival time (ns) of message `seq`. */
  at(seq: number): Promise<bigint> {
    const ns = this.#at.get(seq);
    return ns !== undefined ? Promise.resolve(ns) : new Promise((ok) => this.#waiters.set(seq, ok));
  }

  /** Resolves at the next report, or after `ms`. */
  report(ms: number): Promise<void> {
    return new Promise((ok) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        ok();
      }
      this.#onReport = () => {
        this.#onReport = undefined;
        done();
      };
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    child.stdin!.end();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(kill);
    }
  }
}

async function measureRaw(bytes: number): Promise<{ latency: { p50: number; p99: number }; rate: number; delivered: number }> {
  const peer = await GossipPeer.start();
  let node: Awaited<ReturnType<typeof plainGossipNode>> | undefined;
  try {
    node = await plainGossipNode([]);
    const pubsub = node.services.pubsub;
    const conn = await node.dial(multiaddr(peer.addr));
    // GossipSub drops publishes to a peer whose subscription it has not heard of yet (STACK-NOTES.md).
    await withTimeout((async () => {
      while (!pubsub.getSubscribers(GOSSIP_TOPIC).some((p) => p.equals(conn.remotePeer))) await sleep(10);
    })(), 'the raw peer\'s subscription', 10_000);
    const message = (seq: number) => {
      const data = new Uint8Array(bytes).fill(0x2e);
      new DataView(data.buffer).setUint32(0, seq);
      return data;
    };
    let seq = 0;
    const timed = async () => {
      const s = ++seq;
      const t0 = process.hrtime.bigint();
      await pubsub.publish(GOSSIP_TOPIC, message(s));
      return Number((await withTimeout(peer.at(s), `raw message ${s}`, 10_000)) - t0) / 1e6;
    };
    for (let i = 0; i < EV_WARMUP; i++) await timed();
    const latency: number[] = [];
    for (let i = 0; i < EV_SEQUENTIAL; i++) latency.push(await timed());

    // Messages/s: N as fast as the receiver keeps up (at most RAW_WINDOW not yet reported delivered), until all are
    // delivered or none arrives for 2 s; what was delivered counts.
    const [seq0, before] = [seq, peer.delivered];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      while (seq - seq0 - (peer.delivered - before) >= RAW_WINDOW) await peer.report(2000);
      await pubsub.publish(GOSSIP_TOPIC, message(++seq));
    }
    for (let got = -1; peer.delivered - before < N && peer.delivered !== got;) {
      got = peer.delivered;
      await peer.report(2000);
    }
    const delivered = peer.delivered - before;
    return { latency: summarize(latency), rate: delivered / (Number(peer.lastNs - t0) / 1e9), delivered };
  } finally {
    await Promise.resolve(node?.stop()).catch(() => undefined);
    await peer.stop();
  }
}

export async function benchTasks(): Promise<void> {
  heading(`tasks (round trip: ${ROUND_TRIPS} sequential after ${RT_WARMUP} warm-up; event latency: ${EV_SEQUENTIAL} ` +
    `one at a time after ${EV_WARMUP} warm-up; events/s: ${N} ${TOKEN_BYTES}-byte tokens in one PublishTaskEvents stream)`);
  console.log('ours: 2 daemon processes, gRPC on unix sockets, libp2p TCP, worker loop in the bench on B\'s client; ' +
    'raw: 2 plain libp2p nodes in 2 processes (TCP + Noise + Yamux + Identify), GossipSub publish → deliver, ' +
    `messages/s with ${RAW_WINDOW} undelivered at most; round-trip steps are ms since the CreateTask call`);
  const ours = await measureDaemons();
  const raw = await measureRaw(ours.eventBytes);
  line('task round trip (create → completed) p50', ours.roundTrip.p50, 'ms', '≤ 20 ms');
  line('task round trip p99', ours.roundTrip.p99, 'ms');
  line('  at CreateTask reply (A logged it) p50', ours.steps.created, 'ms');
  line('  at worker sees it (incoming stream) p50', ours.steps.seen, 'ms');
  line('  at UpdateTask WORKING reply (B logged) p50', ours.steps.working, 'ms');
  line('  at UpdateTask COMPLETED reply p50', ours.steps.completed, 'ms');
  row('PublishTaskEvent(B) → A\'s event stream p50', ours.latency.p50, raw.latency.p50, 'ms', '≤ 5 ms');
  row('PublishTaskEvent(B) → A\'s event stream p99', ours.latency.p99, raw.latency.p99, 'ms');
  line('  PublishTaskEvent reply p50 (B logged it)', ours.publishReply.p50, 'ms');
  line('  message size (one event, as B gossips it)', ours.eventBytes, 'bytes');
  row('events/s requester-side (one client stream)', ours.rate, raw.rate, 'ev/s', '≥ 10,000/s');
  line('  PublishTaskEvents reply (all durable on B)', ours.publishRate, 'ev/s');
  line('  CPU per event at load: daemon A', ours.cpuPerEvent.a, 'ms');
  line('  CPU per event at load: daemon B', ours.cpuPerEvent.b, 'ms');
  line('  CPU per event at load: bench (clients)', ours.cpuPerEvent.bench, 'ms');
  if (raw.delivered < N) line(`  raw: delivered of ${N} (none for 2 s after)`, raw.delivered, 'msgs');
}
