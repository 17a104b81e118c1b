// The name machine (machines/name.ts) against a plain reference model, the records it asks to publish (signed and
// selected as the DHT would), and its timers through the persisted actor: persisted as absolute due times,
// re-armed from them after a restart.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { AnyMachineSnapshot } from 'xstate';
import { start, step, type Step, type TimedEvent } from '../../runtime/transitions.ts';
import { EventStore } from '../../runtime/event-store.ts';
import { foldStream, PersistedActor } from '../../runtime/persisted-actor.ts';
import { identityFromSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { signName, verifyName } from '../../actors/discovery/records.ts';
import { nameHolder } from '../../actors/discovery/dht.ts';
import {
  nameMachine,
  nameStateOf,
  type NameContext,
  type NameInput,
  type NameRecordParams,
  type NameEvent,
  type NameState,
  type PublishRecordParams,
} from '../../machines/name.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { startBoth, stepBoth } from '../support/same-as-xstate.ts';
import { tempDir } from '../support/temp-dir.ts';

const T0 = 1_750_000_000_000;
const NAME = 'swift-falcon';

let owner: Identity;
beforeAll(async () => {
  owner = await identityFromSeed(new Uint8Array(32).fill(7));
});

const input = (over: Partial<NameInput> = {}): NameInput => ({
  name: NAME,
  owner: owner.did,
  at: T0,
  ttlMs: 10_000,
  renewBeforeMs: 4_000,
  retryMs: 1_000,
  ...over,
});

const contextOf = (s: AnyMachineSnapshot) => s.context as NameContext;
const published = (s: Step) => s.effects.filter((e) => e.type === 'publishRecord').map((e) => (e.params as PublishRecordParams).record);

type TimerKind = 'expiry' | 'retry' | 'renewal';
const kindOf = (id: string): TimerKind => (id.includes('.expiry.') ? 'expiry' : id.includes('.retry.') ? 'retry' : 'renewal');

/** The runtime's view of armed timers: ops applied in order, keyed by id. */
class Timers {
  readonly armed = new Map<string, { due: number; event: { type: string } }>();
  apply(s: Step): void {
    for (const t of s.timers) {
      if (t.op === 'set') this.armed.set(t.id, { due: t.due, event: t.event });
      else this.armed.delete(t.id);
    }
  }
  next(): { id: string; due: number; event: { type: string } } | undefined {
    return [...this.armed.entries()].map(([id, t]) => ({ id, ...t })).sort((a, b) => a.due - b.due)[0];
  }
  byKind(): Partial<Record<TimerKind, number>> {
    return Object.fromEntries([...this.armed.entries()].map(([id, t]) => [kindOf(id), t.due]));
  }
}

// ── The reference model, written apart from the machine ──────────────────────────────────────────────────

interface Model {
  state: NameState;
  backoff: boolean;
  seq: number;
  record: NameRecordParams | null;
  pending: NameRecordParams | null;
  retryDue: number;
}

type External =
  | { type: 'PUBLISHED'; seqOffset: number }
  | { type: 'PUBLISH_FAILED'; seqOffset: number }
  | { type: 'LOST'; seqOffset: number }
  | { type: 'RELEASE' };
type ModelEvent = External | { type: 'timer'; kind: TimerKind };

function initialModel(i: NameInput): { model: Model; publish: NameRecordParams[] } {
  const seq = (i.previousSeq ?? 0) + 1;
  const first = { name: i.name, did: i.owner, claimedAt: i.at, issuedAt: i.at, expiresAt: i.at + i.ttlMs, seq, released: false };
  return { model: { state: 'claiming', backoff: false, seq, record: null, pending: first, retryDue: 0 }, publish: [first] };
}

/** What the machine must do: the next model (or refused), and the records to publish. */
function modelStep(m: Model, e: ModelEvent, at: number, i: NameInput): { next: Model; publish: NameRecordParams[] } | 'refused' {
  const publishing = m.state === 'claiming' || m.state === 'renewing';
  const live = Math.max(m.record?.expiresAt ?? 0, m.pending?.expiresAt ?? 0);
  const seqOf = (x: { seqOffset: number }) => m.seq + x.seqOffset;
  // RELEASE and a LOST race both end by withdrawing our claim with a release record, while one of ours may be live.
  const withdraw = (state: 'released' | 'lost') => {
    const next: Model = { ...m, state, backoff: false };
    if (at >= live) return { next, publish: [] };
    const release = { name: i.name, did: i.owner, claimedAt: i.at, issuedAt: at, expiresAt: live, seq: m.seq + 1, released: true };
    return { next: { ...next, seq: m.seq + 1, pending: null }, publish: [release] };
  };
  if (e.type === 'RELEASE') {
    if (!publishing && m.state !== 'claimed') return 'refused';
    return withdraw('released');
  }
  if (e.type === 'LOST') {
    if ((publishing || m.state === 'claimed') && seqOf(e) === m.seq) return withdraw('lost');
    return 'refused';
  }
  if (e.type === 'PUBLISHED') {
    if (publishing && seqOf(e) === m.seq) return { next: { ...m, state: 'claimed', backoff: false, record: m.pending, pending: null }, publish: [] };
    return 'refused';
  }
  if (e.type === 'PUBLISH_FAILED') {
    if (publishing && !m.backoff && seqOf(e) === m.seq) return { next: { ...m, backoff: true, retryDue: at + i.retryMs }, publish: [] };
    return 'refused';
  }
  // timers (the runtime fires only armed ones)
  if (e.kind === 'expiry') return { next: { ...m, state: 'expired', backoff: false }, publish: [] };
  if (e.kind === 'retry') return { next: { ...m, backoff: false }, publish: [m.pending!] };
  // renewal
  if (at >= m.record!.expiresAt) return { next: { ...m, state: 'expired' }, publish: [] };
  const renewal = { name: i.name, did: i.owner, claimedAt: i.at, issuedAt: at, expiresAt: at + i.ttlMs, seq: m.seq + 1, released: false };
  return { next: { ...m, state: 'renewing', backoff: false, seq: renewal.seq, pending: renewal }, publish: [renewal] };
}

/** The timers the model says are armed, by kind, as absolute due times (`enteredAt`: when the state was entered). */
function modelTimers(m: Model, i: NameInput, enteredAt: number): Partial<Record<TimerKind, number>> {
  if (m.state === 'claimed') return { renewal: Math.max(enteredAt, m.record!.expiresAt - i.renewBeforeMs) };
  if (m.state === 'claiming' || m.state === 'renewing') {
    const expiry = Math.max(enteredAt, (m.record ?? m.pending)!.expiresAt);
    return m.backoff ? { expiry, retry: m.retryDue } : { expiry };
  }
  return {};
}

// ── Walks ────────────────────────────────────────────────────────────────────────────────────────────────

const external: fc.Arbitrary<External> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0, 0, 0, -1, 1).map((seqOffset) => ({ type: 'PUBLISHED' as const, seqOffset })) },
  { weight: 3, arbitrary: fc.constantFrom(0, 0, -1).map((seqOffset) => ({ type: 'PUBLISH_FAILED' as const, seqOffset })) },
  { weight: 1, arbitrary: fc.constantFrom(0, 0, -1, 1).map((seqOffset) => ({ type: 'LOST' as const, seqOffset })) },
  { weight: 1, arbitrary: fc.constant({ type: 'RELEASE' as const }) },
);
/** Either an outside event after `delay` ms — unless a timer is due first, which then fires instead — or the next timer. */
const walkStep = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('event' as const), event: external, delay: fc.nat(3_000) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'timer' as const }) },
);

function toEvent(e: External, seq: number, at: number): TimedEvent {
  return nameEvent(e, seq, at) as TimedEvent;
}

function nameEvent(e: External, seq: number, at: number): NameEvent {
  switch (e.type) {
    case 'PUBLISHED':
      return { type: 'PUBLISHED', seq: seq + e.seqOffset, at };
    case 'PUBLISH_FAILED':
      return { type: 'PUBLISH_FAILED', seq: seq + e.seqOffset, error: 'no peers', at };
    case 'LOST':
      return { type: 'LOST', seq: seq + e.seqOffset, holder: 'did:key:z6MkOther', holderExpiresAt: at + 5_000, at };
    case 'RELEASE':
      return { type: 'RELEASE', at };
  }
}

describe('name machine against the reference model', () => {
  it('lands, publishes and arms timers exactly as the model says; every record it asks for is valid and wins (property)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(walkStep, { maxLength: 60 }), fc.constantFrom(0, 0, 7), (walk, previousSeq) => {
        const i = input({ previousSeq });
        let s = start(nameMachine, i, i.at);
        let { model, publish } = initialModel(i);
        let now = i.at;
        let enteredAt = i.at;
        const timers = new Timers();
        timers.apply(s);
        const all: Uint8Array[] = [];
        const check = (st: Step, expected: NameRecordParams[]) => {
          expect(published(st)).toEqual(expected);
          for (const r of expected) {
            // What the machine asks for is a record every daemon accepts, and the newest of ours wins the selector.
            all.push(signName(r, owner));
            expect(verifyName(all.at(-1)!, { expectedName: NAME, now: r.issuedAt }).seq).toBe(r.seq);
            const holder = nameHolder(NAME, all, r.issuedAt);
            if (r.released) expect(holder).toBeUndefined();
            else expect(holder?.seq).toBe(r.seq);
          }
        };
        check(s, publish);
        expect(timers.byKind()).toEqual(modelTimers(model, i, enteredAt));
        for (const w of walk) {
          if (s.snapshot.status === 'done') break;
          const due = timers.next();
          let event: TimedEvent;
          let me: ModelEvent;
          if (w.kind === 'timer' || (due && now + w.delay >= due.due)) {
            if (!due) continue;
            now = Math.max(now, due.due);
            timers.armed.delete(due.id);
            event = { ...due.event, at: now };
            me = { type: 'timer', kind: kindOf(due.id) };
          } else {
            now += w.delay;
            event = toEvent(w.event, contextOf(s.snapshot).seq, now);
            me = w.event;
          }
          const expected = modelStep(model, me, now, i);
          const next = step(nameMachine, s.snapshot, event);
          seen.add(`${nameStateOf(s.snapshot.value)} ${me.type === 'timer' ? me.kind : me.type} ${expected === 'refused' ? 'refused' : nameStateOf(next.snapshot.value)}`);
          if (expected === 'refused') {
            expect(next.accepted, `${me.type} in ${JSON.stringify(s.snapshot.value)}`).toBe(false);
            continue;
          }
          expect(next.accepted, `${JSON.stringify(me)} in ${JSON.stringify(s.snapshot.value)}`).toBe(true);
          if (expected.next.state !== model.state) enteredAt = now;
          model = expected.next;
          s = next;
          timers.apply(s);
          expect(nameStateOf(s.snapshot.value)).toBe(model.state);
          check(s, expected.publish);
          const c = contextOf(s.snapshot);
          expect({ seq: c.seq, record: c.record, pending: c.pending }).toEqual({ seq: model.seq, record: model.record, pending: model.pending });
          expect(c.claimedAt).toBe(i.at);
          expect(timers.byKind()).toEqual(modelTimers(model, i, enteredAt));
          if (s.snapshot.status === 'done') expect(timers.armed.size).toBe(0);
        }
      }),
      { numRuns: 2000 },
    );
    // The walks reach every state and the interesting edges.
    for (const edge of [
      'claiming PUBLISHED claimed', 'claimed renewal renewing', 'renewing PUBLISHED claimed', 'renewing expiry expired',
      'claiming expiry expired', 'claiming PUBLISH_FAILED claiming', 'renewing retry renewing', 'claimed RELEASE released',
      'renewing RELEASE released', 'claimed LOST lost', 'renewing LOST lost', 'claiming PUBLISHED refused',
    ]) expect(seen, edge).toContain(edge);
  });

  it('a renewal that fires after the record expired (the daemon was down) ends the name instead of renewing it', () => {
    const i = input();
    const claimed = step(nameMachine, start(nameMachine, i, i.at).snapshot, { type: 'PUBLISHED', seq: 1, at: i.at + 10 } as TimedEvent);
    const [renewal] = claimed.timers.filter((t) => t.op === 'set') as { due: number; event: { type: string } }[];
    expect(renewal!.due).toBe(i.at + i.ttlMs - i.renewBeforeMs);
    const late = step(nameMachine, claimed.snapshot, { ...renewal!.event, at: i.at + i.ttlMs });
    expect(nameStateOf(late.snapshot.value)).toBe('expired');
    expect(late.effects).toEqual([]);
  });

  it('a release withdraws every record that may still be live, and outranks them', () => {
    const i = input();
    let s = step(nameMachine, start(nameMachine, i, i.at).snapshot, { type: 'PUBLISHED', seq: 1, at: i.at } as TimedEvent);
    const renewalAt = i.at + i.ttlMs - i.renewBeforeMs;
    s = step(nameMachine, s.snapshot, { type: 'xstate.after.renewal.name.claimed', at: renewalAt });
    const [renewal] = published(s);
    // The renewal may already be stored somewhere, unconfirmed: the release lasts until it too has expired.
    const released = step(nameMachine, s.snapshot, { type: 'RELEASE', at: renewalAt + 5 });
    const [release] = published(released);
    expect(release).toEqual({ ...renewal, seq: renewal!.seq + 1, issuedAt: renewalAt + 5, expiresAt: renewal!.expiresAt, released: true });
    const records = [contextOf(s.snapshot).record!, renewal!, release!].map((r) => signName(r, owner));
    expect(nameHolder(NAME, records, renewalAt + 5)).toBeUndefined();
  });
});

// The runtime steps machines through one inert actor scope (runtime/transitions.ts); this machine uses
// enqueueActions and nested `after`s, so pin that it matches xstate's own transition() here too.
describe('name machine stepped by the runtime equals xstate transition()', () => {
  it('same snapshots, effects, timers and refusals (property)', () => {
    const timerEvents = ['expiry.name.claiming', 'retry.name.claiming.backoff', 'renewal.name.claimed', 'expiry.name.renewing', 'retry.name.renewing.backoff'];
    const anyEvent = fc.oneof(
      external.map((e) => ({ kind: 'event' as const, e })),
      fc.constantFrom(...timerEvents).map((t) => ({ kind: 'timer' as const, type: `xstate.after.${t}` })),
    );
    fc.assert(
      fc.property(fc.array(fc.record({ ev: anyEvent, delay: fc.nat(4_000) }), { maxLength: 30 }), (walk) => {
        const i = input();
        let both = startBoth(nameMachine, i, i.at);
        let at = i.at;
        for (const { ev, delay } of walk) {
          at += delay;
          const e = ev.kind === 'timer' ? { type: ev.type, at } : toEvent(ev.e, contextOf(both.ours).seq, at);
          both = stepBoth(nameMachine, both, e);
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ── Through the persisted actor ──────────────────────────────────────────────────────────────────────────

describe('name machine, persisted', () => {
  const dirs: { cleanup(): void }[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

  const settle = async (actor: PersistedActor) => {
    for (let k = 0; k < 4; k++) {
      await actor.idle();
      await new Promise((r) => setImmediate(r));
    }
  };

  function harness() {
    const dir = tempDir();
    dirs.push(dir);
    const clock = new ManualClock(T0);
    const records: NameRecordParams[] = [];
    const h = {
      clock,
      records,
      store: new EventStore(dir.path),
      reopen: async () => {
        await h.store.close();
        h.store = new EventStore(dir.path);
      },
      options: () => ({
        store: h.store,
        stream: `name/${NAME}`,
        machine: nameMachine,
        clock,
        onCrash: (e: unknown) => {
          throw e;
        },
        // The DHT put always works here: the record is confirmed.
        perform: async (effect: { type: string; params: unknown }) => {
          const { record } = effect.params as PublishRecordParams;
          records.push(record);
          return [{ type: 'PUBLISHED', seq: record.seq }];
        },
      }),
      timerRows: () => [...h.store.rows<{ due: number }>('timers', [`name/${NAME}`])].map((r) => ({ id: String(r.key[1]), due: r.value.due })),
    };
    return h;
  }

  it('persists the renewal at its absolute due time, re-arms it there after a restart, and renews at exactly that time', async () => {
    const h = harness();
    const i = input({ ttlMs: 24 * 3600_000, renewBeforeMs: 12 * 3600_000, retryMs: 60_000 });
    let actor = await PersistedActor.create(h.options(), i);
    await settle(actor);
    expect(nameStateOf(actor.snapshot.value)).toBe('claimed');
    const renewAt = T0 + 12 * 3600_000;
    expect(h.timerRows()).toEqual([{ id: 'xstate.after.renewal.name.claimed', due: renewAt }]);

    // Down for a while, then up again: the timer comes back from its row, due at the same absolute time.
    h.clock.advance(5 * 3600_000);
    await actor.stop();
    await h.reopen();
    actor = await PersistedActor.recover(h.options());
    expect(nameStateOf(actor.snapshot.value)).toBe('claimed');
    expect(h.timerRows()).toEqual([{ id: 'xstate.after.renewal.name.claimed', due: renewAt }]);
    h.clock.advance(renewAt - h.clock.now() - 1);
    await settle(actor);
    expect(nameStateOf(actor.snapshot.value)).toBe('claimed');
    expect(h.records.map((r) => r.seq)).toEqual([1]);
    h.clock.advance(1);
    await settle(actor);
    // Renewed at renewAt: seq 2, issued then, claimedAt kept; confirmed, so the next renewal is 12 h later.
    expect(nameStateOf(actor.snapshot.value)).toBe('claimed');
    expect(h.records.at(-1)).toEqual({ name: NAME, did: owner.did, claimedAt: T0, issuedAt: renewAt, expiresAt: renewAt + 24 * 3600_000, seq: 2, released: false });
    expect(h.timerRows()).toEqual([{ id: 'xstate.after.renewal.name.claimed', due: renewAt + 12 * 3600_000 }]);
    // The log alone gives the same state.
    expect(contextOf(foldStream(h.store, `name/${NAME}`, nameMachine).snapshot!)).toEqual(contextOf(actor.snapshot));
    await settle(actor);
    await actor.stop();
    await h.store.close();
  });

  it('a daemon down past its name\'s expiry finds it expired on restart, and publishes nothing', async () => {
    const h = harness();
    const i = input({ ttlMs: 24 * 3600_000, renewBeforeMs: 12 * 3600_000, retryMs: 60_000 });
    let actor = await PersistedActor.create(h.options(), i);
    await settle(actor);
    await actor.stop();
    await h.reopen();
    h.clock.advance(30 * 3600_000); // nothing runs while the daemon is down
    actor = await PersistedActor.recover(h.options());
    h.clock.advance(0); // the overdue renewal fires at once
    await settle(actor);
    expect(nameStateOf(actor.snapshot.value)).toBe('expired');
    expect(actor.done).toBe(true);
    expect(h.records.map((r) => r.seq)).toEqual([1]);
    expect(h.timerRows()).toEqual([]);
    await actor.stop();
    await h.store.close();
  });

  it('a retry interrupted by a restart fires at its persisted time, republishing the same record', async () => {
    const h = harness();
    let fail = true;
    const options = () => ({
      ...h.options(),
      perform: async (effect: { type: string; params: unknown }) => {
        const { record } = effect.params as PublishRecordParams;
        h.records.push(record);
        return [fail ? { type: 'PUBLISH_FAILED', seq: record.seq, error: 'no peers' } : { type: 'PUBLISHED', seq: record.seq }];
      },
    });
    let actor = await PersistedActor.create(options(), input());
    await settle(actor);
    expect(actor.snapshot.value).toEqual({ claiming: 'backoff' });
    expect(h.timerRows().sort((a, b) => a.due - b.due)).toEqual([
      { id: 'xstate.after.retry.name.claiming.backoff', due: T0 + 1_000 },
      { id: 'xstate.after.expiry.name.claiming', due: T0 + 10_000 },
    ]);
    h.clock.advance(600);
    await actor.stop();
    await h.reopen();
    fail = false;
    actor = await PersistedActor.recover(options());
    h.clock.advance(399);
    await settle(actor);
    expect(h.records).toHaveLength(1);
    h.clock.advance(1);
    await settle(actor);
    expect(nameStateOf(actor.snapshot.value)).toBe('claimed');
    expect(h.records).toHaveLength(2);
    expect(h.records[1]).toEqual(h.records[0]); // the same record, republished
    expect(h.timerRows()).toEqual([{ id: 'xstate.after.renewal.name.claimed', due: T0 + 10_000 - 4_000 }]);
    await actor.stop();
    await h.store.close();
  });
});
