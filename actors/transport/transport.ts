// The transport actor's core: signed envelopes over one libp2p protocol.
//
// A request travels in a sealed envelope written as a frame on a stream of ENVELOPE_PROTOCOL; we keep one
// long-lived stream per peer (see session.ts), but a receiver also serves clients that open a stream per request
// and half-close it. Requests to one peer issued together are sealed as one `batch` envelope (batcher.ts, batch.ts):
// one signature for all of them, answered by one signed `batch` reply; a request alone goes as a plain envelope.
// The receiver first takes a token from the sending peer's rate limit (rate-limit.ts), then checks the envelope
// (size, signature, sender = the Noise-authenticated peer, addressee, freshness, duplicate per sender), runs the
// handler for its type — for each inner request of a batch, concurrently — and writes one signed reply (`re` =
// envelope id). Anything that fails a check never reaches a handler: it is counted by reason, logged at debug level,
// and answered with a signed error reply when the envelope can at least be identified, else the stream is reset.
// Within a batch, an inner request with no handler or whose handler fails gets an inner error reply, counted the
// same way as for a plain request.
//
// One-way messages (`tell`, teller.ts) go on a second protocol, TELL_PROTOCOL: the same sealed envelopes and the same
// receiver checks, on one long-lived stream per peer that the receiver never writes to. The handler runs; its result
// is dropped. Consensus messages use it: their answers are messages of their own.
import { setImmediate as nextCheckPhase } from 'node:timers/promises';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { ApiError, invalid } from '../../runtime/errors.ts';
import { didFromPeerId, peerIdFromDid } from '../identity/did.ts';
import type { Identity } from '../identity/ed25519.ts';
import {
  BATCH_TYPE, ENVELOPE_OVERHEAD_BYTES, encodedSize, parseBatchRequests, type InnerReply, type InnerRequest,
} from './batch.ts';
import { Batcher } from './batcher.ts';
import {
  DEFAULT_FRESHNESS_MS, DEFAULT_MAX_ENVELOPE_BYTES, EnvelopeRejected, isEnvelopeType, newEnvelopeId, openEnvelope,
  peekEnvelope, sealEnvelope, type Envelope,
} from './envelope.ts';
import { FrameMalformed, FrameTooLarge, readFrames, writeFrame } from './frame.ts';
import { createTransportNode, type MeshNode, type NodeOptions } from './node.ts';
import { ERROR_TYPE, errorPayload, PeerRejected } from './peer-rejected.ts';
import { PeerRateLimiter, type RateLimit } from './rate-limit.ts';
import { ReplayGuard } from './replay-guard.ts';
import { Session } from './session.ts';
import { Teller } from './teller.ts';

export { ERROR_TYPE, PeerRejected };
export const ENVELOPE_PROTOCOL = '/moltmesh/envelope/1.0.0';
export const TELL_PROTOCOL = '/moltmesh/tell/1.0.0';
// Requests handled at once per inbound stream (a batch counts its inner requests); beyond that we stop reading and
// the stream's flow control pushes back.
const MAX_INFLIGHT_PER_STREAM = 256;
// Enough to amortise a signature over many requests; small enough that a batch's reply is not held up for long.
const DEFAULT_MAX_BATCH = 128;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export interface TransportOptions extends NodeOptions {
  maxEnvelopeBytes?: number;   // default 1 MiB
  freshnessMs?: number;        // default ±5 min
  requestTimeoutMs?: number;   // default 10 s: dial + write + handler + reply
  /** Envelope streams per connection and direction; we use one, clients that open one per request need more. */
  maxStreams?: number;
  /** Inbound envelopes per remote peer (token bucket); default 2,000/s sustained, burst 4,000. */
  inboundRate?: Partial<RateLimit>;
  /** Most requests sealed into one `batch` envelope; default 128, 1 turns batching off. */
  maxBatch?: number;
  logger?: Logger;
  now?: () => number;
}

export type Handler = (env: Envelope) => Promise<{ type: string; payload: unknown }>;

export interface PeerSummary { peerId: string; did: string; addresses: string[]; latencyMs: number | null }

export interface TransportStats { received: number; sent: number; rejected: Record<string, number> }

const noLogger: Logger = { debug: () => {} };

export class Transport {
  readonly libp2p: MeshNode;
  readonly identity: Identity;
  private readonly maxBytes: number;
  private readonly freshnessMs: number;
  private readonly timeoutMs: number;
  private readonly maxStreams: number;
  private readonly maxBatch: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly replay: ReplayGuard;
  private readonly limiter: PeerRateLimiter;
  private readonly handlers = new Map<string, Handler>();
  private readonly latency = new Map<string, number>();
  private readonly sessions = new Map<string, Promise<Batcher>>();
  /** Session openings still dialing: when the peer connects meanwhile, new requests stop waiting for them. */
  private readonly unopened = new Set<Promise<Batcher>>();
  private readonly tellers = new Map<string, Teller>();
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
    this.maxBatch = Math.max(1, opts.maxBatch ?? DEFAULT_MAX_BATCH);
    this.log = opts.logger ?? noLogger;
    this.now = opts.now ?? Date.now;
    this.replay = new ReplayGuard({ windowMs: this.freshnessMs });
    this.limiter = new PeerRateLimiter(opts.inboundRate);
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
      // Likewise for tells: what is queued on a stream still being opened leaves with it; new tells use the new connection.
      const teller = this.tellers.get(key);
      if (teller?.opened === false) {
        this.tellers.delete(key);
        teller.retire();
      }
    });
    await this.libp2p.handle(ENVELOPE_PROTOCOL, (stream, conn) => this.serve(stream, conn), {
      maxInboundStreams: this.maxStreams,
      maxOutboundStreams: this.maxStreams,
    });
    // One stream per peer pair and direction; a few more for a peer that reconnected while its old one closes.
    await this.libp2p.handle(TELL_PROTOCOL, (stream, conn) => this.serveTells(stream, conn), {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    });
    await this.libp2p.start();
  }

  async stop(): Promise<void> {
    this.sessions.clear();
    for (const t of this.tellers.values()) t.close('transport stopped');
    this.tellers.clear();
    await this.libp2p.stop();
  }

  /** Listen addresses, each ending in /p2p/<our peer id>. */
  addresses(): string[] {
    return this.libp2p.getMultiaddrs().map(String);
  }

  /** Routes envelopes of `type` to `handler`; its result goes back to the sender as the signed reply. */
  handle(type: string, handler: Handler): void {
    if (type === ERROR_TYPE) throw new TypeError(`"${ERROR_TYPE}" is reserved for error replies`);
    if (type === BATCH_TYPE) throw new TypeError(`"${BATCH_TYPE}" is reserved for batches of requests`);
    this.handlers.set(type, handler);
  }

  stats(): TransportStats {
    return { received: this.counters.received, sent: this.counters.sent, rejected: { ...this.counters.rejected } };
  }

  // ---- outgoing ----

  /**
   * Sends one request and returns its verified reply (its own, also when it travelled in a batch: then the reply's
   * `id`/`ts` are the batch reply's). Throws ApiError (UNAVAILABLE, DEADLINE_EXCEEDED, PeerRejected, …).
   */
  async request(toDid: string, type: string, payload: unknown,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Envelope> {
    const peer = peerIdFromDid(toDid, 'to');
    if (toDid === this.did) throw invalid('to', 'cannot send to our own DID');
    if (!isEnvelopeType(type)) throw new TypeError(`cannot seal envelope: bad type`);
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const req = { id: newEnvelopeId(), type, payload: payload ?? null, size: 0 };
    req.size = encodedSize(req);
    // The envelope it would travel in alone; refused here so no batch ever has to carry an oversized request.
    if (req.size + ENVELOPE_OVERHEAD_BYTES > this.maxBytes) {
      throw invalid('payload', `${req.size} bytes encoded, too large for the ${this.maxBytes}-byte envelope limit`);
    }
    try {
      const batcher = await this.session(peer, signal);
      return await batcher.request(req, signal);
    } catch (err) {
      throw this.failure(err, signal, `no reply from ${toDid}`);
    }
  }

  /**
   * Sends one message that gets no reply (see teller.ts): sealed with the others sent to `toDid` in this turn,
   * written on a long-lived stream, and handled there by the handler for `type`, whose result is dropped. Best
   * effort: returns false when it was dropped at once (unknown or unusable peer, too large, queue full); it can also
   * be lost later (the stream breaks). For protocols that retry by themselves, like consensus.
   */
  tell(toDid: string, type: string, payload: unknown): boolean {
    if (!isEnvelopeType(type)) throw new TypeError(`cannot seal envelope: bad type`);
    let peer: PeerId;
    try {
      peer = peerIdFromDid(toDid, 'to');
    } catch {
      return false;
    }
    if (toDid === this.did) return false;
    const item = { id: newEnvelopeId(), type, payload: payload ?? null, size: 0 };
    item.size = encodedSize(item);
    if (item.size + ENVELOPE_OVERHEAD_BYTES > this.maxBytes) {
      this.reject('too-large-tell', toDid, `${item.size} bytes`);
      return false;
    }
    return this.teller(peer, toDid).push(item);
  }

  /** The teller to `peer`, opening its stream (dialing if needed) when there is none or it closed. */
  private teller(peer: PeerId, peerDid: string): Teller {
    const key = peer.toString();
    const current = this.tellers.get(key);
    if (current && !current.closed) return current;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const conn = this.libp2p.getConnections(peer).find((c) => c.status === 'open');
    const opening = conn
      ? conn.newStream(TELL_PROTOCOL, { signal })
      : this.assertReachable(peer, peerDid).then(() => this.libp2p.dialProtocol(peer, TELL_PROTOCOL, { signal }));
    const teller: Teller = new Teller(opening, {
      maxBatch: this.maxBatch,
      maxBytes: this.maxBytes,
      seal: (type, payload) => sealEnvelope(this.identity, { type, to: peerDid, payload, ts: this.now() }).bytes,
      onSent: () => this.counters.sent++,
      onDropped: (count, why) => {
        this.counters.rejected['tell-dropped'] = (this.counters.rejected['tell-dropped'] ?? 0) + count;
        this.log.debug('tells dropped', { peer: peerDid, count, why });
        if (this.tellers.get(key) === teller) this.tellers.delete(key);
      },
    });
    this.tellers.set(key, teller);
    return teller;
  }

  /** The live session to `peer`, opening (dialing if needed) a new one when there is none. */
  private async session(peer: PeerId, signal: AbortSignal): Promise<Batcher> {
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
    const peerDid = didFromPeerId(peer);
    const opening = (conn
      ? conn.newStream(ENVELOPE_PROTOCOL, { signal })
      : this.assertReachable(peer, peerDid).then(() => this.libp2p.dialProtocol(peer, ENVELOPE_PROTOCOL, { signal })))
      .then((stream) => {
        this.unopened.delete(opening);
        const session = new Session(stream, this.maxBytes, (detail) => this.reject('stray-reply', key, detail));
        stream.addEventListener('close', () => this.dropSession(key, opening), { once: true });
        return new Batcher(session, {
          peer: peerDid,
          maxBatch: this.maxBatch,
          maxBytes: this.maxBytes,
          seal: (type, payload, id) => sealEnvelope(this.identity, { type, to: peerDid, payload, id, ts: this.now() }).bytes,
          open: (bytes) => this.open(bytes, peer),
          onSent: () => this.counters.sent++,
          onRejected: (reason, detail) => this.reject(reason, peerDid, detail),
        });
      });
    opening.catch(() => {
      this.unopened.delete(opening);
      this.dropSession(key, opening);
    });
    this.unopened.add(opening);
    this.sessions.set(key, opening);
    return opening;
  }

  private dropSession(key: string, which: Promise<Batcher>): void {
    if (this.sessions.get(key) === which) this.sessions.delete(key);
  }

  private failure(err: unknown, signal: AbortSignal, what: string): ApiError {
    if (err instanceof ApiError) return err;
    if (signal.aborted) return new ApiError('DEADLINE_EXCEEDED', `${what}: timed out`);
    return new ApiError('UNAVAILABLE', `${what}: ${(err as Error).message}`);
  }

  // ---- incoming ----

  // Serves every frame of an inbound stream: one for a single-shot client, many for a session. Envelopes run
  // concurrently; each reply is written when ready (the client matches it by `re`).
  private async serve(stream: Stream, conn: Connection): Promise<void> {
    const remoteDid = safeDid(conn.remotePeer);
    await this.serveFrames(stream, remoteDid || conn.remotePeer.toString(), (bytes) => this.accept(stream, bytes, conn.remotePeer, remoteDid));
  }

  // Serves a stream of tells: every frame is checked like a request (rate limit, envelope, batch shape) and its
  // handlers run; nothing is ever written back. A refused envelope is counted and dropped.
  private async serveTells(stream: Stream, conn: Connection): Promise<void> {
    const peerName = safeDid(conn.remotePeer) || conn.remotePeer.toString();
    await this.serveFrames(stream, peerName, (bytes) => this.acceptTell(stream, bytes, conn.remotePeer, peerName));
  }

  /**
   * Reads an inbound stream's frames and starts each (`start`: how many requests it started, and when they are
   * done), with at most MAX_INFLIGHT_PER_STREAM requests at once: beyond, it stops reading and the stream's flow
   * control pushes back. A frame too large or malformed is counted and ends the stream.
   */
  private async serveFrames(stream: Stream, peerName: string, start: (bytes: Uint8Array) => { weight: number; done: Promise<void> }): Promise<void> {
    const inflight = new Set<Promise<void>>();
    let load = 0; // requests being handled, a batch counting its inner requests
    try {
      for await (const bytes of readFrames(stream, this.maxBytes)) {
        const job = start(bytes);
        load += job.weight;
        // A failure that escaped the refusal path (e.g. a handler's payload that cannot be encoded) ends the stream.
        const p: Promise<void> = job.done.catch((e) => stream.abort(e as Error)).finally(() => {
          inflight.delete(p);
          load -= job.weight;
        });
        inflight.add(p);
        while (load >= MAX_INFLIGHT_PER_STREAM && inflight.size > 0) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      await stream.close();
    } catch (err) {
      if (err instanceof FrameTooLarge) this.reject('too-large', peerName, err.message);
      if (err instanceof FrameMalformed) this.reject('malformed', peerName, err.message);
      stream.abort(err as Error);
    }
  }

  /** One frame of tells: checked as `accept` checks a request; its handlers' results are dropped. */
  private acceptTell(stream: Stream, bytes: Uint8Array, remote: PeerId, peerName: string): { weight: number; done: Promise<void> } {
    if (this.overRate(stream, remote, peerName, 'tell')) return { weight: 1, done: Promise.resolve() };
    let frame: OpenedFrame;
    try {
      frame = this.openFrame(bytes, remote);
    } catch (err) {
      if (!(err instanceof EnvelopeRejected || err instanceof Refused)) throw err;
      this.reject(err.reason, peerName, err.message);
      return { weight: 1, done: Promise.resolve() };
    }
    const { env } = frame;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const envs = frame.inner?.map((r) => innerEnvelope(env, r)) ?? [env];
    const handled = envs.map((e) => this.runHandler(e, signal).then(() => undefined, (err: Refused) => this.reject(err.reason, env.from, err.message)));
    return { weight: envs.length, done: Promise.all(handled).then(() => undefined) };
  }

  /**
   * Checks one frame at once (rate limit, envelope, batch shape) and starts serving it; `weight` is the number of
   * requests it started. Synchronous up to the handlers, so the caller's in-flight count is right before it reads on.
   */
  private accept(stream: Stream, bytes: Uint8Array, remote: PeerId, remoteDid: string): { weight: number; done: Promise<void> } {
    if (this.overRate(stream, remote, remoteDid || remote.toString(), 'envelope')) return { weight: 1, done: Promise.resolve() };
    let frame: OpenedFrame;
    try {
      frame = this.openFrame(bytes, remote);
    } catch (err) {
      return { weight: 1, done: this.refuse(stream, peekEnvelope(bytes)?.id, remoteDid, remoteDid || remote.toString(), err) };
    }
    const signal = AbortSignal.timeout(this.timeoutMs);
    if (frame.inner) return { weight: frame.inner.length, done: this.serveBatch(stream, frame.env, frame.inner, signal) };
    return { weight: 1, done: this.servePlain(stream, frame.env, signal) };
  }

  /**
   * Takes a frame's rate token. Before anything costly: over its rate a peer gets no decoding, no verification and
   * no signed answer — its stream is reset (what it had in flight fails and its sender retries later).
   */
  private overRate(stream: Stream, remote: PeerId, peerName: string, what: string): boolean {
    if (this.limiter.take(remote.toString(), this.now())) return false;
    this.reject('rate-limited', peerName, `${what} over the peer's rate`);
    stream.abort(new Error('rate limited'));
    return true;
  }

  /**
   * A frame that has paid its rate token, opened: the verified envelope, and a batch's inner requests — each beyond
   * the first counts against the rate like an envelope of its own. Throws EnvelopeRejected or Refused.
   */
  private openFrame(bytes: Uint8Array, remote: PeerId): OpenedFrame {
    const env = this.open(bytes, remote);
    if (env.type !== BATCH_TYPE) return { env };
    const inner = parseBatchRequests(env.payload);
    if (!this.limiter.take(remote.toString(), this.now(), inner.length - 1)) throw new Refused('rate-limited', `batch of ${inner.length}`);
    return { env, inner };
  }

  private async servePlain(stream: Stream, env: Envelope, signal: AbortSignal): Promise<void> {
    let reply: Uint8Array;
    try {
      const result = await this.runHandler(env, signal);
      await afterHandlerIo();
      reply = this.seal(env.from, env.id, result.type, result.payload);
      if (reply.length > this.maxBytes) throw new Refused('reply-too-large', `${reply.length} bytes`);
    } catch (err) {
      return this.refuse(stream, env.id, env.from, env.from, err);
    }
    await this.send(stream, reply, AbortSignal.timeout(this.timeoutMs)).catch((e) => stream.abort(e));
  }

  // Every inner request gets an answer — its handler's reply or an inner error — in one signed batch reply.
  private async serveBatch(stream: Stream, env: Envelope, inner: InnerRequest[], signal: AbortSignal): Promise<void> {
    const replies = await Promise.all(inner.map(async (r): Promise<InnerReply> => {
      try {
        const result = await this.runHandler(innerEnvelope(env, r), signal);
        return { re: r.id, type: result.type, payload: result.payload ?? null };
      } catch (err) {
        const refused = err as Refused; // runHandler throws nothing else
        this.reject(refused.reason, env.from, refused.message);
        return { re: r.id, type: ERROR_TYPE, payload: errorPayload(refused.reason, refused.detail) };
      }
    }));
    await afterHandlerIo();
    // A fresh deadline for the write: the handlers' signal may have expired (one timed out), and a write that
    // fails at once on a full buffer would abort the whole session.
    let reply: Uint8Array;
    try {
      reply = this.sealBatchReply(env, replies);
    } catch (err) {
      return this.refuse(stream, env.id, env.from, env.from, err);
    }
    await this.send(stream, reply, AbortSignal.timeout(this.timeoutMs)).catch((e) => stream.abort(e));
  }

  /** Runs the handler for `env`'s type; throws only Refused (unknown-type, timeout, handler-error). */
  private async runHandler(env: Envelope, signal: AbortSignal): Promise<{ type: string; payload: unknown }> {
    const handler = this.handlers.get(env.type);
    if (handler === undefined) throw new Refused('unknown-type', env.type);
    try {
      const result = await abortable(handler(env), signal);
      if (!isEnvelopeType(result?.type)) throw new TypeError(`handler for ${env.type} replied with a bad type`);
      return result;
    } catch (err) {
      if (signal.aborted) throw new Refused('timeout', 'handler');
      // Only ApiErrors carry messages meant for the caller; anything else may hold internals.
      throw new Refused('handler-error', err instanceof ApiError ? err.message : undefined);
    }
  }

  // One reply envelope must hold every inner reply. When together they are over the size limit, the largest are
  // replaced by inner `reply-too-large` errors until the rest fits (each would have fitted alone as a plain reply;
  // the request's sender may retry it).
  private sealBatchReply(env: Envelope, replies: InnerReply[]): Uint8Array {
    let bytes = this.seal(env.from, env.id, BATCH_TYPE, replies);
    if (bytes.length <= this.maxBytes) return bytes;
    let excess = bytes.length - this.maxBytes;
    const bySize = replies.map((r, i) => ({ i, size: encodedSize(r) })).sort((x, y) => y.size - x.size);
    for (const { i, size } of bySize) {
      if (excess <= 0) break;
      const tooLarge = { re: replies[i]!.re, type: ERROR_TYPE, payload: errorPayload('reply-too-large', `${size} bytes`) };
      excess -= size - encodedSize(tooLarge);
      replies[i] = tooLarge;
      this.reject('reply-too-large', env.from, `${size} bytes in a batch reply`);
    }
    bytes = this.seal(env.from, env.id, BATCH_TYPE, replies);
    if (bytes.length > this.maxBytes) throw new Refused('reply-too-large', `${bytes.length} bytes even with inner errors`);
    return bytes;
  }

  /**
   * Counts a refused envelope or request and answers it with a signed error reply. A frame we cannot even attribute
   * to a request (no id) or a peer without a DID to address: reset the stream rather than guess.
   */
  private async refuse(stream: Stream, id: string | undefined, replyTo: string, peerName: string, err: unknown): Promise<void> {
    if (!(err instanceof EnvelopeRejected || err instanceof Refused)) {
      stream.abort(err as Error); // not a refusal: a bug or a broken stream
      return;
    }
    this.reject(err.reason, peerName, err.message);
    if (id === undefined || !replyTo) {
      stream.abort(err);
      return;
    }
    const payload = errorPayload(err.reason, err instanceof Refused ? err.detail : undefined);
    await this.send(stream, this.seal(replyTo, id, ERROR_TYPE, payload), AbortSignal.timeout(this.timeoutMs))
      .catch((e) => stream.abort(e));
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
    return sealEnvelope(this.identity, { type, to, payload, re, ts: this.now() }).bytes;
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
    let ma: Multiaddr;
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

  /**
   * Round-trip time in ms over the libp2p ping protocol. `target` is a DID or peer id (dialed from known
   * addresses if needed), or a multiaddr ending in /p2p/<peer id>, dialed first.
   */
  async ping(target: string, opts: { timeoutMs?: number } = {}): Promise<number> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const peer = target.startsWith('/') ? peerIdFromString((await this.connect(target, { timeoutMs })).peerId) : this.toPeerId(target);
    const signal = AbortSignal.timeout(timeoutMs);
    await this.assertReachable(peer, target);
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

  /**
   * Fails at once for a peer we have no way to find: no connection, no known address, and no connected peer to
   * ask (the DHT lookup libp2p would start can only wait for its timeout). With any of the three, dialing goes on.
   */
  private async assertReachable(peer: PeerId, name: string): Promise<void> {
    if (this.libp2p.getConnections(peer).length > 0 || this.libp2p.getPeers().length > 0) return;
    const known = await this.libp2p.peerStore.get(peer).then((p) => p.addresses.length > 0, () => false);
    if (!known) {
      throw new ApiError('UNAVAILABLE', `no known address for ${name} and no peers to ask; connect to it (or to a bootstrap peer) first`);
    }
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

/**
 * Lets the I/O a handler started leave before its reply is sealed. Node sends HTTP/2 (gRPC) writes in the next
 * check phase: without this, the inbox's push of a new message to a SubscribeInbox stream — what the receiving
 * agent waits for — would wait behind signing and writing the reply (~0.4 ms); the reply waits for that push only.
 */
const afterHandlerIo = (): Promise<void> => nextCheckPhase();

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
/** An envelope as opened from a frame: a batch's inner requests beside it. */
interface OpenedFrame {
  env: Envelope;
  inner?: InnerRequest[];
}

/** A batch's inner request as a handler sees it: the batch's verified sender, addressee and time, its own id. */
function innerEnvelope(batch: Envelope, r: InnerRequest): Envelope {
  return { v: 1, type: r.type, id: r.id, from: batch.from, to: batch.to, ts: batch.ts, payload: r.payload };
}

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
