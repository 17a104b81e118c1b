// Messaging RPCs of A2ANode: SendMessage, GetInbox, SubscribeInbox, AckMessage, GetOutbox.
import type { A2ANodeServer } from '../../proto/gen/moltmesh/v1/a2a_node.ts';
import {
  OutboxState,
  type InboxMessage as PbInboxMessage, type OutboxEntry as PbOutboxEntry, type SubscribeInboxResponse,
} from '../../proto/gen/moltmesh/v1/messaging.ts';
import { invalid } from '../../runtime/errors.ts';
import type { InboxMessage, NodeApi, OutboxEntry } from './node-api.ts';
import { serverStream, unary, type HandlerContext } from './rpc.ts';
import { toStatusError } from './status.ts';
import {
  MAX_TTL_MS, contentType, limit, nonNegative, optionalDid, requireDid, requireMessageId,
} from './validate.ts';

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
      const res = await api.getInbox({
        unreadOnly: req.unreadOnly,
        from: optionalDid('from', req.from),
        since: nonNegative('since_ms', req.sinceMs) || undefined,
        limit: limit('limit', req.limit, 100),
      });
      return { messages: res.messages.map(toPbInbox), unread: res.unread };
    }),

    subscribeInbox: serverStream<{ includeUnread: boolean }, SubscribeInboxResponse>(ctx, 'SubscribeInbox', (req, sink) => {
      let unsubscribe: (() => void) | undefined;
      sink.onClose(() => unsubscribe?.());
      unsubscribe = api.subscribeInbox({ includeUnread: req.includeUnread }, (m) => {
        // Runs inside the daemon's delivery path: a bad message must end this stream, not throw into messaging.
        try {
          sink.send({ message: toPbInbox(m) });
        } catch (err) {
          sink.failWith(toStatusError(err, (e) => ctx.logger('error', 'SubscribeInbox: bad message', { error: String(e) })));
        }
      });
      if (sink.finished) unsubscribe(); // closed while subscribing
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
