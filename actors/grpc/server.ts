// The daemon's gRPC server: A2ANode, Diag and Ext on a unix socket (trusted by its 0600 mode) and, optionally,
// on TCP where every call must carry `authorization: Bearer <token>`. Two grpc-js servers share one set of
// handlers, so the TCP check cannot depend on guessing the transport from a peer string.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { A2ANodeService } from '../../proto/gen/moltmesh/v1/a2a_node.ts';
import { DiagService } from '../../proto/gen/moltmesh/v1/diag.ts';
import { ExtService } from '../../proto/gen/moltmesh/v1/ext.ts';
import { a2aNodeHandlers } from './a2a-node.ts';
import { diagHandlers } from './diag.ts';
import { extHandlers } from './ext.ts';
import type { NodeApi } from './node-api.ts';
import type { Logger } from '../../runtime/log.ts';
import { requireToken } from './auth.ts';
import type { HandlerContext } from './rpc.ts';
import { StreamRegistry } from './stream.ts';

export interface GrpcServerOptions {
  api: NodeApi;
  socketPath?: string;      // unix socket; no token needed
  tcpAddr?: string;         // "host:port" (port 0 = any); requires token
  token?: string;           // bearer token for TCP (the daemon keeps it in <data_dir>/grpc-token)
  logger: Logger;
  shutdownGraceMs?: number; // how long tryShutdown may wait for in-flight calls before forceShutdown (default 1 s)
}

export interface GrpcServerHandle {
  addresses: string[];      // "unix:/…/a2a.sock", "127.0.0.1:50051"
  stop(): Promise<void>;
}

// sun_path is 108 bytes on Linux, NUL included.
const MAX_SOCKET_PATH = 107;

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServerHandle> {
  if (!opts.socketPath && !opts.tcpAddr) throw new Error('grpc: need a socketPath or a tcpAddr');
  if (opts.tcpAddr && !opts.token) throw new Error('grpc: a TCP address needs a token');

  const streams = new StreamRegistry();
  const ctx: HandlerContext = { streams, logger: opts.logger };
  const services: Array<[ServiceDefinition, UntypedServiceImplementation]> = [
    [A2ANodeService, a2aNodeHandlers(opts.api, ctx)],
    [DiagService, diagHandlers(opts.api, ctx)],
    [ExtService, extHandlers()],
  ];
  const servers: Server[] = [];
  const addresses: string[] = [];

  try {
    if (opts.socketPath) {
      const path = opts.socketPath;
      if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
        throw new Error(`grpc: socket path too long (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH}): ${path}`);
      }
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      await removeStaleSocket(path);
      const server = newServer(services);
      servers.push(server);
      // Only our user may talk to the daemon without a token: the socket is created 0600 (umask), not
      // loosened-then-fixed. The umask is process-wide, so anything created meanwhile is owner-only too.
      const umask = process.umask(0o077);
      try {
        await bind(server, `unix:${path}`, ServerCredentials.createInsecure());
      } finally {
        process.umask(umask);
      }
      chmodSync(path, 0o600); // the exact mode, whatever the umask left
      addresses.push(`unix:${path}`);
    }
    if (opts.tcpAddr) {
      const token = opts.token as string;
      const server = newServer(services.map(([def, impl]) => [def, requireToken(impl, token)]));
      servers.push(server);
      const port = await bind(server, opts.tcpAddr, ServerCredentials.createInsecure());
      addresses.push(`${opts.tcpAddr.slice(0, opts.tcpAddr.lastIndexOf(':'))}:${port}`);
    }
  } catch (err) {
    for (const s of servers) s.forceShutdown();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= (async () => {
    // tryShutdown waits for open streams forever, so end them first (STACK-NOTES).
    streams.closeAll('daemon shutting down');
    await Promise.all(servers.map((s) => shutdown(s, opts.shutdownGraceMs ?? 1000)));
    if (opts.socketPath) {
      try { unlinkSync(opts.socketPath); } catch { /* already gone */ }
    }
  })();
  // A shutdown begun elsewhere (Diag.Shutdown, a signal) ends live streams at once; the daemon calls stop().
  opts.api.onShutdown(() => streams.closeAll('daemon shutting down'));

  opts.logger('debug', 'grpc listening', { addresses });
  return { addresses, stop };
}

function newServer(services: Array<[ServiceDefinition, UntypedServiceImplementation]>): Server {
  // No channelz: nothing serves or reads it, and grpc-js otherwise keeps per-call statistics on the hot path.
  const server = new Server({ 'grpc.enable_channelz': 0 });
  for (const [def, impl] of services) server.addService(def, impl);
  return server;
}

function bind(server: Server, addr: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, creds, (err, port) => err ? reject(new Error(`grpc: cannot listen on ${addr}: ${err.message}`)) : resolve(port));
  });
}

function shutdown(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
    server.tryShutdown(() => { clearTimeout(timer); resolve(); });
  });
}

/** A socket file left by a crashed daemon is removed; a live one means another daemon owns this data dir. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`grpc: ${path} exists and is not a socket; not replacing it`);
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  if (live) throw new Error(`grpc: another daemon is already listening on unix:${path}`);
  unlinkSync(path);
}
