// The inbox actor: a durable, deduplicated log of received messages with read state.
//
// Stream `inbox` holds two kinds of events: `received` (a whole message) and `acked` (its id). The list users
// query is a projection rebuilt from that log at start. A message is acknowledged to its sender only after
// its `received` event is durable, and a message id already in the inbox is acknowledged again without a
// second append — so the sender's at-least-once retries become exactly-once here.
import type { Clock } from '../../runtime/clock.ts';
import { ApiError, invalid, notFound } from '../../runtime/errors.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import type { InboxFilter, InboxMessage } from '../grpc/node-api.ts';

export const INBOX_STREAM = 'inbox';

type StoredMessage = Omit<InboxMessage, 'read'>;

export class Inbox {
  readonly #store: EventStore;
  readonly #clock: Clock;
  readonly #messages = new Map<string, InboxMessage>();
  /** Appends in flight, so a duplicate arriving meanwhile waits for the first instead of appending twice. */
  readonly #pending = new Map<string, Promise<void>>();
  readonly #listeners = new Set<(m: InboxMessage) => void>();
  #unread = 0;

  constructor(store: EventStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
    for (const e of store.read(INBOX_STREAM)) this.#apply(e.type, e.data);
  }

  /** Durably store a message from `from`. Resolves when the sender may be told it was received. */
  async receive(message: Omit<StoredMessage, 'receivedAt'>): Promise<{ duplicate: boolean }> {
    const existing = this.#messages.get(message.id);
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
      .then(() => {
        const m = this.#apply('received', stored)!;
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
    if (filter.afterId && !this.#messages.has(filter.afterId)) throw invalid('cursor', 'does not name a message in this inbox');
    let skipping = !!filter.afterId;
    for (const m of this.#messages.values()) {
      if (skipping) {
        skipping = m.id !== filter.afterId;
        continue;
      }
      if (filter.unreadOnly && m.read) continue;
      if (filter.from && m.from !== filter.from) continue;
      if (filter.since && m.receivedAt < filter.since) continue;
      out.push(m);
      if (out.length >= limit) break;
    }
    return { messages: out, unread: this.#unread };
  }

  get(id: string): InboxMessage | undefined {
    return this.#messages.get(id);
  }

  async ack(id: string): Promise<{ alreadyRead: boolean }> {
    const m = this.#messages.get(id);
    if (!m) throw notFound(`message ${id}`);
    if (m.read) return { alreadyRead: true };
    await this.#store.append(INBOX_STREAM, [{ type: 'acked', at: this.#clock.now(), data: { id } }]);
    this.#apply('acked', { id });
    return { alreadyRead: false };
  }

  subscribe(listener: (m: InboxMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  counts(): { total: number; unread: number } {
    return { total: this.#messages.size, unread: this.#unread };
  }

  #apply(type: string, data: unknown): InboxMessage | undefined {
    if (type === 'received') {
      const m = { ...(data as StoredMessage), read: false };
      if (this.#messages.has(m.id)) return this.#messages.get(m.id);
      this.#messages.set(m.id, m);
      this.#unread += 1;
      return m;
    }
    if (type === 'acked') {
      const m = this.#messages.get((data as { id: string }).id);
      if (m && !m.read) {
        m.read = true;
        this.#unread -= 1;
      }
    }
    return undefined;
  }
}
