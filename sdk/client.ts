// A typed client for the daemon's gRPC API, for TypeScript agents and for our CLI.
// Thin on purpose: the generated service definitions give paths and codecs; this file adds promises,
// async-iterable server streams, the bearer token for TCP, and errors a human can act on.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  Client, credentials, Metadata, status as GrpcStatus,
  type CallOptions, type ClientReadableStream, type ServiceError,
} from '@grpc/grpc-js';
import { A2ANodeService } from '../proto/gen/moltmesh/v1/a2a_node.ts';
import { DiagService } from '../proto/gen/moltmesh/v1/diag.ts';
import { ExtService } from '../proto/gen/moltmesh/v1/ext.ts';
import * as cards from '../proto/gen/moltmesh/v1/cards.ts';
import * as diag from '../proto/gen/moltmesh/v1/diag.ts';
import * as files from '../proto/gen/moltmesh/v1/files.ts';
import * as identity from '../proto/gen/moltmesh/v1/identity.ts';
import * as messaging from '../proto/gen/moltmesh/v1/messaging.ts';
import * as names from '../proto/gen/moltmesh/v1/names.ts';
import * as networks from '../proto/gen/moltmesh/v1/networks.ts';
import * as pubsub from '../proto/gen/moltmesh/v1/pubsub.ts';
import * as tasks from '../proto/gen/moltmesh/v1/tasks.ts';
import * as threads from '../proto/gen/moltmesh/v1/threads.ts';
import * as webhooks from '../proto/gen/moltmesh/v1/webhooks.ts';

export interface ConnectOptions {
  dataDir?: string;    // default $MOLTMESH_DATA_DIR, then ~/.moltmesh
  grpcAddr?: string;   // "unix:/path", "/path" or "host:port"; default unix:<dataDir>/a2a.sock
  token?: string;      // TCP only; default: the contents of <dataDir>/grpc-token
}

export interface CallOpts {
  timeoutMs?: number;   // gRPC deadline
  signal?: AbortSignal; // cancels the call
}

/** A server stream: iterate it with `for await`; breaking out of the loop or cancel() ends the call. */
export type ServerStream<T> = AsyncGenerator<T, void, undefined> & { cancel(): void };

type Builtin = Date | Function | Uint8Array | string | number | boolean | undefined;
export type DeepPartial<T> = T extends Builtin ? T
  : T extends Array<infer U> ? Array<DeepPartial<U>>
  : T extends {} ? { [K in keyof T]?: DeepPartial<T[K]> }
  : Partial<T>;

type Req<D> = D extends { requestSerialize: (v: infer R) => Buffer } ? R : never;
type Res<D> = D extends { responseDeserialize: (b: Buffer) => infer R } ? R : never;

/** Each RPC of a generated service as a promise, a ServerStream, or (client streams) a promise over an iterable. */
export type Promisified<S> = {
  [K in keyof S]: S[K] extends { requestStream: false; responseStream: false }
    ? (req?: DeepPartial<Req<S[K]>>, opts?: CallOpts) => Promise<Res<S[K]>>
    : S[K] extends { requestStream: false; responseStream: true }
      ? (req?: DeepPartial<Req<S[K]>>, opts?: CallOpts) => ServerStream<Res<S[K]>>
      : S[K] extends { requestStream: true; responseStream: false }
        ? (reqs: Iterable<DeepPartial<Req<S[K]>>> | AsyncIterable<DeepPartial<Req<S[K]>>>, opts?: CallOpts) => Promise<Res<S[K]>>
        : never;
};

export type A2AClient = Promisified<typeof A2ANodeService>;
export type DiagClient = Promisified<typeof DiagService>;
export type ExtClient = Promisified<typeof ExtService>;

export interface MoltmeshClient {
  a2a: A2AClient;
  diag: DiagClient;
  ext: ExtClient;
  address: string;
  /** Resolves once connected; rejects with a DaemonError ("daemon not running at …") otherwise. */
  ready(timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Every failed call rejects with this: `code` is the gRPC status name, `field` the input at fault when known. */
export class DaemonError extends Error {
  readonly code: string;
  readonly grpcCode: number;
  readonly field: string | undefined;
  constructor(code: number, message: string, field?: string) {
    super(message);
    this.name = 'DaemonError';
    this.grpcCode = code;
    this.code = GrpcStatus[code] ?? 'UNKNOWN';
    this.field = field;
  }
}

/** Largest gRPC message the client sends or accepts (a message body is at most 1 MiB; a GetInbox page ~3 MiB). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Trailer the server sets on INVALID_ARGUMENT (and other ApiErrors) naming the request field. */
export const FIELD_METADATA_KEY = 'moltmesh-field';

export function defaultDataDir(): string {
  return resolve(process.env.MOLTMESH_DATA_DIR || join(homedir(), '.moltmesh'));
}

export function defaultGrpcAddr(dataDir: string): string {
  return `unix:${join(dataDir, 'a2a.sock')}`;
}

/** Normalises a user-given address to what grpc-js dials. */
export function normalizeAddr(addr: string): string {
  if (addr.startsWith('unix:')) return addr;
  if (addr.startsWith('/') || addr.startsWith('.')) return `unix:${resolve(addr)}`;
  return addr;
}

export function connectClient(opts: ConnectOptions = {}): MoltmeshClient {
  const dataDir = opts.dataDir ? resolve(opts.dataDir) : defaultDataDir();
  const address = normalizeAddr(opts.grpcAddr || defaultGrpcAddr(dataDir));
  const isUnix = address.startsWith('unix:');
  // Unix socket calls are trusted by file mode (0600); TCP calls must carry the daemon's token.
  const token = isUnix ? undefined : opts.token ?? readToken(dataDir);
  const client = new Client(address, credentials.createInsecure(), {
    // Above grpc-js's 4 MiB default, so one 1 MiB message (or a ~3 MiB GetInbox page) plus overhead always fits.
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    // Per-call bookkeeping we never use, measured at ~0.1 ms of round trip and tens of µs of CPU per call:
    // retries (the daemon's API configures no retry policy; only grpc-js's transparent retry of a stream the
    // server refused before reading it is lost, and a refused call fails with UNAVAILABLE like any other), and
    // channelz statistics (nothing here serves or reads channelz).
    'grpc.enable_retries': 0,
    'grpc.enable_channelz': 0,
  });
  const ctx: CallContext = { client, address, token };
  return {
    a2a: promisify(A2ANodeService, ctx),
    diag: promisify(DiagService, ctx),
    ext: promisify(ExtService, ctx),
    address,
    ready: (timeoutMs = 3000) => new Promise((ok, fail) => {
      client.waitForReady(Date.now() + timeoutMs, (err) => err ? fail(notRunning(address, err.message)) : ok());
    }),
    close: () => client.close(),
  };
}

function readToken(dataDir: string): string {
  const path = join(dataDir, 'grpc-token');
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    throw new DaemonError(GrpcStatus.UNAUTHENTICATED,
      `no gRPC token for a TCP address: pass a token or make ${path} readable (the daemon writes it when it listens on TCP)`);
  }
}

interface CallContext { client: Client; address: string; token: string | undefined }

// Request codecs by message name: every RPC Foo takes FooRequest (buf STANDARD lint enforces the naming),
// and fromPartial fills the defaults that encode() expects.
type Codec = { fromPartial(o: unknown): unknown };
const codecs: Record<string, Codec> = Object.assign({},
  cards, diag, files, identity, messaging, names, networks, pubsub, tasks, threads, webhooks) as never;

interface MethodDef {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (v: never) => Buffer;
  responseDeserialize: (b: Buffer) => unknown;
}

function promisify<S extends Record<string, MethodDef>>(service: S, ctx: CallContext): Promisified<S> {
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(service)) {
    const rpc = def.path.slice(def.path.lastIndexOf('/') + 1);
    const codec = codecs[`${rpc}Request`];
    if (!codec) throw new Error(`sdk: no codec ${rpc}Request for ${def.path}`);
    const ser = def.requestSerialize as (v: unknown) => Buffer;
    const de = def.responseDeserialize;
    if (!def.requestStream && !def.responseStream) {
      out[name] = (req: unknown, opts?: CallOpts) => new Promise((ok, fail) => {
        const call = ctx.client.makeUnaryRequest(def.path, ser, de, codec.fromPartial(req ?? {}),
          metadata(ctx), callOptions(opts), (err, res) => err ? fail(toDaemonError(err, ctx.address)) : ok(res));
        onAbort(opts, () => call.cancel());
      });
    } else if (def.responseStream) {
      out[name] = (req: unknown, opts?: CallOpts) => serverStream(
        ctx.client.makeServerStreamRequest(def.path, ser, de, codec.fromPartial(req ?? {}), metadata(ctx), callOptions(opts)),
        ctx.address, opts);
    } else {
      out[name] = (reqs: Iterable<unknown> | AsyncIterable<unknown>, opts?: CallOpts) => new Promise((ok, fail) => {
        const call = ctx.client.makeClientStreamRequest(def.path, ser, de, metadata(ctx), callOptions(opts),
          (err, res) => err ? fail(toDaemonError(err, ctx.address)) : ok(res));
        onAbort(opts, () => call.cancel());
        void (async () => {
          for await (const r of reqs) {
            // Respect backpressure: wait for 'drain' when the write buffer is full.
            if (!call.write(codec.fromPartial(r))) await new Promise((d) => call.once('drain', d));
          }
          call.end();
        })().catch((e: unknown) => { call.cancel(); fail(e); });
      });
    }
  }
  return out as Promisified<S>;
}

function serverStream<T>(call: ClientReadableStream<T>, address: string, opts?: CallOpts): ServerStream<T> {
  let cancelledHere = false;
  const cancel = () => { cancelledHere = true; call.cancel(); };
  onAbort(opts, cancel);
  const gen = (async function* () {
    try {
      for await (const m of call) yield m as T;
    } catch (e) {
      // Our own cancel ends the iteration quietly; anything else is the caller's business.
      if (cancelledHere && (e as ServiceError).code === GrpcStatus.CANCELLED) return;
      throw toDaemonError(e as ServiceError, address);
    } finally {
      cancelledHere = true;
      call.cancel(); // no-op after a normal end; stops the server stream on break/return
    }
  })();
  return Object.assign(gen, { cancel });
}

function metadata(ctx: CallContext): Metadata {
  const md = new Metadata();
  if (ctx.token) md.set('authorization', `Bearer ${ctx.token}`);
  return md;
}

function callOptions(opts?: CallOpts): CallOptions {
  return opts?.timeoutMs ? { deadline: Date.now() + opts.timeoutMs } : {};
}

function onAbort(opts: CallOpts | undefined, fn: () => void): void {
  if (!opts?.signal) return;
  if (opts.signal.aborted) fn();
  else opts.signal.addEventListener('abort', fn, { once: true });
}

// grpc-js reports a missing or dead socket as UNAVAILABLE with the errno in the details.
// grpc-js's own words when it could not reach the server. A daemon's UNAVAILABLE answer (a peer it could not
// reach, "connect ECONNREFUSED 1.2.3.4:4001") must not read as "daemon not running", so the connection errors
// are recognised by grpc-js's phrasing or by naming our own address, not by errno alone.
const CONNECT_FAILURE = /No connection established|Failed to connect/i;

export function toDaemonError(err: ServiceError | Error, address: string): DaemonError {
  if (err instanceof DaemonError) return err;
  const se = err as Partial<ServiceError>;
  const code = typeof se.code === 'number' ? se.code : GrpcStatus.UNKNOWN;
  const details = se.details ?? err.message;
  const ours = address.replace(/^unix:/, '');
  if (code === GrpcStatus.UNAVAILABLE && (CONNECT_FAILURE.test(details) || details.includes(ours))) return notRunning(address, details);
  const field = se.metadata?.get(FIELD_METADATA_KEY)[0];
  return new DaemonError(code, details, typeof field === 'string' ? field : undefined);
}

function notRunning(address: string, cause: string): DaemonError {
  const hint = address.startsWith('unix:') ? ' (start it with `moltmesh-daemon start`)'
    : ` (start it with \`moltmesh-daemon start --grpc-addr ${address}\`)`;
  const e = new DaemonError(GrpcStatus.UNAVAILABLE, `daemon not running at ${address}${hint}`);
  e.cause = cause;
  return e;
}
