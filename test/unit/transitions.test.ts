// The runtime steps machines through one reused inert scope instead of xstate's transition(), for speed.
// This property pins that both give the same snapshots and the same actions.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startBoth, stepBoth } from '../support/same-as-xstate.ts';
import { outboxDelivery, type OutboxDeliveryInput } from '../../machines/outbox-delivery.ts';

const input: OutboxDeliveryInput = {
  id: 'msg_01JX0000000000000000000000', from: 'did:key:zA', to: 'did:key:zB',
  content: { text: 'hi', data: new Uint8Array(), contentType: 'text/plain' },
  ttlMs: 60_000, retryInitialMs: 1_000, retryMaxMs: 8_000, createdAt: 1_000,
};

const event = fc.oneof(
  fc.constant({ type: 'SEND' }),
  fc.constant({ type: 'PEER_CONNECTED' }),
  fc.record({ type: fc.constant('DELIVERED'), attempt: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ type: fc.constant('DELIVERY_FAILED'), attempt: fc.integer({ min: 1, max: 3 }), error: fc.string({ maxLength: 3 }), jitter: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.constant({ type: 'xstate.after.retryDelay.outboxDelivery.pending.retrying' }),
  fc.constant({ type: 'xstate.after.ttl.outboxDelivery.pending' }),
  fc.constant({ type: 'NONSENSE' }),
);

describe('runtime transitions equal xstate transition()', () => {
  it('same snapshots, same actions, same refusals (property)', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (events) => {
        let both = startBoth(outboxDelivery, input, 0);
        let at = 1;
        for (const e of events) both = stepBoth(outboxDelivery, both, { ...e, at: at++ });
      }),
      { numRuns: 300 },
    );
  });
});
