// The outbox actor: one supervised outbox-delivery machine per outgoing message, on stream `outbox/<id>`.
//
// It gives the machine's one effect, `deliver`, its meaning (sign an envelope, send it, await the signed
// acknowledgement), turns "a peer connected" into PEER_CONNECTED for the messages waiting on it, and
// evicts a delivery from memory once it reaches a final state (its log and snapshot stay on disk).
import type { AnyEventObject, AnyMachineSnapshot } from 'xstate';
import type { Clock, Random } from '../../runtime/clock.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import { foldStream, PersistedActor } from '../../runtime/persisted-actor.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import type { Effect } from '../../runtime/transitions.ts';
import {
  outboxDelivery,
  outboxStateOf,
  type DeliverParams,
  type OutboxDeliveryContext,
  type OutboxDeliveryInput,
} from '../../machines/outbox-delivery.ts';
import type { OutboxEntry } from '../grpc/node-api.ts';
import { MESSAGE_ENVELOPE, type MessagePayload } from './protocol.ts';

export const OUTBOX_PREFIX = 'outbox/';
/** The counter group of outbox deliveries by state. */
const OUTBOX_COUNTS = 'outbox';

/** What the outbox needs from the transport. */
export interface EnvelopeSender {
  request(toDid: string, type: string, payload: unknown, options: { timeoutMs: number }): Promise<{ payload: unknown }>;
}

export interface OutboxOptions {
  store: EventStore;
  clock: Clock;
  random: Random;
  transport: EnvelopeSender;
  supervisor: Supervisor;
  /** How long one delivery attempt may take (dial + request + durable append on the other side). */
  attemptTimeoutMs?: number;
}

export class Outbox {
  readonly #o: OutboxOptions;
  readonly #live = new Map<string, PersistedActor>();

  constructor(options: OutboxOptions) {
    this.#o = options;
  }

  /** Resume every delivery that has not reached a final state. */
  async start(): Promise<void> {
    for (const stream of [...this.#o.store.liveStreams(OUTBOX_PREFIX)]) {
      await this.#supervise(stream.slice(OUTBOX_PREFIX.length));
    }
  }

  /** Durably queue a message and start delivering it. Resolves once the message is in the log. */
  async enqueue(input: Omit<OutboxDeliveryInput, 'createdAt'>): Promise<PersistedActor> {
    // The actor exists before its supervisor does; crashes in between are forwarded once it is supervised.
    let reportCrash: (e: unknown) => void = () => undefined;
    const actor = await PersistedActor.create(
      this.#actorOptions(input.id, (e) => reportCrash(e)),
      { ...input, createdAt: this.#o.clock.now() },
      [{ type: 'SEND' }],
    );
    await this.#supervise(input.id, actor, (crash) => (reportCrash = crash));
    return actor;
  }

  /** A peer came online: retry what waits for it now, not at the end of its back-off. */
  peerConnected(did: string): void {
    for (const actor of this.#live.values()) {
      const ctx = actor.snapshot.context as OutboxDeliveryContext;
      if (ctx.to === did) actor.send({ type: 'PEER_CONNECTED' }).catch(() => undefined);
    }
  }

  list(filter: { id?: string; to?: string; pendingOnly?: boolean; limit?: number }): OutboxEntry[] {
    const streams = filter.id
      ? [OUTBOX_PREFIX + filter.id]
      : filter.pendingOnly ? [...this.#o.store.liveStreams(OUTBOX_PREFIX)] : this.#o.store.listStreams(OUTBOX_PREFIX);
    const out: OutboxEntry[] = [];
    for (const stream of streams) {
      const id = stream.slice(OUTBOX_PREFIX.length);
      const snapshot = this.#live.get(id)?.snapshot ?? foldStream(this.#o.store, stream, outboxDelivery).snapshot;
      if (!snapshot) continue;
      const ctx = snapshot.context as OutboxDeliveryContext;
      if (filter.to && ctx.to !== filter.to) continue;
      const state = outboxStateOf(snapshot.value);
      if (filter.pendingOnly && snapshot.status === 'done') continue;
      out.push({
        id: ctx.id,
        to: ctx.to,
        state,
        attempts: ctx.attempts,
        createdAt: ctx.createdAt,
        nextAttemptAt: state === 'retrying' ? ctx.nextAttemptAt : null,
        deliveredAt: ctx.deliveredAt,
        lastError: ctx.lastError,
        expiresAt: ctx.createdAt + ctx.ttlMs,
      });
      if (filter.limit && out.length >= filter.limit) break;
    }
    return out;
  }

  /** Deliveries by state, from the counters kept with every transition (no stream is visited). */
  counts(): Record<OutboxEntry['state'], number> {
    return { queued: 0, sending: 0, retrying: 0, delivered: 0, expired: 0, rejected: 0, failed: 0, ...this.#o.store.counts(OUTBOX_COUNTS) };
  }

  async #supervise(id: string, created?: PersistedActor, bindCrash?: (crash: (e: unknown) => void) => void): Promise<void> {
    let first = created;
    await this.#o.supervisor.startChild({
      id,
      onFailed: (reason) => this.#markFailed(id, reason),
      start: async (crash) => {
        const actor = first ?? (await PersistedActor.recover(this.#actorOptions(id, crash)));
        if (first) bindCrash?.(crash);
        first = undefined;
        this.#track(id, actor);
        return { stop: () => this.#untrack(id, actor) };
      },
    });
  }

  /**
   * Past its crash budget the delivery's actor is stopped for good, so the FAIL event is settled on its stream
   * without it (the runtime retires its effects and timers in the same transaction): the failure is durable and
   * a restart does not resume the delivery.
   */
  async #markFailed(id: string, reason: string): Promise<void> {
    this.#live.delete(id);
    await PersistedActor.settle(this.#actorOptions(id, () => undefined), { type: 'FAIL', reason });
  }

  #track(id: string, actor: PersistedActor): void {
    this.#live.set(id, actor);
    // Deferred, so every listener of the final transition (e.g. a waiting SendMessage) still sees it.
    const evictWhenDone = () => {
      if (actor.done) queueMicrotask(() => void this.#o.supervisor.stopChild(id));
    };
    actor.subscribe(evictWhenDone);
    evictWhenDone();
  }

  async #untrack(id: string, actor: PersistedActor): Promise<void> {
    if (this.#live.get(id) === actor) this.#live.delete(id);
    await actor.stop();
  }

  #actorOptions(id: string, onCrash: (e: unknown) => void) {
    return {
      store: this.#o.store,
      stream: OUTBOX_PREFIX + id,
      machine: outboxDelivery,
      clock: this.#o.clock,
      onCrash,
      perform: (effect: Effect) => this.#perform(effect),
      count: { group: OUTBOX_COUNTS, label: (s: AnyMachineSnapshot) => outboxStateOf(s.value) },
    };
  }

  async #perform(effect: Effect): Promise<AnyEventObject[]> {
    if (effect.type !== 'deliver') throw new Error(`outbox: unknown effect ${effect.type}`);
    const p = effect.params as DeliverParams;
    const failed = (error: string) => [{ type: 'DELIVERY_FAILED', attempt: p.attempt, error, jitter: this.#o.random() }];
    const payload: MessagePayload = { id: p.id, ...p.content, sentAt: p.createdAt };
    try {
      const reply = await this.#o.transport.request(p.to, MESSAGE_ENVELOPE, payload, {
        timeoutMs: this.#o.attemptTimeoutMs ?? 10_000,
      });
      const ack = reply.payload as { id?: unknown; error?: unknown; permanent?: unknown };
      if (ack?.id === p.id) return [{ type: 'DELIVERED', attempt: p.attempt }];
      // The peer's words go into our log: a short string only.
      const why = typeof ack?.error === 'string' ? ack.error.slice(0, 500) : 'peer did not acknowledge the message';
      if (ack?.permanent === true) return [{ type: 'DELIVERY_REJECTED', attempt: p.attempt, error: `refused by the receiver: ${why}` }];
      return failed(why);
    } catch (err) {
      return failed((err instanceof Error ? err.message : String(err)).slice(0, 500));
    }
  }
}
