// Model-based property: whatever the order of sends, crashes (of either side), network failures and lost
// acknowledgements, every message the outbox accepted ends up in the receiver's inbox exactly once.
// Both sides use the real actors on real LMDB stores; only the wire between them is simulated, so failures
// can be injected at exact points.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EventStore } from '../../runtime/event-store.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import { Inbox, INBOX_STREAM } from '../../actors/messaging/inbox.ts';
import { Outbox, type EnvelopeSender } from '../../actors/messaging/outbox.ts';
import { parseMessagePayload } from '../../actors/messaging/protocol.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { tempDir } from '../support/temp-dir.ts';

const FROM = 'did:key:z6MkSender';
const TO = 'did:key:z6MkReceiver';

type Command =
  | { kind: 'send' }
  | { kind: 'network'; up: boolean }
  | { kind: 'loseAcks'; on: boolean }
  | { kind: 'crashSender' }
  | { kind: 'crashReceiver' }
  | { kind: 'advance'; ms: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'send' as const }) },
  { weight: 2, arbitrary: fc.boolean().map((up) => ({ kind: 'network' as const, up })) },
  { weight: 1, arbitrary: fc.boolean().map((on) => ({ kind: 'loseAcks' as const, on })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'crashSender' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'crashReceiver' as const }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 20_000 }).map((ms) => ({ kind: 'advance' as const, ms })) },
);

const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

class World {
  clock = new ManualClock();
  senderDir = tempDir();
  receiverDir = tempDir();
  senderStore = new EventStore(this.senderDir.path);
  receiverStore = new EventStore(this.receiverDir.path);
  inbox = new Inbox(this.receiverStore, this.clock);
  networkUp = true;
  loseAcks = false;
  inFlight = new Set<Promise<unknown>>();
  accepted: string[] = [];
  outbox!: Outbox;
  supervisor!: Supervisor;
  #n = 0;

  constructor() {
    dirs.push(this.senderDir, this.receiverDir);
  }

  wire: EnvelopeSender = {
    request: (_to, _type, payload) => {
      const p = (async () => {
        await new Promise((r) => setImmediate(r));
        if (!this.networkUp) throw new Error('peer unreachable');
        const m = parseMessagePayload(payload);
        await this.inbox.receive({ ...m, from: FROM, to: TO });
        if (this.loseAcks) throw new Error('connection reset before the ack');
        return { payload: { id: m.id } };
      })();
      this.inFlight.add(p);
      p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
      return p;
    },
  };

  async startSender() {
    this.supervisor = new Supervisor('outbox', { clock: this.clock });
    this.outbox = new Outbox({ store: this.senderStore, clock: this.clock, random: () => 0.5, transport: this.wire, supervisor: this.supervisor });
    await this.outbox.start();
  }

  async run(c: Command) {
    switch (c.kind) {
      case 'send': {
        const id = `msg_01JX${String(this.#n++).padStart(22, '0')}`;
        await this.outbox.enqueue({
          id, from: FROM, to: TO, content: { text: `m${id}`, data: new Uint8Array(), contentType: 'text/plain' },
          ttlMs: 24 * 3600_000, retryInitialMs: 1000, retryMaxMs: 8000,
        });
        this.accepted.push(id);
        break;
      }
      case 'network':
        this.networkUp = c.up;
        if (c.up) this.outbox.peerConnected(TO);
        break;
      case 'loseAcks':
        this.loseAcks = c.on;
        break;
      case 'crashSender':
        // Abandon every in-memory actor mid-flight; only what is on disk survives.
        await this.supervisor.stop();
        await this.senderStore.close();
        this.senderStore = new EventStore(this.senderDir.path);
        await this.startSender();
        break;
      case 'crashReceiver':
        await this.idle();
        await this.receiverStore.close();
        this.receiverStore = new EventStore(this.receiverDir.path);
        this.inbox = new Inbox(this.receiverStore, this.clock);
        break;
      case 'advance':
        this.clock.advance(c.ms);
        break;
    }
    await this.idle();
  }

  /** Wait until no delivery is on the wire and the results have been appended. */
  async idle() {
    for (let i = 0; i < 3; i++) {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  receivedCount(id: string): number {
    let n = 0;
    for (const e of this.receiverStore.read(INBOX_STREAM)) if (e.type === 'received' && (e.data as { id: string }).id === id) n++;
    return n;
  }

  async close() {
    await this.supervisor.stop();
    await this.senderStore.close();
    await this.receiverStore.close();
  }
}

describe('outbox → inbox under crashes and failures', () => {
  it('every accepted message is delivered exactly once (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (commands) => {
        const w = new World();
        await w.startSender();
        try {
          for (const c of commands) await w.run(c);
          // Heal everything, then let back-off run its course.
          w.networkUp = true;
          w.loseAcks = false;
          w.outbox.peerConnected(TO);
          await w.idle();
          for (let i = 0; i < 20 && w.outbox.list({ pendingOnly: true }).length > 0; i++) await w.run({ kind: 'advance', ms: 10_000 });
          expect(w.outbox.list({ pendingOnly: true })).toEqual([]);
          for (const id of w.accepted) expect(w.receivedCount(id), id).toBe(1);
          expect(w.inbox.counts().total).toBe(w.accepted.length);
          // The counters kept with every transition agree with folding every stream. (An acknowledgement's
          // commit may still be landing: the two views agree once the store is quiet.)
          const folded = () => {
            const out: Record<string, number> = { queued: 0, sending: 0, retrying: 0, delivered: 0, expired: 0, rejected: 0, failed: 0 };
            for (const e of w.outbox.list({})) out[e.state]! += 1;
            return out;
          };
          for (let i = 0; i < 20 && JSON.stringify(w.outbox.counts()) !== JSON.stringify(folded()); i++) await w.idle();
          expect(w.outbox.counts()).toEqual(folded());
        } finally {
          await w.close();
        }
      }),
      { numRuns: 60 },
    );
  }, 120_000);
});

describe('a delivery that crashes past its budget', () => {
  it('is marked failed durably, with the reason, and not resumed after a restart', async () => {
    const w = new World();
    w.networkUp = false;
    // A shell bug stands in for any crash: drawing the jitter for a failed attempt throws.
    const supervisor = new Supervisor('outbox', { clock: w.clock });
    const broken = new Outbox({ store: w.senderStore, clock: w.clock, random: () => { throw new Error('no entropy'); }, transport: w.wire, supervisor });
    await broken.enqueue({
      id: 'msg_01JX0000000000000000000009', from: FROM, to: TO, content: { text: 'x', data: new Uint8Array(), contentType: 'text/plain' },
      ttlMs: 3600_000, retryInitialMs: 1000, retryMaxMs: 8000,
    });
    for (let i = 0; i < 50 && broken.list({})[0]?.state !== 'failed'; i++) await w.idle();
    const [entry] = broken.list({});
    expect(entry).toMatchObject({ state: 'failed', lastError: expect.stringContaining('no entropy') });
    expect(supervisor.tree().children[0]).toMatchObject({ status: 'failed', restarts: 3 });
    await supervisor.stop();
    // After a restart the failure is still there and nothing is retried.
    w.supervisor = new Supervisor('outbox', { clock: w.clock });
    const again = new Outbox({ store: w.senderStore, clock: w.clock, random: () => 0.5, transport: w.wire, supervisor: w.supervisor });
    await again.start();
    expect(again.list({})[0]?.state).toBe('failed');
    expect(again.counts()).toMatchObject({ failed: 1, sending: 0, retrying: 0 });
    const stream = 'outbox/msg_01JX0000000000000000000009';
    expect([...w.senderStore.rows('effects', [stream])]).toEqual([]);
    expect([...w.senderStore.rows('timers', [stream])]).toEqual([]);
    expect([...w.senderStore.liveStreams('outbox/')]).toEqual([]);
    expect(w.supervisor.tree().children).toEqual([]);
    await w.senderStore.close();
    await w.receiverStore.close();
  });
});
