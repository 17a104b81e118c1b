// Outgoing requests to one peer, sent on its session: alone as a plain envelope, or together as one `batch`.
//
// Requests issued within one event-loop turn, or while an earlier envelope is still being written, are sealed
// together as ONE signed `batch` envelope (see batch.ts), answered by ONE signed `batch` reply: one signature and one
// verification on each side instead of one per request, which is what bounds throughput. A request that is alone
// when the queue is flushed goes as a plain envelope, so a quiet peer pays nothing for batching but the wait for the
// end of the turn (setImmediate, microseconds).
//
// Each caller still gets its own reply or error and its own timeout: a timed-out request leaves the batch (its late
// inner reply is counted as a stray), the others keep waiting. The price: a batch reply is written when its last
// inner request is done, so requests batched with a slow one wait for it (at most the peer's handler timeout).
import { ApiError } from '../../runtime/errors.ts';
import { BATCH_TYPE, ENVELOPE_OVERHEAD_BYTES, parseBatchReplies } from './batch.ts';
import { EnvelopeRejected, newEnvelopeId, type Envelope } from './envelope.ts';
import { ERROR_TYPE, peerRejected } from './peer-rejected.ts';
import type { Session } from './session.ts';

/** A request ready to queue: `size` is its encoded size as a batch item (see encodedSize). */
export interface OutgoingRequest { id: string; type: string; payload: unknown; size: number }

export interface BatcherOptions {
  /** The peer's DID, for error messages. */
  peer: string;
  /** Most requests in one batch envelope (1 = never batch). */
  maxBatch: number;
  /** The envelope size limit a batch must stay under. */
  maxBytes: number;
  /** Seals an envelope to the peer. */
  seal(type: string, payload: unknown, id: string): Uint8Array;
  /** Verifies an envelope from the peer; throws EnvelopeRejected. */
  open(bytes: Uint8Array): Envelope;
  /** An envelope was written. */
  onSent(): void;
  /** A reply was refused (counted by reason). */
  onRejected(reason: string, detail: string): void;
}

/** One envelope in flight: its id and how many of its requests still wait for the reply. */
interface Sent { id: string; waiting: number; abandoned: AbortController }

interface Waiting extends OutgoingRequest {
  signal: AbortSignal;
  onAbort: () => void;
  resolve(reply: Envelope): void;
  reject(err: unknown): void;
  settled: boolean;
  sent?: Sent;
}

export class Batcher {
  readonly session: Session;
  private readonly o: BatcherOptions;
  private queue: Waiting[] = [];
  /** A flush is scheduled or running: new requests join its queue. */
  private busy = false;

  constructor(session: Session, opts: BatcherOptions) {
    this.session = session;
    this.o = opts;
  }

  get closed(): boolean {
    return this.session.closed;
  }

  /** Queues the request and resolves with its verified reply; fails on an error reply, `signal`, or a closed session. */
  request(req: OutgoingRequest, signal: AbortSignal): Promise<Envelope> {
    return new Promise<Envelope>((resolve, reject) => {
      const w: Waiting = { ...req, signal, resolve, reject, settled: false, onAbort: () => this.finish(w, undefined, signal.reason ?? new Error('aborted')) };
      if (signal.aborted) return w.onAbort();
      signal.addEventListener('abort', w.onAbort, { once: true });
      this.queue.push(w);
      if (!this.busy) {
        this.busy = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    try {
      for (let group = this.take(); group.length > 0; group = this.take()) await this.send(group);
    } finally {
      this.busy = false;
    }
  }

  /** The next requests that fit in one envelope, by count and bytes (timed-out ones are dropped). */
  private take(): Waiting[] {
    const group: Waiting[] = [];
    let bytes = ENVELOPE_OVERHEAD_BYTES;
    let i = 0;
    for (; i < this.queue.length && group.length < this.o.maxBatch; i++) {
      const w = this.queue[i]!;
      if (w.settled) continue;
      if (group.length > 0 && bytes + w.size > this.o.maxBytes) break;
      group.push(w);
      bytes += w.size;
    }
    this.queue = this.queue.slice(i);
    return group;
  }

  private async send(group: Waiting[]): Promise<void> {
    const single = group.length === 1;
    const sent: Sent = { id: single ? group[0]!.id : newEnvelopeId(), waiting: group.length, abandoned: new AbortController() };
    let bytes: Uint8Array;
    try {
      bytes = single
        ? this.o.seal(group[0]!.type, group[0]!.payload, sent.id)
        : this.o.seal(BATCH_TYPE, group.map(({ id, type, payload }) => ({ id, type, payload })), sent.id);
    } catch (err) {
      for (const w of group) this.finish(w, undefined, err);
      return;
    }
    for (const w of group) w.sent = sent;
    this.session.expect(sent.id).then(
      (reply) => this.deliver(group, sent.id, reply),
      (err) => { for (const w of group) this.finish(w, undefined, err); },
    );
    try {
      // Waits only while the stream is full, and stops waiting once every request in the envelope gave up.
      await this.session.write(bytes, sent.abandoned.signal);
      this.o.onSent();
    } catch (err) {
      if (sent.abandoned.signal.aborted) return;
      this.session.forget(sent.id);
      for (const w of group) this.finish(w, undefined, err);
    }
  }

  /** Verifies the reply to envelope `id` and hands each request its answer. */
  private deliver(group: Waiting[], id: string, bytes: Uint8Array): void {
    let reply: Envelope;
    try {
      reply = this.o.open(bytes);
      // The session matched the reply by an unverified `re`; now that it is verified, hold it to that.
      if (reply.re !== id) throw new EnvelopeRejected('malformed', 'reply to another request');
      if (reply.type === ERROR_TYPE) {
        // The whole envelope was refused (e.g. rate-limited): every request in it gets that answer.
        for (const w of group) this.finish(w, undefined, peerRejected(reply.payload));
        return;
      }
      if (group.length === 1) {
        this.finish(group[0]!, reply);
        return;
      }
      if (reply.type !== BATCH_TYPE) throw new EnvelopeRejected('malformed', 'batch answered by a plain reply');
      const answers = parseBatchReplies(reply.payload);
      for (const w of group) {
        const a = answers.get(w.id);
        if (w.settled) {
          if (a) this.o.onRejected('stray-reply', `${this.o.peer}: reply to ${w.id}, which gave up`);
        } else if (a === undefined) {
          this.finish(w, undefined, new ApiError('INTERNAL', `invalid reply from ${this.o.peer}: no answer to ${w.id}`));
        } else if (a.type === ERROR_TYPE) {
          this.finish(w, undefined, peerRejected(a.payload));
        } else {
          // What a plain reply would have been: the batch reply's signed fields, this request's answer.
          this.finish(w, { v: 1, type: a.type, id: reply.id, from: reply.from, to: reply.to, ts: reply.ts, payload: a.payload, re: w.id });
        }
      }
    } catch (err) {
      // Runs detached from any caller: every error must end up with the requests, none may escape.
      let failed = err;
      if (err instanceof EnvelopeRejected) {
        this.o.onRejected(err.reason, `${this.o.peer}: ${err.message}`);
        failed = new ApiError('INTERNAL', `invalid reply from ${this.o.peer}: ${err.reason}`);
      }
      for (const w of group) this.finish(w, undefined, failed);
    }
  }

  private finish(w: Waiting, reply: Envelope | undefined, err?: unknown): void {
    if (w.settled) return;
    w.settled = true;
    w.signal.removeEventListener('abort', w.onAbort);
    if (reply) w.resolve(reply);
    else w.reject(err);
    const sent = w.sent;
    if (sent !== undefined && --sent.waiting === 0) {
      // Nobody waits for this envelope's reply any more: a late one is a stray, and a blocked write may stop.
      this.session.forget(sent.id);
      sent.abandoned.abort();
    }
  }
}
