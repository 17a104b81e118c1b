// The transport actor's core: signed envelopes over one libp2p protocol.
//
// A request is one sealed envelope written as a frame on a stream of ENVELOPE_PROTOCOL; we keep one long-lived
// stream per peer (see session.ts), but a receiver also serves clients that open a stream per request and
// half-close it. The receiver checks each envelope (size, signature, sender = the Noise-authenticated peer,
// addressee, freshness, duplicate), runs the handler for its type and writes one signed reply (`re` = request
// id). Anything that fails a check never reaches a handler: it is counted by reason, logged at debug level, and
// answered with a signed error reply when the request can at least be identified, else the stream is reset.
import { multiaddr } from '@multiformats/multiaddr';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { ApiError, invalid } from '../../runtime/errors.ts';
import { didFromPeerId, peerIdFromDid } from '../identity/did.ts';
import type { Identity } from '../identity/ed25519.ts';
import {
  DEFAULT_FRESHNESS_MS, DEFAULT_MAX_ENVELOPE_BYTES, EnvelopeRejected, openEnvelope, peekEnvelope, sealEnvelope,
  type Envelope,
} from './envelope.ts';
import { FrameMalformed, FrameTooLarge, readFrames, writeFrame } from './frame.ts';
import { createTransportNode, type MeshNode, type NodeOptions } from './node.ts';
import { ReplayGuard } from './replay-guard.ts';
import { Session } from './session.ts';

export const ENVELOPE_PROTOCOL = '/moltmesh/envelope/1.0.0';
/** Reply type carrying `{ error: reason, message? }` when a request was refused or its handler failed. */
export const ERROR_TYPE = 'error';
// Requests handled at once per inbound stream; beyond that we stop reading and the stream's flow control pushes back.
const MAX_INFLIGHT_PER_STREAM = 256;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export interface TransportOptions extends NodeOptions {
  maxEnvelopeBytes?: number;   // default 1 MiB
  freshnessMs?: number;        // default ±5 min
  requestTimeoutMs?: number;   // default 10 s: dial + write + handler + reply
  /** Envelope streams per connection and direction; we use one, clients that open one per request need more. */
  maxStreams?: number;
  logger?: Logger;
  now?: () => number;
}

export type Handler = (env: Envelope) => Promise<{ type: string; payload: unknown }>;

export interface PeerSummary { peerId: string; did: string; addresses: string[]; latencyMs: number | null }

export interface TransportStats { received: number; sent: number; rejected: Record<string, number> }

/** The remote peer answered with an error reply; `reason` is its machine reason (e.g. "unknown-type"). */
export class PeerRejected extends ApiError {
  readonly reason: string;
  constructor(reason: string, message?: string) {
    super('FAILED_PRECONDITION', `peer refused the request: ${reason}${message ? ` (${message})` : ''}`);
    this.name = 'PeerRejected';
    this.reason = reason;
  }
}

const noLogger: Logger = { debug: () => {} };

export class Transport {
  readonly libp2p: MeshNode;
  readonly identity: Identity;
  private readonly maxBytes: number;
  private readonly freshnessMs: number;
  private readonly timeoutMs: number;
  private readonly maxStreams: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly replay: ReplayGuard;
  private readonly handlers = new Map<string, Handler>();
  private readonly latency = new Map<string, number>();
  private readonly sessions = new Map<string, Promise<Session>>();
  /** Session openings still dialing: when the peer connects meanwhile, new requests stop waiting for them. */
  private readonly unopened = new Set<Promise<Session>>();
  private readonly counters = { received: 0, sent: 0, rejected: {} as Record<string, number> };

  static async create(opts: TransportOptions): Promise<Transport> {
    return new Transport(await createTransportNode(opts), opts);
  }

  constructor(node: MeshNode, opts: Omit<TransportOptions, keyof NodeOptions> & { identity: Identity }) {
    this.libp2p = node;
    this.identity = opts.identity;
    this.maxBytes = opts.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
    this.freshnessMs = opts.freshnessMs ?? DEFAULT_FRESHNESS_MS;
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.maxStreams = opts.maxStreams ?? 64;
    this.log = opts.logger ?? noLogger;
    this.now = opts.now ?? Date.now;
    this.replay = new ReplayGuard({ windowMs: this.freshnessMs });
  }

  get did(): string {
    return this.identity.did;
  }

  get peerId(): PeerId {
    return this.libp2p.peerId;
  }

  async start(): Promise<void> {
    this.libp2p.addEventListener('peer:connect', (evt) => {
      const key = evt.detail.toString();
      const current = this.sessions.get(key);
      if (current && this.unopened.has(current)) this.sessions.delete(key);
    });
    await this.libp2p.handle(ENVELOPE_PROTOCOL, (stream, conn) => this.serve(stream, conn), {
      maxInboundStreams: this.maxStreams,
      maxOutboundStreams: this.maxStreams,
    });
    await this.libp2p.start();
  }

  async stop(): Promise<void> {
    this.sessions.clear();
    await this.libp2p.stop();
  }

  /** Listen addresses, each ending in /p2p/<our peer id>. */
  addresses(): string[] {
    return this.libp2p.getMultiaddrs().map(String);
  }

  /** Routes envelopes of `type` to `handler`; its result goes back to the sender as the signed reply. */
  handle(type: string, handler: Handler): void {
    if (type === ERROR_TYPE) throw new TypeError(`"${ERROR_TYPE}" is reserved for error replies`);
    this.handlers.set(type, handler);
  }

  stats(): TransportStats {
    return { received: this.counters.received, sent: this.counters.sent, rejected: { ...this.counters.rejected } };
  }

  // ---- outgoing ----

  /** Sends one envelope and returns the verified reply. Throws ApiError (UNAVAILABLE, DEADLINE_EXCEEDED, …). */
  async request(toDid: string, type: string, payload: unknown,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Envelope> {
    const peer = peerIdFromDid(toDid, 'to');
    if (toDid === this.did) throw invalid('to', 'cannot send to our own DID');
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const sealed = sealEnvelope(this.identity, { type, to: toDid, payload, ts: this.now() });
    if (sealed.bytes.length > this.maxBytes) {
      throw invalid('payload', `envelope is ${sealed.bytes.length} bytes, over the ${this.maxBytes}-byte limit`);
    }

    let replyBytes: Uint8Array;
    try {
      const session = await this.session(peer, signal);
      const pending = session.call(sealed.envelope.id, sealed.bytes, signal);
      this.counters.sent++;
      replyBytes = await pending;
    } catch (err) {
      throw this.failure(err, signal, `no reply from ${toDid}`);
    }

    let reply: Envelope;
    try {
      reply = this.open(replyBytes, peer);
      // The session matched the reply by an unverified `re`; now that it is verified, hold it to that.
      if (reply.re !== sealed.envelope.id) throw new EnvelopeRejected('malformed', 'reply to another request');
    } catch (err) {
      if (!(err instanceof EnvelopeRejected)) throw err;
      this.reject(err.reason, toDid, err.message);
      throw new ApiError('INTERNAL', `invalid reply from ${toDid}: ${err.reason}`);
    }
    if (reply.type === ERROR_TYPE) {
      const p = reply.payload as { error?: unknown; message?: unknown } | null;
      throw new PeerRejected(String(p?.error ?? 'unknown'), typeof p?.message === 'string' ? p.message : undefined);
    }
    return reply;
  }

  /** The live session to `peer`, opening (dialing if needed) a new one when there is none. */
  private async session(peer: PeerId, signal: AbortSignal): Promise<Session> {
    const key = peer.toString();
    const current = this.sessions.get(key);
    if (current) {
      const s = await abortable(current, signal); // a failed dial fails every request that waited for it
      if (!s.closed) return s;
      this.dropSession(key, current);
      return this.session(peer, signal);
    }
    // Stored as a promise so concurrent first requests share one stream instead of racing to open several.
    // The dial is bound by the first caller's signal: libp2p joins later dials to the same peer onto a pending
    // one, so a dial outliving its caller would stall e.g. an explicit connect() to the peer's new address.
    // An open connection (e.g. one the peer just made to us) is used directly, bypassing any dial to the
    // peer's stale addresses still pending.
    const conn = this.libp2p.getConnections(peer).find((c) => c.status === 'open');
    const opening = (conn ? conn.newStream(ENVELOPE_PROTOCOL, { signal }) : this.libp2p.dialProtocol(peer, ENVELOPE_PROTOCOL, { signal }))
      .then((stream) => {
        this.unopened.delete(opening);
        const s = new Session(stream, this.maxBytes, (detail) => this.reject('stray-reply', key, detail));
        stream.addEventListener('close', () => this.dropSession(key, opening), { once: true });
        return s;
      });
    opening.catch(() => {
      this.unopened.delete(opening);
      this.dropSession(key, opening);
    });
    this.unopened.add(opening);
    this.sessions.set(key, opening);
    return opening;
  }

  private dropSession(key: string, which: Promise<Session>): void {
    if (this.sessions.get(key) === which) this.sessions.delete(key);
  }

  private failure(err: unknown, signal: AbortSignal, what: string): ApiError {
    if (err instanceof ApiError) return err;
    if (signal.aborted) return new ApiError('DEADLINE_EXCEEDED', `${what}: timed out`);
    return new ApiError('UNAVAILABLE', `${what}: ${(err as Error).message}`);
  }

  // ---- incoming ----

  // Serves every frame of an inbound stream: one for a single-shot client, many for a session. Requests run
  // concurrently; each reply is written when ready (the client matches it by `re`).
  private async serve(stream: Stream, conn: Connection): Promise<void> {
    const remoteDid = safeDid(conn.remotePeer);
    const peerName = remoteDid || conn.remotePeer.toString();
    const inflight = new Set<Promise<void>>();
    try {
      for await (const bytes of readFrames(stream, this.maxBytes)) {
        const p: Promise<void> = this.serveOne(stream, bytes, conn.remotePeer, remoteDid)
          .finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= MAX_INFLIGHT_PER_STREAM) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      await stream.close();
    } catch (err) {
      if (err instanceof FrameTooLarge) this.reject('too-large', peerName, err.message);
      if (err instanceof FrameMalformed) this.reject('malformed', peerName, err.message);
      stream.abort(err as Error);
    }
  }

  private async serveOne(stream: Stream, bytes: Uint8Array, remote: PeerId, remoteDid: string): Promise<void> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const env = this.open(bytes, remote);
      const handler = this.handlers.get(env.type);
      if (handler === undefined) throw new Refused('unknown-type', env.type);
      let reply: Uint8Array;
      try {
        const result = await abortable(handler(env), signal);
        reply = this.seal(env.from, env.id, result.type, result.payload);
      } catch (err) {
        if (signal.aborted) throw new Refused('timeout', 'handler');
        // Only ApiErrors carry messages meant for the caller; anything else may hold internals.
        throw new Refused('handler-error', err instanceof ApiError ? err.message : undefined);
      }
      await this.send(stream, reply, signal);
    } catch (err) {
      if (!(err instanceof EnvelopeRejected || err instanceof Refused)) {
        stream.abort(err as Error); // could not write the reply: the stream is gone anyway
        return;
      }
      this.reject(err.reason, remoteDid || remote.toString(), err.message);
      // An error reply needs an id to answer and a DID to address. A frame we cannot even attribute to a
      // request comes from a broken or hostile peer: reset the stream rather than guess.
      const id = peekEnvelope(bytes)?.id;
      if (id === undefined || !remoteDid) {
        stream.abort(err);
        return;
      }
      const message = err instanceof Refused ? err.detail : undefined;
      const payload = message ? { error: err.reason, message } : { error: err.reason };
      await this.send(stream, this.seal(remoteDid, id, ERROR_TYPE, payload), signal).catch((e) => stream.abort(e));
    }
  }

  private open(bytes: Uint8Array, remote: PeerId): Envelope {
    const env = openEnvelope(bytes, {
      ourDid: this.did, remotePeerId: remote, now: this.now(),
      maxBytes: this.maxBytes, freshnessMs: this.freshnessMs, replay: this.replay,
    });
    this.counters.received++;
    return env;
  }

  private seal(to: string, re: string, type: string, payload: unknown): Uint8Array {
    const { bytes } = sealEnvelope(this.identity, { type, to, payload, re, ts: this.now() });
    if (bytes.length > this.maxBytes) throw new Error(`reply of ${bytes.length} bytes is over the limit`);
    return bytes;
  }

  private async send(stream: Stream, bytes: Uint8Array, signal: AbortSignal): Promise<void> {
    await writeFrame(stream, bytes, signal);
    this.counters.sent++;
  }

  private reject(reason: string, peer: string, detail: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
    this.log.debug('envelope rejected', { reason, peer, detail });
  }

  // ---- peers ----

  /**
   * Dials a full multiaddr (…/p2p/<peer id>) and returns who answered.
   * Pitfall: libp2p joins a dial to a peer onto any dial to it already pending, so right after the peer moved
   * (restart on a new port) this can wait for a stale attempt first — up to the QUIC handshake timeout (5 s),
   * as the QUIC dial ignores abort signals.
   */
  async connect(addr: string, opts: { timeoutMs?: number } = {}): Promise<{ peerId: string; did: string }> {
    let ma;
    try {
      ma = multiaddr(addr);
    } catch {
      throw invalid('multiaddr', `not a multiaddr: ${JSON.stringify(addr)}`);
    }
    if (ma.getComponents().every((c) => c.name !== 'p2p')) {
      throw invalid('multiaddr', 'must end in /p2p/<peer id> so the remote key can be checked');
    }
    const signal = AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs);
    try {
      const conn = await this.libp2p.dial(ma, { signal });
      return { peerId: conn.remotePeer.toString(), did: safeDid(conn.remotePeer) };
    } catch (err) {
      throw this.failure(err, signal, `cannot connect to ${addr}`);
    }
  }

  async disconnect(target: string): Promise<void> {
    await this.libp2p.hangUp(this.toPeerId(target));
  }

  /** Round-trip time in ms over the libp2p ping protocol (dials if needed). */
  async ping(target: string, opts: { timeoutMs?: number } = {}): Promise<number> {
    const peer = this.toPeerId(target);
    const signal = AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs);
    try {
      const ms = await this.libp2p.services.ping.ping(peer, { signal });
      this.latency.set(peer.toString(), ms);
      return ms;
    } catch (err) {
      throw this.failure(err, signal, `cannot ping ${target}`);
    }
  }

  peers(): PeerSummary[] {
    const byPeer = new Map<string, PeerSummary>();
    for (const conn of this.libp2p.getConnections()) {
      const id = conn.remotePeer.toString();
      let p = byPeer.get(id);
      if (p === undefined) {
        p = { peerId: id, did: safeDid(conn.remotePeer), addresses: [], latencyMs: this.latency.get(id) ?? conn.rtt ?? null };
        byPeer.set(id, p);
      }
      const a = conn.remoteAddr.toString();
      if (!p.addresses.includes(a)) p.addresses.push(a);
    }
    return [...byPeer.values()];
  }

  isConnected(did: string): boolean {
    return this.libp2p.getConnections(peerIdFromDid(did)).some((c) => c.status === 'open');
  }

  /** Calls cb(did) when a first connection to an agent opens (peers without a DID are skipped). Returns an unsubscribe. */
  onPeerConnected(cb: (did: string) => void): () => void {
    const listener = (evt: CustomEvent<PeerId>) => {
      const did = safeDid(evt.detail);
      if (did) cb(did);
    };
    this.libp2p.addEventListener('peer:connect', listener);
    return () => this.libp2p.removeEventListener('peer:connect', listener);
  }

  /** A DID or a peer id string. */
  private toPeerId(target: string): PeerId {
    if (target.startsWith('did:')) return peerIdFromDid(target, 'target');
    try {
      return peerIdFromString(target);
    } catch {
      throw invalid('target', `not a DID or peer id: ${JSON.stringify(target)}`);
    }
  }
}

/** A request refused by the router (not by the envelope checks). */
class Refused extends Error {
  readonly reason: string;
  readonly detail: string | undefined;
  constructor(reason: string, detail?: string) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.reason = reason;
    this.detail = detail;
  }
}

// Peers from the public IPFS network may have RSA/secp256k1 keys: they have no did:key.
function safeDid(peer: PeerId): string {
  try {
    return didFromPeerId(peer);
  } catch {
    return '';
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
