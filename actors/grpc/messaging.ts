// Messaging RPCs of A2ANode: SendMessage, GetInbox, SubscribeInbox, AckMessage, GetOutbox.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { A2ANodeServer } from '../../proto/gen/moltmesh/v1/a2a_node.ts';
import {
  OutboxState,
  type InboxMessage as PbInboxMessage, type OutboxEntry as PbOutboxEntry, type SubscribeInboxResponse,
} from '../../proto/gen/moltmesh/v1/messaging.ts';
import { invalid } from '../../runtime/errors.ts';
import type { InboxMessage, NodeApi, OutboxEntry } from './node-api.ts';
import { serverStream, unary, type HandlerContext } from './rpc.ts';
import { toStatusError } from './status.ts';
import { MAX_BUFFERED, MAX_BUFFERED_BYTES } from './stream.ts';
import {
  MAX_TTL_MS, contentType, limit, nonNegative, optionalDid, requireDid, requireMessageId,
} from './validate.ts';

/** A GetInbox page stops adding messages at about this many bytes, well under gRPC's default 4 MiB limit. */
export const INBOX_PAGE_BYTES = 3 * 1024 * 1024;
/** SubscribeInbox reads the unread backlog in pages of this many messages. */
const BACKLOG_PAGE = 1000;
/** What a subscriber ended for being too slow should do. */
const RESUBSCRIBE = 'resubscribe with include_unread to catch up';

type MessagingHandlers = Pick<A2ANodeServer, 'sendMessage' | 'getInbox' | 'subscribeInbox' | 'ackMessage' | 'getOutbox'>;

export function messagingHandlers(api: NodeApi, ctx: HandlerContext): MessagingHandlers {
  return {
    sendMessage: unary(ctx, 'SendMessage', async (req) => {
      const to = requireDid('to', req.to);
      if (!req.text && req.data.length === 0) throw invalid('text', 'message is empty (set text or data)');
      if (req.text && req.data.length > 0) throw invalid('data', 'set either text or data, not both');
      // The size limit is config (messaging.max_message_bytes): the daemon checks it.
      const ttlMs = nonNegative('ttl_ms', req.ttlMs);
      if (ttlMs > MAX_TTL_MS) throw invalid('ttl_ms', `at most ${MAX_TTL_MS} ms (30 days)`);
      return api.sendMessage({
        to,
        ...(req.text ? { text: req.text } : { data: req.data }),
        contentType: contentType('content_type', req.contentType),
        ttlMs: ttlMs || undefined,
      });
    }),

    getInbox: unary(ctx, 'GetInbox', async (req) => {
      const max = limit('limit', req.limit, 100);
      // One more than asked for tells whether there is a next page.
      const res = await api.getInbox({
        unreadOnly: req.unreadOnly,
        from: optionalDid('from', req.from),
        since: nonNegative('since_ms', req.sinceMs) || undefined,
        limit: max + 1,
        afterId: req.cursor ? requireMessageId('cursor', req.cursor) : undefined,
      });
      const messages: PbInboxMessage[] = [];
      let bytes = 0;
      for (const m of res.messages.slice(0, max)) {
        const size = inboxMessageBytes(m);
        if (messages.length > 0 && bytes + size > INBOX_PAGE_BYTES) break;
        bytes += size;
        messages.push(toPbInbox(m));
      }
      const more = messages.length < res.messages.length;
      return { messages, unread: res.unread, nextCursor: more ? messages[messages.length - 1].id : '' };
    }),

    subscribeInbox: serverStream<{ includeUnread: boolean }, SubscribeInboxResponse>(ctx, 'SubscribeInbox', async (req, sink): Promise<'live'> => {
      // While the unread backlog is written (at the reader's pace), live messages wait here, in arrival order;
      // null once live. A held message that the backlog also returns is sent once, with the backlog.
      let held: Map<string, InboxMessage> | null = req.includeUnread ? new Map() : null;
      let heldBytes = 0;
      const unsubscribe = api.subscribeInbox((m) => {
        // Runs inside the daemon's delivery path: a bad message must end this stream, not throw into messaging.
        try {
          if (held === null) {
            sink.send({ message: toPbInbox(m) }, inboxMessageBytes(m), RESUBSCRIBE);
            return;
          }
          held.set(m.id, m);
          heldBytes += inboxMessageBytes(m);
          if (held.size > MAX_BUFFERED || heldBytes > MAX_BUFFERED_BYTES) {
            sink.fail(GrpcStatus.RESOURCE_EXHAUSTED, `reader too slow: too many live messages waiting behind the unread ones; ${RESUBSCRIBE}`);
          }
        } catch (err) {
          sink.failWith(toStatusError(err, (e) => ctx.logger('error', 'SubscribeInbox: bad message', { error: String(e) })));
        }
      });
      sink.onClose(unsubscribe); // at once if the stream closed while subscribing
      if (held === null) return 'live';

      const write = (m: InboxMessage) => sink.write({ message: toPbInbox(m) }, inboxMessageBytes(m));
      let afterId: string | undefined;
      for (;;) {
        const { messages } = await api.getInbox({ unreadOnly: true, limit: BACKLOG_PAGE, afterId });
        for (const m of messages) {
          const h = held.get(m.id);
          if (h) {
            held.delete(m.id);
            heldBytes -= inboxMessageBytes(h);
          }
          if (!(await write(m))) return 'live'; // the stream is over
        }
        if (messages.length < BACKLOG_PAGE) break;
        afterId = messages[messages.length - 1].id;
      }
      // Then what arrived meanwhile (more may arrive while these are written), then live.
      for (const [id, m] of held) {
        held.delete(id);
        heldBytes -= inboxMessageBytes(m);
        if (!(await write(m))) return 'live';
      }
      held = null;
      return 'live';
    }),

    ackMessage: unary(ctx, 'AckMessage', (req) => api.ackMessage(requireMessageId('message_id', req.messageId))),

    getOutbox: unary(ctx, 'GetOutbox', async (req) => {
      const entries = await api.getOutbox({
        id: req.messageId ? requireMessageId('message_id', req.messageId) : undefined,
        to: optionalDid('to', req.to),
        pendingOnly: req.pendingOnly,
        limit: limit('limit', req.limit, 100),
      });
      return { entries: entries.map(toPbOutbox) };
    }),
  };
}

/** An upper bound of an inbox message's encoded size: its bodies and strings plus room for tags, lengths and numbers. */
export function inboxMessageBytes(m: InboxMessage): number {
  return m.data.byteLength + Buffer.byteLength(m.text) + Buffer.byteLength(m.id) + Buffer.byteLength(m.from)
    + Buffer.byteLength(m.to) + Buffer.byteLength(m.contentType) + 64;
}

export function toPbInbox(m: InboxMessage): PbInboxMessage {
  return {
    id: m.id, from: m.from, to: m.to, text: m.text,
    data: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength),
    contentType: m.contentType, sentAtMs: m.sentAt, receivedAtMs: m.receivedAt, read: m.read,
  };
}

const OUTBOX_STATES: Record<OutboxEntry['state'], OutboxState> = {
  queued: OutboxState.OUTBOX_STATE_QUEUED,
  sending: OutboxState.OUTBOX_STATE_SENDING,
  retrying: OutboxState.OUTBOX_STATE_RETRYING,
  delivered: OutboxState.OUTBOX_STATE_DELIVERED,
  expired: OutboxState.OUTBOX_STATE_EXPIRED,
  rejected: OutboxState.OUTBOX_STATE_REJECTED,
  failed: OutboxState.OUTBOX_STATE_FAILED,
};

export function toPbOutbox(e: OutboxEntry): PbOutboxEntry {
  return {
    id: e.id, to: e.to, state: OUTBOX_STATES[e.state] ?? OutboxState.OUTBOX_STATE_UNSPECIFIED,
    attempts: e.attempts, createdAtMs: e.createdAt,
    nextAttemptAtMs: e.nextAttemptAt ?? undefined, deliveredAtMs: e.deliveredAt ?? undefined,
    lastError: e.lastError, expiresAtMs: e.expiresAt,
  };
}
