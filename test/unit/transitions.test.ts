// The runtime steps machines through one reused inert scope instead of xstate's transition(), for speed.
// This property pins that both give the same snapshots and the same actions.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { initialTransition, transition } from 'xstate';
import { start, step } from '../../runtime/transitions.ts';
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

const actionsOf = (actions: readonly { type: string; params?: unknown }[]) => actions.map((a) => ({ type: a.type, params: a.params }));

describe('runtime transitions equal xstate transition()', () => {
  it('same snapshots, same actions, same refusals (property)', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (events) => {
        const [official0, officialActions0] = initialTransition(outboxDelivery, input);
        const ours0 = start(outboxDelivery, input, 0);
        expect(ours0.snapshot.value).toEqual(official0.value);
        expect(ours0.effects).toEqual(actionsOf(officialActions0).filter((a) => !a.type.startsWith('xstate.')));
        let official = official0;
        let ours = ours0.snapshot;
        let at = 1;
        for (const e of events) {
          const timed = { ...e, at: at++ };
          const [next, actions] = transition(outboxDelivery, official, timed as never);
          const s = step(outboxDelivery, ours, timed);
          expect(s.accepted).toBe(next !== official);
          expect(s.snapshot.value).toEqual(next.value);
          expect(s.snapshot.context).toEqual(next.context);
          expect(s.snapshot.status).toEqual(next.status);
          if (s.accepted) {
            const official = actionsOf(actions);
            expect(s.effects).toEqual(official.filter((a) => !a.type.startsWith('xstate.')));
            expect(s.timers.map((t) => t.id)).toEqual(
              official.filter((a) => a.type === 'xstate.raise' || a.type === 'xstate.cancel')
                .map((a) => (a.params as { id?: string; sendId?: string }).id ?? (a.params as { sendId: string }).sendId),
            );
          }
          official = next;
          ours = s.snapshot;
        }
      }),
      { numRuns: 300 },
    );
  });
});
