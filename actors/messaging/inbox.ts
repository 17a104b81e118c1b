// The inbox actor: a durable, deduplicated log of received messages with read state.
//
// Stream `inbox` holds two kinds of events: `received` (a whole message) and `acked` (its id). The list users
// query is a projection rebuilt from that log at start; it keeps each message's metadata and the sequence
// number of its `received` event, not its body — bodies are read back from the log for the page asked for, so
// memory does not grow with what peers send. A message is acknowledged to its sender only after its
// `received` event is durable, and a message id already in the inbox is acknowledged again without a second
// append — so the sender's at-least-once retries become exactly-once here.
import type { Clock } from '../../runtime/clock.ts';
import { ApiError, invalid, notFound } from '../../runtime/errors.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import type { InboxFilter, InboxMessage } from '../grpc/node-api.ts';

export const INBOX_STREAM = 'inbox';

type StoredMessage = Omit<InboxMessage, 'read'>;

/** What the projection holds per message: everything but the body, and where the body is. */
interface Entry {
  id: string;
  from: string;
  receivedAt: number;
  read: boolean;
  seq: number;
}

export class Inbox {
  readonly #store: EventStore;
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  /** Appends in flight, so a duplicate arriving meanwhile waits for the first instead of appending twice. */
  readonly #pending = new Map<string, Promise<void>>();
  readonly #listeners = new Set<(m: InboxMessage) => void>();
  #unread = 0;

  constructor(store: EventStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
    for (const e of store.read(INBOX_STREAM)) this.#apply(e.type, e.data, e.seq);
  }

  /** Durably store a message from `from`. Resolves when the sender may be told it was received. */
  async receive(message: Omit<StoredMessage, 'receivedAt'>): Promise<{ duplicate: boolean }> {
    const existing = this.#entries.get(message.id);
    if (existing) {
      if (existing.from !== message.from) throw new ApiError('ALREADY_EXISTS', `message id ${message.id} is taken by another sender`);
      return { duplicate: true };
    }
    const inFlight = this.#pending.get(message.id);
    if (inFlight) {
      await inFlight;
      return this.receive(message);
    }
    const stored: StoredMessage = { ...message, receivedAt: this.#clock.now() };
    const append = this.#store
      .append(INBOX_STREAM, [{ type: 'received', at: stored.receivedAt, data: stored }])
      .then((seq) => {
        this.#apply('received', stored, seq);
        const m = { ...stored, read: false };
        for (const l of this.#listeners) l(m);
      })
      .finally(() => this.#pending.delete(message.id));
    this.#pending.set(message.id, append);
    await append;
    return { duplicate: false };
  }

  list(filter: InboxFilter): { messages: InboxMessage[]; unread: number } {
    const out: InboxMessage[] = [];
    const limit = filter.limit || Infinity;
    if (filter.afterId && !this.#entries.has(filter.afterId)) throw invalid('cursor', 'does not name a message in this inbox');
    let skipping = !!filter.afterId;
    for (const e of this.#entries.values()) {
      if (skipping) {
        skipping = e.id !== filter.afterId;
        continue;
      }
      if (filter.unreadOnly && e.read) continue;
      if (filter.from && e.from !== filter.from) continue;
      if (filter.since && e.receivedAt < filter.since) continue;
      out.push(this.#load(e));
      if (out.length >= limit) break;
    }
    return { messages: out, unread: this.#unread };
  }

  get(id: string): InboxMessage | undefined {
    const e = this.#entries.get(id);
    return e && this.#load(e);
  }

  async ack(id: string): Promise<{ alreadyRead: boolean }> {
    const e = this.#entries.get(id);
    if (!e) throw notFound(`message ${id}`);
    if (e.read) return { alreadyRead: true };
    await this.#store.append(INBOX_STREAM, [{ type: 'acked', at: this.#clock.now(), data: { id } }]);
    this.#apply('acked', { id }, 0);
    return { alreadyRead: false };
  }

  subscribe(listener: (m: InboxMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  counts(): { total: number; unread: number } {
    return { total: this.#entries.size, unread: this.#unread };
  }

  /** The whole message: the body from its `received` event, the read state from the projection. */
  #load(e: Entry): InboxMessage {
    const event = this.#store.readOne(INBOX_STREAM, e.seq);
    return { ...(event!.data as StoredMessage), read: e.read };
  }

  #apply(type: string, data: unknown, seq: number): void {
    if (type === 'received') {
      const m = data as StoredMessage;
      if (this.#entries.has(m.id)) return;
      this.#entries.set(m.id, { id: m.id, from: m.from, receivedAt: m.receivedAt, read: false, seq });
      this.#unread += 1;
    } else if (type === 'acked') {
      const e = this.#entries.get((data as { id: string }).id);
      if (e && !e.read) {
        e.read = true;
        this.#unread -= 1;
      }
    }
  }
}
