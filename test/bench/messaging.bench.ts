// Daemon-to-daemon messaging vs raw libp2p, same machine, same run.
//
// Ours: two real daemon processes A and B on 127.0.0.1, connected over TCP; a SubscribeInbox stream on B.
//   latency    = from calling A's SendMessage to the message arriving on B's subscription (sequential)
//   throughput = N messages with IN_FLIGHT SendMessage calls outstanding on A, until B's subscription has them all
// Raw: a plain libp2p node in this process (TCP + Noise + Yamux) and another in a child process
// (raw-echo-peer.ts), echoing length-prefixed frames of the same payload size over ONE reused stream.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { multiaddr } from '@multiformats/multiaddr';
import type { Stream } from '@libp2p/interface';
import { readFrames, writeFrame } from '../../actors/transport/frame.ts';
import type { DaemonProcess } from '../support/daemon-process.ts';
import type { MoltmeshClient, ServerStream } from '../../sdk/client.ts';
import type { SubscribeInboxResponse } from '../../proto/gen/moltmesh/v1/messaging.ts';
import { ECHO_PROTOCOL, MAX_FRAME, plainNode } from './raw-echo-peer.ts';
import { withDaemonPair } from './daemon-pair.ts';
import { heading, line, row, summarize } from './stats.ts';

const PAYLOAD_BYTES = 128;  // message text / echo frame size
const WARMUP = 50;
const SEQUENTIAL = 500;
const N = 5_000;
const IN_FLIGHT = 128;
const PHASE_TIMEOUT_MS = 30_000;

/** Text of exactly PAYLOAD_BYTES ASCII bytes, unique per (tag, i). */
function text(tag: string, i: number): string {
  const head = `${tag}-${i}-`;
  return head + 'x'.repeat(PAYLOAD_BYTES - head.length);
}

export function withTimeout<T>(p: Promise<T>, what: string, ms = PHASE_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, fail) => { timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs `op(i)` for i in [0, n) with `width` calls outstanding; resolves with the elapsed ms. */
async function inFlight(n: number, width: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await op(next++);
  }));
  return performance.now() - t;
}

/** CPU time (user + system) of a process so far in ms, from /proc (Linux); NaN elsewhere. 100 ticks/s assumed. */
export function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

export const daemonPid = (d: DaemonProcess) => Number(readFileSync(join(d.dataDir, 'daemon.pid'), 'utf8').trim());
export const ownCpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

// ---- ours: the inbox subscription on B, demultiplexed by message text ----

class Arrivals {
  readonly #waiters = new Map<string, (t: number) => void>();
  readonly #counters = new Map<string, { left: number; done: (t: number) => void }>();
  #failed: Error | undefined;
  #onFail = new Set<(e: Error) => void>();

  constructor(stream: ServerStream<SubscribeInboxResponse>) {
    void (async () => {
      for await (const { message } of stream) {
        const t = performance.now();
        const txt = message?.text ?? '';
        const w = this.#waiters.get(txt);
        if (w) {
          this.#waiters.delete(txt);
          w(t);
        }
        const c = this.#counters.get(txt.slice(0, txt.indexOf('-')));
        if (c && --c.left === 0) c.done(t);
      }
      throw new Error('inbox subscription ended');
    })().catch((e: Error) => {
      this.#failed = e;
      for (const f of this.#onFail) f(e);
    });
  }

  #guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((ok, fail) => {
      if (this.#failed) return fail(this.#failed);
      this.#onFail.add(fail);
      p.then(ok, fail).finally(() => this.#onFail.delete(fail));
    });
  }

  /** Resolves with the arrival time (performance.now()) of the message with this text. */
  one(txt: string): Promise<number> {
    return this.#guard(new Promise<number>((ok) => this.#waiters.set(txt, ok)));
  }

  /** Resolves with the arrival time of the n-th message whose text starts with `${tag}-`. */
  count(tag: string, n: number): Promise<number> {
    return this.#guard(new Promise<number>((done) => this.#counters.set(tag, { left: n, done })));
  }
}

async function sendOne(a: MoltmeshClient, to: string, arrivals: Arrivals, txt: string): Promise<{ arrive: number; reply: number; queued: boolean }> {
  const arrived = arrivals.one(txt);
  const t0 = performance.now();
  const res = await a.a2a.sendMessage({ to, text: txt }, { timeoutMs: 10_000 });
  const reply = performance.now() - t0;
  const arrive = (await withTimeout(arrived, `message "${txt.slice(0, 20)}…" on B`, 10_000)) - t0;
  return { arrive, reply, queued: res.queued };
}

interface Figures {
  latency: { p50: number; p99: number };
  sendReply: { p50: number; p99: number };
  grpcUnary: { p50: number };
  rate: number;
  queued: number;
  /** CPU ms per message during the throughput run: daemon A, daemon B, this process (gRPC clients). */
  cpuPerMsg: { a: number; b: number; bench: number };
}

function measureDaemons(): Promise<Figures> {
  return withDaemonPair(async (a, b, onCleanup) => {
    // include_unread: a message that lands before the stream is registered on B is still delivered on it.
    const sub = b.client.a2a.subscribeInbox({ includeUnread: true });
    onCleanup(() => sub.cancel());
    const arrivals = new Arrivals(sub);
    let queued = 0;

    for (let i = 0; i < WARMUP; i++) await sendOne(a.client, b.did, arrivals, text('warm', i));

    // A unary call through the same gRPC path and socket, for reference (no storage, no network).
    const unary: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await a.client.diag.health({});
      unary.push(performance.now() - t);
    }

    const latency: number[] = [];
    const reply: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const r = await sendOne(a.client, b.did, arrivals, text('seq', i));
      latency.push(r.arrive);
      reply.push(r.reply);
      if (r.queued) queued++;
    }

    const pids = [daemonPid(a), daemonPid(b)] as const;
    const cpu0 = [cpuMs(pids[0]), cpuMs(pids[1]), ownCpuMs()];
    const all = arrivals.count('tp', N);
    const t0 = performance.now();
    const sent = inFlight(N, IN_FLIGHT, async (i) => {
      const res = await a.client.a2a.sendMessage({ to: b.did, text: text('tp', i) }, { timeoutMs: 20_000 });
      if (res.queued) queued++;
    });
    const tAll = await withTimeout(Promise.all([all, sent]).then(([t]) => t), `${N} messages on B`);
    const rate = N / ((tAll - t0) / 1000);
    const cpu1 = [cpuMs(pids[0]), cpuMs(pids[1]), ownCpuMs()];
    const perMsg = (i: number) => (cpu1[i]! - cpu0[i]!) / N;

    return {
      latency: summarize(latency), sendReply: summarize(reply), grpcUnary: summarize(unary), rate, queued,
      cpuPerMsg: { a: perMsg(0), b: perMsg(1), bench: perMsg(2) },
    };
  });
}

// ---- raw: one reused libp2p stream, frames echoed in order ----

/** Requests on one stream; the echo preserves order, so replies are matched first-in first-out. */
class EchoClient {
  readonly #stream: Stream;
  readonly #queue: Array<(t: number) => void> = [];

  constructor(stream: Stream) {
    this.#stream = stream;
    void (async () => {
      for await (const _ of readFrames(stream, MAX_FRAME)) this.#queue.shift()?.(performance.now());
    })().catch(() => undefined);
  }

  async call(payload: Uint8Array): Promise<number> {
    const replied = new Promise<number>((ok) => this.#queue.push(ok));
    await writeFrame(this.#stream, payload);
    return replied;
  }
}

async function startEchoPeer(): Promise<{ child: ChildProcess; addr: string }> {
  const child = spawn(process.execPath, [new URL('./raw-echo-peer.ts', import.meta.url).pathname], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const addr = await withTimeout(new Promise<string>((ok, fail) => {
      child.once('exit', (code) => fail(new Error(`raw echo peer exited with ${code}`)));
      createInterface({ input: child.stdout! }).once('line', (l) => ok((JSON.parse(l) as { addr: string }).addr));
    }), 'raw echo peer start', 15_000);
    return { child, addr };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

export async function measureRaw(): Promise<{ latency: { p50: number; p99: number }; rate: number }> {
  const peer = await startEchoPeer();
  let node: Awaited<ReturnType<typeof plainNode>> | undefined;
  try {
    node = await plainNode([]);
    const stream = await node.dialProtocol(multiaddr(peer.addr), ECHO_PROTOCOL);
    const echo = new EchoClient(stream);
    const payload = new TextEncoder().encode(text('raw', 0));
    const timed = async () => {
      const t = performance.now();
      return (await echo.call(payload)) - t;
    };
    for (let i = 0; i < WARMUP; i++) await timed();
    const latency: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) latency.push(await timed());
    const ms = await withTimeout(inFlight(N, IN_FLIGHT, () => echo.call(payload)), 'raw throughput');
    await Promise.resolve(stream.close()).catch(() => undefined);
    return { latency: summarize(latency), rate: N / (ms / 1000) };
  } finally {
    await Promise.resolve(node?.stop()).catch(() => undefined);
    peer.child.stdin!.end();
    if (peer.child.exitCode === null && peer.child.signalCode === null) {
      const exited = new Promise((r) => peer.child.once('exit', r));
      const kill = setTimeout(() => peer.child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(kill);
    }
  }
}

export async function benchMessaging(): Promise<void> {
  heading(`messaging (${PAYLOAD_BYTES}-byte payloads; latency: ${SEQUENTIAL} sequential after ${WARMUP} warm-up; ` +
    `throughput: ${N} with ${IN_FLIGHT} in flight)`);
  console.log('ours: 2 daemon processes, gRPC on unix sockets, libp2p TCP; raw: 2 plain libp2p nodes in 2 processes ' +
    '(TCP + Noise + Yamux), echo over one reused stream');
  const raw = await measureRaw();
  const ours = await measureDaemons();
  // The issue's targets, in the order of its benchmarks: p50 ≤ 5 ms and ≥ 2,000/s here; "within 3× of the raw
  // baselines" is the event store's (raw LMDB puts and reads, the same durable work). The echo does no durable
  // write and is printed for scale: two fsyncs alone are ~2 ms.
  row('SendMessage(A) → SubscribeInbox(B) p50', ours.latency.p50, raw.latency.p50, 'ms', '≤ 5 ms');
  row('SendMessage(A) → SubscribeInbox(B) p99', ours.latency.p99, raw.latency.p99, 'ms');
  row(`durable msgs/s, ${IN_FLIGHT} in flight`, ours.rate, raw.rate, 'msg/s', '≥ 2,000/s');
  line('  SendMessage reply p50 (B acked, A logged)', ours.sendReply.p50, 'ms');
  line('  SendMessage reply p99', ours.sendReply.p99, 'ms');
  line('  gRPC unary Diag.Health p50 (reference)', ours.grpcUnary.p50, 'ms');
  line('  CPU per message at load: daemon A', ours.cpuPerMsg.a, 'ms');
  line('  CPU per message at load: daemon B', ours.cpuPerMsg.b, 'ms');
  line('  CPU per message at load: bench (clients)', ours.cpuPerMsg.bench, 'ms');
  if (ours.queued > 0) line('  answered queued: true (not live in 2 s)', ours.queued, 'msgs');
}
