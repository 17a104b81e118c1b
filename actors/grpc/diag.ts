// The Diag service: health, info, peers, ping/connect, stream replay and shutdown of the local daemon.
import {
  ActorStatus,
  type ActorHealth as PbActorHealth, type DiagServer, type ReplayStreamRequest, type ReplayStreamResponse,
} from '../../proto/gen/moltmesh/v1/diag.ts';
import { invalid } from '../../runtime/errors.ts';
import { toJson } from './json.ts';
import type { ActorHealth, NodeApi } from './node-api.ts';
import { serverStream, unary, type HandlerContext } from './rpc.ts';
import { isMultiaddr, isPeerId, requireNonEmpty } from './validate.ts';
import { isDid } from '../identity/did.ts';

export const API_VERSION = 'moltmesh.v1';

export function diagHandlers(api: NodeApi, ctx: HandlerContext): DiagServer {
  return {
    health: unary(ctx, 'Health', () => {
      const h = api.health();
      return {
        version: h.version, did: h.did, uptimeMs: h.uptimeMs, peers: h.peers,
        tree: toPbActor(h.tree),
        envelopes: { received: h.envelopes.received, sent: h.envelopes.sent, rejected: { ...h.envelopes.rejected } },
      };
    }),

    info: unary(ctx, 'Info', () => api.info()),

    status: unary(ctx, 'Status', () => api.status()),

    getConfig: unary(ctx, 'GetConfig', () => ({ configJson: toJson(api.config()) })),

    version: unary(ctx, 'Version', () => ({
      version: api.info().version, apiVersion: API_VERSION, runtime: `node ${process.version}`,
    })),

    peers: unary(ctx, 'Peers', () => ({
      peers: api.peers().map((p) => ({
        peerId: p.peerId, did: p.did, addresses: p.addresses, latencyMs: p.latencyMs ?? undefined,
      })),
    })),

    ping: unary(ctx, 'Ping', (req) => {
      const target = requireNonEmpty('target', req.target, 'a DID, peer id or multiaddr');
      if (!isDid(target) && !isPeerId(target) && !isMultiaddr(target)) {
        throw invalid('target', 'not a did:key DID, peer id or multiaddr');
      }
      return api.ping(target);
    }),

    connect: unary(ctx, 'Connect', (req) => {
      const addr = requireNonEmpty('multiaddr', req.multiaddr, 'e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…');
      if (!isMultiaddr(addr)) throw invalid('multiaddr', 'not a multiaddr (e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…)');
      return api.connect(addr);
    }),

    disconnect: unary(ctx, 'Disconnect', async (req) => {
      const target = requireNonEmpty('target', req.target, 'a DID or peer id');
      if (!isDid(target) && !isPeerId(target)) throw invalid('target', 'not a did:key DID or peer id');
      await api.disconnect(target);
      return {};
    }),

    listStreams: unary(ctx, 'ListStreams', async (req) => ({
      streams: await api.listStreams(req.prefix || undefined),
    })),

    replayStream: serverStream<ReplayStreamRequest, ReplayStreamResponse>(ctx, 'ReplayStream', async (req, sink) => {
      const stream = requireNonEmpty('stream', req.stream, 'a stream name; see ListStreams');
      const steps = api.replay(stream);
      for await (const s of steps) {
        const more = await sink.write({
          seq: s.seq, type: s.type, atMs: s.at,
          eventJson: toJson(s.event), stateJson: toJson(s.state), contextJson: toJson(s.context),
          effects: s.effects, timers: s.timers,
        });
        if (!more) break; // client went away: `break` also closes the source iterator
      }
    }),

    shutdown: unary(ctx, 'Shutdown', () => {
      // Answer first; the daemon then stops and ends live streams with UNAVAILABLE.
      setImmediate(() => {
        try { api.shutdown(); } catch (err) { ctx.logger('error', 'shutdown failed', { error: String(err) }); }
      });
      return {};
    }),
  };
}

const ACTOR_STATUS: Record<ActorHealth['status'], ActorStatus> = {
  running: ActorStatus.ACTOR_STATUS_RUNNING,
  restarting: ActorStatus.ACTOR_STATUS_RESTARTING,
  stopped: ActorStatus.ACTOR_STATUS_STOPPED,
  failed: ActorStatus.ACTOR_STATUS_FAILED,
};

export function toPbActor(a: ActorHealth): PbActorHealth {
  return {
    path: a.path, status: ACTOR_STATUS[a.status] ?? ActorStatus.ACTOR_STATUS_UNSPECIFIED,
    restarts: a.restarts, lastError: a.lastError, children: a.children.map(toPbActor),
  };
}
