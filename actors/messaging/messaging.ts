// Messaging, assembled: the inbox and outbox actors, the `message` envelope handler, and the calls the gRPC
// layer makes. Validation of user input happens here, before anything is appended.
import type { Clock, Random } from '../../runtime/clock.ts';
import { ApiError, invalid } from '../../runtime/errors.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import { newId } from '../../runtime/ids.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import { publicKeyFromDid } from '../identity/did.ts';
import type { InboxFilter, InboxMessage, OutboxEntry } from '../grpc/node-api.ts';
import { Inbox } from './inbox.ts';
import { Outbox, type EnvelopeSender } from './outbox.ts';
import { outboxStateOf } from '../../machines/outbox-delivery.ts';
import { MAX_TTL_MS, MESSAGE_ENVELOPE, MESSAGE_ID, parseMessagePayload, type MessageAck } from './protocol.ts';

export interface MessagingTransport extends EnvelopeSender {
  handle(type: string, handler: (env: { from: string; to: string; payload: unknown }) => Promise<{ type: string; payload: unknown }>): void;
  isConnected(did: string): boolean;
}

export interface MessagingOptions {
  did: string;
  store: EventStore;
  clock: Clock;
  random: Random;
  transport: MessagingTransport;
  supervisor: Supervisor;
  limits: { messageTtlMs: number; retryInitialMs: number; retryMaxMs: number; maxMessageBytes: number };
  /** How long SendMessage waits for a live delivery to a connected peer before answering "queued". */
  liveWaitMs?: number;
}

const MAX_LIMIT = 10_000;

export class Messaging {
  readonly inbox: Inbox;
  readonly outbox: Outbox;
  readonly #o: MessagingOptions;

  private constructor(o: MessagingOptions, inbox: Inbox, outbox: Outbox, deliveries: Supervisor) {
    this.#o = o;
    this.inbox = inbox;
    this.outbox = outbox;
    this.#deliveries = deliveries;
  }

  readonly #deliveries: Supervisor;

  /**
   * Builds the inbox (replaying its log) and registers the `message` handler. Call before the transport
   * starts, so no envelope arrives to find no handler; then `start()` once it runs.
   */
  static create(o: MessagingOptions): Messaging {
    const inbox = new Inbox(o.store, o.clock);
    const deliveries = new Supervisor(`${o.supervisor.path}/messaging/outbox`, { clock: o.clock });
    const outbox = new Outbox({ store: o.store, clock: o.clock, random: o.random, transport: o.transport, supervisor: deliveries });
    const messaging = new Messaging(o, inbox, outbox, deliveries);
    o.transport.handle(MESSAGE_ENVELOPE, (env) => messaging.#onMessageEnvelope(env));
    return messaging;
  }

  /**
   * Joins the supervision tree (after the transport, so a graceful stop ends deliveries before the transport
   * goes) and resumes every undelivered message of the log.
   */
  async start(): Promise<void> {
    await this.#o.supervisor.startChild({ id: 'messaging', start: () => deliveriesTree(this.inbox, this.#deliveries) });
    await this.outbox.start();
  }

  async send(req: { to: string; text?: string; data?: Uint8Array; contentType?: string; ttlMs?: number }): Promise<{ messageId: string; queued: boolean }> {
    publicKeyFromDid(req.to, 'to');
    if (req.to === this.#o.did) throw invalid('to', 'is this daemon\'s own DID; send to another agent');
    const text = req.text ?? '';
    const data = req.data ?? new Uint8Array();
    if (text.length > 0 && data.length > 0) throw invalid('message', 'set text or data, not both');
    const size = Buffer.byteLength(text) + data.length;
    if (size === 0) throw invalid('message', 'is empty');
    const max = this.#o.limits.maxMessageBytes;
    if (size > max) throw invalid('message', `${size} bytes exceeds the limit of ${max} bytes (messaging.max_message_bytes)`);
    const contentType = req.contentType || (text ? 'text/plain' : 'application/octet-stream');
    if (contentType.length > 128) throw invalid('content_type', 'longer than 128 characters');
    const ttlMs = req.ttlMs || this.#o.limits.messageTtlMs;
    if (ttlMs < 1000 || ttlMs > MAX_TTL_MS) throw invalid('ttl_ms', 'must be between 1 s and 30 days');

    const id = newId('msg');
    const live = this.#o.transport.isConnected(req.to);
    const actor = await this.outbox.enqueue({
      id,
      from: this.#o.did,
      to: req.to,
      content: { text, data, contentType },
      ttlMs,
      retryInitialMs: this.#o.limits.retryInitialMs,
      retryMaxMs: this.#o.limits.retryMaxMs,
    });
    // Accepted = durably queued. Tell the caller whether it also went through live, waiting briefly only when
    // the peer is connected (an offline peer would only make the caller wait for nothing).
    if (!live) return { messageId: id, queued: true };
    const delivered = await new Promise<boolean>((resolve) => {
      // Delivered, or not (retrying, or a final state other than delivered: `outbox` tells which); else keep waiting.
      const decide = (value: unknown): boolean | undefined => {
        const state = outboxStateOf(value);
        return state === 'delivered' ? true : state === 'queued' || state === 'sending' ? undefined : false;
      };
      const now = decide(actor.snapshot.value);
      if (now !== undefined) return resolve(now);
      const timer = setTimeout(() => finish(false), this.#o.liveWaitMs ?? 2000);
      const off = actor.subscribe((t) => {
        const d = decide(t.snapshot.value);
        if (d !== undefined) finish(d);
      });
      function finish(d: boolean) {
        clearTimeout(timer);
        off();
        resolve(d);
      }
    });
    return { messageId: id, queued: !delivered };
  }

  getInbox(filter: InboxFilter): { messages: InboxMessage[]; unread: number } {
    if (filter.from) publicKeyFromDid(filter.from, 'from');
    if (filter.limit !== undefined && (filter.limit < 0 || filter.limit > MAX_LIMIT)) throw invalid('limit', `must be 0–${MAX_LIMIT}`);
    if (filter.since !== undefined && filter.since < 0) throw invalid('since_ms', 'must not be negative');
    return this.inbox.list(filter);
  }

  ack(id: string): Promise<{ alreadyRead: boolean }> {
    if (!MESSAGE_ID.test(id)) throw invalid('message_id', `"${id}" is not a message id (msg_ followed by 26 characters)`);
    return this.inbox.ack(id);
  }

  getOutbox(filter: { id?: string; to?: string; pendingOnly?: boolean; limit?: number }): OutboxEntry[] {
    if (filter.id !== undefined && !MESSAGE_ID.test(filter.id)) throw invalid('message_id', `"${filter.id}" is not a message id`);
    if (filter.to) publicKeyFromDid(filter.to, 'to');
    const entries = this.outbox.list(filter);
    if (filter.id && entries.length === 0) throw new ApiError('NOT_FOUND', `message ${filter.id} not found in the outbox`);
    return entries;
  }

  peerConnected(did: string): void {
    this.outbox.peerConnected(did);
  }

  async #onMessageEnvelope(env: { from: string; payload: unknown }): Promise<{ type: string; payload: MessageAck }> {
    try {
      const m = parseMessagePayload(env.payload);
      const size = Buffer.byteLength(m.text) + m.data.length;
      if (size > this.#o.limits.maxMessageBytes) throw invalid('payload', `message of ${size} bytes is over our limit`);
      await this.inbox.receive({ ...m, from: env.from, to: this.#o.did });
      return { type: 'message.ack', payload: { id: m.id } };
    } catch (err) {
      // A refusal is an answer, not a crash: the sender records it and retries, or gives up when it is permanent.
      const permanent = err instanceof ApiError && (err.code === 'INVALID_ARGUMENT' || err.code === 'ALREADY_EXISTS');
      return { type: 'message.ack', payload: { error: err instanceof Error ? err.message : String(err), permanent } };
    }
  }
}

/** The messaging node in the health tree: the inbox and every live delivery under the outbox. */
function deliveriesTree(inbox: Inbox, deliveries: Supervisor) {
  return {
    stop: () => deliveries.stop(),
    tree: () => ({
      path: '',
      status: 'running' as const,
      restarts: 0,
      lastError: '',
      children: [
        { path: `${deliveries.path.replace(/\/outbox$/, '')}/inbox`, status: 'running' as const, restarts: 0, lastError: '', children: [] },
        deliveries.tree(),
      ],
    }),
  };
}
