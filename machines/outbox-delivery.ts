// The life of one outgoing message (a user's message, a task's transition), from the sender's side.
//
//   queued ──SEND/PEER_CONNECTED──▶ sending ──DELIVERED──▶ delivered
//                                     │  ▲
//                       DELIVERY_FAILED  │ after back-off, or PEER_CONNECTED
//                                     ▼  │
//                                   retrying
//   …and from any of the three: after the TTL, expired; when the receiver refuses the message for good
//   (DELIVERY_REJECTED: over its size limit, malformed), rejected; when the actor has crashed past its
//   supervisor's budget (FAIL), failed. All four outcomes are final.
//
// Pure: time arrives as `event.at`, randomness as `event.jitter` (both injected by the actor shell).
// The one effect, `deliver`, is performed by actors/messaging/outbox.ts.
import { assign, setup } from 'xstate';

export interface OutboxDeliveryInput {
  id: string;
  from: string;
  to: string;
  /** What the envelope carries; its meaning is the outbox's (actors/messaging/outbox.ts `DeliveryKind`). */
  content: unknown;
  ttlMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** The sender's clock when the message was accepted; signed into every envelope as `sentAt`. */
  createdAt: number;
}

export interface OutboxDeliveryContext extends OutboxDeliveryInput {
  attempts: number;
  lastError: string;
  nextDelayMs: number;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
}

/** The `deliver` effect: attempt number `attempt` at handing message `id` to `to`. */
export interface DeliverParams {
  id: string;
  to: string;
  content: unknown;
  createdAt: number;
  attempt: number;
}

export type OutboxDeliveryEvent =
  | { type: 'SEND'; at: number }
  | { type: 'PEER_CONNECTED'; at: number }
  | { type: 'DELIVERED'; at: number; attempt: number }
  | { type: 'DELIVERY_FAILED'; at: number; attempt: number; error: string; jitter: number }
  | { type: 'DELIVERY_REJECTED'; at: number; attempt: number; error: string }
  | { type: 'FAIL'; at: number; reason: string };

/** Capped exponential back-off with "equal jitter": half the step is fixed, half is random. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, jitter: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(base / 2 + (base / 2) * jitter);
}

export const outboxDelivery = setup({
  types: {
    context: {} as OutboxDeliveryContext,
    input: {} as OutboxDeliveryInput,
    events: {} as OutboxDeliveryEvent,
  },
  actions: {
    // Effect: sign an envelope with the message and hand it to the peer; the result comes back as an event.
    deliver: (_, _params: DeliverParams) => {},
  },
  guards: {
    // A failure reported by an attempt we have since replaced (the peer reconnected meanwhile) changes nothing.
    currentAttempt: ({ context, event }) => (event as { attempt: number }).attempt === context.attempts,
  },
  delays: {
    retryDelay: ({ context }) => context.nextDelayMs,
    ttl: ({ context }) => context.ttlMs,
  },
}).createMachine({
  id: 'outboxDelivery',
  context: ({ input }) => ({
    ...input,
    attempts: 0,
    lastError: '',
    nextDelayMs: 0,
    nextAttemptAt: null,
    deliveredAt: null,
  }),
  initial: 'pending',
  states: {
    pending: {
      after: { ttl: 'expired' },
      on: {
        FAIL: { target: 'failed', actions: assign({ lastError: ({ event }) => event.reason }) },
      },
      initial: 'queued',
      states: {
        queued: {
          on: { SEND: 'sending', PEER_CONNECTED: 'sending' },
        },
        sending: {
          entry: [
            assign({ attempts: ({ context }) => context.attempts + 1, nextAttemptAt: null }),
            {
              type: 'deliver',
              params: ({ context }) => ({
                id: context.id,
                to: context.to,
                content: context.content,
                createdAt: context.createdAt,
                attempt: context.attempts,
              }),
            },
          ],
          on: {
            // The attempt in flight may be stuck on a dead address; a fresh connection is a better bet now.
            PEER_CONNECTED: { target: 'sending', reenter: true },
            // Any attempt's acknowledgement counts: the receiver has the message durably.
            DELIVERED: {
              target: '#outboxDelivery.delivered',
              actions: assign({ deliveredAt: ({ event }) => event.at }),
            },
            // A permanent refusal ends it, whichever attempt it answers: retrying cannot help.
            DELIVERY_REJECTED: {
              target: '#outboxDelivery.rejected',
              actions: assign({ lastError: ({ event }) => event.error }),
            },
            DELIVERY_FAILED: {
              guard: 'currentAttempt',
              target: 'retrying',
              actions: assign(({ context, event }) => {
                const delay = backoffMs(context.attempts, context.retryInitialMs, context.retryMaxMs, event.jitter);
                return { lastError: event.error, nextDelayMs: delay, nextAttemptAt: event.at + delay };
              }),
            },
          },
        },
        retrying: {
          after: { retryDelay: 'sending' },
          on: { PEER_CONNECTED: 'sending' },
        },
      },
    },
    delivered: { type: 'final' },
    expired: {
      type: 'final',
      entry: assign({ lastError: ({ context }) => context.lastError || 'not delivered before the message TTL' }),
    },
    rejected: { type: 'final' },
    failed: { type: 'final' },
  },
});

export type OutboxState = 'queued' | 'sending' | 'retrying' | 'delivered' | 'expired' | 'rejected' | 'failed';

/** The flat state name users see (`pending.retrying` → `retrying`). */
export function outboxStateOf(value: unknown): OutboxState {
  if (typeof value === 'string') return value as OutboxState;
  return (value as { pending: OutboxState }).pending;
}
