import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { AnyEventObject } from 'xstate';
import { EventStore } from '../../runtime/event-store.ts';
import { foldStream, PersistedActor, type PersistedActorOptions } from '../../runtime/persisted-actor.ts';
import { stateOf, type Effect } from '../../runtime/transitions.ts';
import { replayStream } from '../../runtime/replay.ts';
import { outboxDelivery, type OutboxDeliveryInput } from '../../machines/outbox-delivery.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { tempDir } from '../support/temp-dir.ts';

const input: OutboxDeliveryInput = {
  id: 'msg_01JX0000000000000000000000',
  from: 'did:key:zA',
  to: 'did:key:zB',
  content: { text: 'hi', data: new Uint8Array(), contentType: 'text/plain' },
  ttlMs: 60_000,
  retryInitialMs: 1_000,
  retryMaxMs: 8_000,
  createdAt: 1_700_000_000_000,
};

const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

function setup(extra: Partial<PersistedActorOptions> = {}) {
  const dir = tempDir();
  dirs.push(dir);
  const clock = new ManualClock();
  let store = new EventStore(dir.path);
  const performed: Effect[] = [];
  /** Effects resolve when the test says so: results are queued per call. */
  const results: ((value: AnyEventObject[]) => void)[] = [];
  const options = (): PersistedActorOptions => ({
    store,
    stream: 'outbox/t',
    machine: outboxDelivery,
    clock,
    onCrash: (e) => {
      throw e;
    },
    perform: (effect) => {
      performed.push(effect);
      return new Promise<AnyEventObject[]>((resolve) => results.push(resolve));
    },
    ...extra,
  });
  return {
    clock,
    performed,
    results,
    options,
    get store() {
      return store;
    },
    /** Simulate a crash: drop the in-memory actor, reopen the store from disk. */
    async reopen(actor: PersistedActor) {
      actor.stop();
      await store.close();
      store = new EventStore(dir.path);
      return PersistedActor.recover(options());
    },
  };
}

/** cbor-x decodes bytes as Buffer; compare contents, not classes. */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v, (_, x) => (x?.type === 'Buffer' ? x.data : x instanceof Uint8Array ? [...x] : x)));

/** Used only to show that nothing happens; positive expectations await a transition instead. */
const settle = () => new Promise((r) => setTimeout(r, 20));

/** Resolves at the first transition into a state whose value matches. */
function reaches(actor: PersistedActor, value: unknown): Promise<void> {
  if (JSON.stringify(actor.snapshot.value) === JSON.stringify(value)) return Promise.resolve();
  return new Promise((resolve) => {
    const off = actor.subscribe((t) => {
      if (JSON.stringify(t.snapshot.value) === JSON.stringify(value)) {
        off();
        resolve();
      }
    });
  });
}

describe('PersistedActor', () => {
  it('appends before applying, and a refused event appends nothing', async () => {
    const t = setup();
    const actor = await PersistedActor.create(t.options(), input, [{ type: 'SEND' }]);
    expect(stateOf(actor.snapshot).value).toEqual({ pending: 'sending' });
    expect(t.store.head('outbox/t')).toBe(2);
    expect(t.performed.map((e) => e.type)).toEqual(['deliver']);
    const refused = await actor.send({ type: 'SEND' });
    expect(refused.accepted).toBe(false);
    expect(t.store.head('outbox/t')).toBe(2);
  });

  it('never repeats an acknowledged effect on recovery, and re-runs an unacknowledged one once', async () => {
    const t = setup();
    let actor = await PersistedActor.create(t.options(), input, [{ type: 'SEND' }]);
    expect(t.performed).toHaveLength(1);
    // Crash before the effect finished: the effect row is still there, so recovery re-runs it.
    actor = await t.reopen(actor);
    expect(t.performed).toHaveLength(2);
    t.results[1]!([{ type: 'DELIVERED', attempt: 1 }]);
    await reaches(actor, 'delivered');
    expect(stateOf(actor.snapshot).value).toBe('delivered');
    // Crash after: nothing is performed again.
    actor = await t.reopen(actor);
    expect(t.performed).toHaveLength(2);
    expect(stateOf(actor.snapshot).value).toBe('delivered');
  });

  it('re-arms timers from their persisted due time, not from zero', async () => {
    const t = setup();
    let actor = await PersistedActor.create(t.options(), input, [{ type: 'SEND' }]);
    t.results[0]!([{ type: 'DELIVERY_FAILED', attempt: 1, error: 'offline', jitter: 1 }]); // back-off = 1000 ms
    await reaches(actor, { pending: 'retrying' });
    expect(stateOf(actor.snapshot).value).toEqual({ pending: 'retrying' });
    t.clock.advance(600);
    actor = await t.reopen(actor);
    t.clock.advance(399);
    await settle();
    expect(stateOf(actor.snapshot).value).toEqual({ pending: 'retrying' });
    t.clock.advance(1);
    await reaches(actor, { pending: 'sending' });
    expect(stateOf(actor.snapshot).value).toEqual({ pending: 'sending' });
    expect(t.performed).toHaveLength(2);
  });

  it('expires after the TTL measured from creation, across restarts', async () => {
    const t = setup();
    let actor = await PersistedActor.create(t.options(), input, [{ type: 'SEND' }]);
    t.results[0]!([{ type: 'DELIVERY_FAILED', attempt: 1, error: 'offline', jitter: 0 }]);
    await reaches(actor, { pending: 'retrying' });
    actor = await t.reopen(actor);
    t.clock.advance(60_000);
    await reaches(actor, 'expired');
    expect(stateOf(actor.snapshot).value).toBe('expired');
  });

  it('replay from a snapshot equals replay from the start (property)', async () => {
    const event = fc.oneof(
      fc.constant({ type: 'SEND' }),
      fc.constant({ type: 'PEER_CONNECTED' }),
      fc.record({ type: fc.constant('DELIVERED'), attempt: fc.integer({ min: 1, max: 3 }) }),
      fc.record({
        type: fc.constant('DELIVERY_FAILED'),
        attempt: fc.integer({ min: 1, max: 3 }),
        error: fc.string({ maxLength: 5 }),
        jitter: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(event, { maxLength: 30 }), fc.integer({ min: 1, max: 5 }), async (events, every) => {
        const t = setup();
        const options = { ...t.options(), snapshotEvery: every, perform: async () => [] };
        const actor = await PersistedActor.create(options, input);
        for (const e of events) await actor.send(e);
        const withSnapshot = foldStream(t.store, 'outbox/t', outboxDelivery);
        const fromScratch = foldStream(
          { ...t.store, getSnapshot: () => undefined, read: t.store.read.bind(t.store) } as unknown as EventStore,
          'outbox/t',
          outboxDelivery,
        );
        expect(plain(stateOf(withSnapshot.snapshot!))).toEqual(plain(stateOf(actor.snapshot)));
        expect(plain(stateOf(fromScratch.snapshot!))).toEqual(plain(stateOf(actor.snapshot)));
        actor.stop();
        await t.store.close();
      }),
      { numRuns: 40 },
    );
  });

  it('every effect in the log is performed exactly once, across restarts (property)', async () => {
    const step = fc.oneof(
      fc.constant({ kind: 'event' as const, event: { type: 'PEER_CONNECTED' } }),
      fc.record({ kind: fc.constant('result' as const), ok: fc.boolean() }),
      fc.constant({ kind: 'restart' as const }),
      fc.integer({ min: 1, max: 20_000 }).map((ms) => ({ kind: 'advance' as const, ms })),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        const t = setup();
        let actor = await PersistedActor.create(t.options(), input, [{ type: 'SEND' }]);
        // Every queued event appended, and every effect result the test gave appended too.
        const settled = async () => {
          for (let i = 0; i < 3; i++) {
            await actor.idle();
            await new Promise((r) => setImmediate(r));
          }
        };
        for (const s of steps) {
          if (s.kind === 'event') await actor.send(s.event);
          else if (s.kind === 'advance') t.clock.advance(s.ms);
          else if (s.kind === 'restart') {
            // Only restart when nothing is half-done, so "exactly once" is the claim (mid-effect crashes are
            // at-least-once by design and covered above).
            if ([...t.store.rows('effects', ['outbox/t'])].length === 0) actor = await t.reopen(actor);
          } else {
            const attempt = (effectParams(t.performed.at(-1)) ?? { attempt: 0 }).attempt;
            const pending = t.results.splice(0);
            pending.forEach((resolve) => resolve(s.ok ? [{ type: 'DELIVERED', attempt }] : [{ type: 'DELIVERY_FAILED', attempt, error: 'x', jitter: 0.5 }]));
          }
          await settled();
        }
        // The effects the log asked for, by replaying it purely:
        const logged = [...replayStream(t.store, 'outbox/t', outboxDelivery)].flatMap((r) => r.effects);
        const performedAttempts = t.performed.map((e) => effectParams(e)!.attempt);
        expect(new Set(performedAttempts).size).toBe(performedAttempts.length);
        expect(performedAttempts.length).toBe(logged.length);
        actor.stop();
        await t.store.close();
      }),
      { numRuns: 60 },
    );
  });
});

function effectParams(e: Effect | undefined): { attempt: number } | undefined {
  return e?.params as { attempt: number } | undefined;
}

describe('PersistedActor edge cases', () => {
  it('a timer longer than the platform allows waits out the rest instead of firing early', async () => {
    const t = setup();
    // A clock whose timers fire after at most 1 s, as Node's do after ~24.8 days.
    const capped = t.clock.setTimeout.bind(t.clock);
    t.clock.setTimeout = (fn, ms) => capped(fn, Math.min(ms, 1_000));
    const actor = await PersistedActor.create(t.options(), { ...input, ttlMs: 5_500 }, [{ type: 'SEND' }]);
    t.results[0]!([{ type: 'DELIVERY_FAILED', attempt: 1, error: 'offline', jitter: 0 }]);
    await reaches(actor, { pending: 'retrying' });
    t.results.length = 0;
    for (let i = 0; i < 5; i++) {
      t.clock.advance(1_000);
      await actor.idle();
      t.results.splice(0).forEach((r) => r([{ type: 'DELIVERY_FAILED', attempt: 99, error: 'stale', jitter: 0 }]));
    }
    expect(actor.snapshot.status).toBe('active');
    t.clock.advance(500);
    await reaches(actor, 'expired');
  });

  it('reaching a final state retires effects still pending from earlier attempts', async () => {
    const t = setup();
    let actor = await PersistedActor.create(t.options(), input, [{ type: 'SEND' }]);
    await actor.send({ type: 'PEER_CONNECTED' }); // attempt 2 while attempt 1 is still in flight
    expect([...t.store.rows('effects', ['outbox/t'])]).toHaveLength(2);
    t.results[1]!([{ type: 'DELIVERED', attempt: 2 }]);
    await reaches(actor, 'delivered');
    expect([...t.store.rows('effects', ['outbox/t'])]).toHaveLength(0);
    actor = await t.reopen(actor);
    expect(t.performed).toHaveLength(2); // nothing re-sent after the restart
  });

  it('with retireEffectsAtFinal off, an effect pending at the end still runs after a restart, then the stream leaves the live index', async () => {
    const t = setup({ retireEffectsAtFinal: false });
    let actor = await PersistedActor.create(t.options(), input, [{ type: 'SEND' }]);
    await actor.send({ type: 'PEER_CONNECTED' });
    // The second attempt's result ends it while the first attempt's effect is still pending.
    t.results[1]!([{ type: 'DELIVERED', attempt: 2 }]);
    await reaches(actor, 'delivered');
    expect([...t.store.rows('effects', ['outbox/t'])]).toHaveLength(1);
    expect([...t.store.liveStreams('outbox/')]).toEqual(['outbox/t']);
    // Crash; on recovery the finished actor performs what it still owes, once.
    actor = await t.reopen(actor);
    expect(t.performed).toHaveLength(3);
    const settled = actor.effectsSettled();
    t.results[2]!([]);
    await settled;
    expect([...t.store.rows('effects', ['outbox/t'])]).toHaveLength(0);
    expect([...t.store.liveStreams('outbox/')]).toEqual([]);
    await actor.stop();
  });
});
