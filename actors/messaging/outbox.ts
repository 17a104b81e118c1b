// The outbox actor: one supervised outbox-delivery machine per outgoing message, on stream `<prefix><id>`.
//
// It gives the machine's one effect, `deliver`, its meaning (sign an envelope, send it, await the signed
// acknowledgement), turns "a peer connected" into PEER_CONNECTED for the messages waiting on it, and
// evicts a delivery from memory once it reaches a final state (its log and snapshot stay on disk).
// What travels, and what the reply means, is its `DeliveryKind`: users' messages (the default) or task
// transitions (actors/tasks), each in an outbox of its own.
import type { AnyEventObject, AnyMachineSnapshot } from 'xstate';
import type { Clock, Random } from '../../runtime/clock.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import { foldStream, PersistedActor } from '../../runtime/persisted-actor.ts';
import type { Supervisor } from '../../runtime/supervisor.ts';
import { SupervisedActors } from '../../runtime/supervised-actors.ts';
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

/** What one outbox delivers: its streams, the request an attempt sends, and how to read the receiver's reply. */
export interface DeliveryKind {
  /** Stream prefix of its deliveries (`outbox/`); without the slash, the group of its per-state counters. */
  prefix: string;
  request(p: DeliverParams): { type: string; payload: unknown };
  /** true: the receiver has it durably. Otherwise why not, and whether retrying can help. */
  reply(payload: unknown, p: DeliverParams): true | { error: string; permanent: boolean };
}

/** Users' messages: a `message` envelope, acknowledged with the message id once it is in the receiver's inbox. */
export const MESSAGE_DELIVERY: DeliveryKind = {
  prefix: OUTBOX_PREFIX,
  request: (p) => ({ type: MESSAGE_ENVELOPE, payload: { id: p.id, ...(p.content as object), sentAt: p.createdAt } satisfies Partial<MessagePayload> }),
  reply: (payload, p) => {
    const ack = payload as { id?: unknown; error?: unknown; permanent?: unknown } | undefined;
    if (ack?.id === p.id) return true;
    // The peer's words go into our log: a short string only.
    const error = typeof ack?.error === 'string' ? ack.error.slice(0, 500) : 'peer did not acknowledge the message';
    return { error, permanent: ack?.permanent === true };
  },
};

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
  /** What this outbox delivers; users' messages by default. */
  kind?: DeliveryKind;
  /** A delivery reached `delivered` (the receiver acknowledged it), after its append. */
  onDelivered?(delivery: OutboxDeliveryContext): void;
}

export class Outbox {
  readonly #o: OutboxOptions;
  readonly #kind: DeliveryKind;
  readonly #counts: string;
  /** One actor per unfinished delivery; a finished one leaves memory (its log and snapshot stay on disk). */
  readonly #live: SupervisedActors;

  constructor(options: OutboxOptions) {
    this.#o = options;
    this.#kind = options.kind ?? MESSAGE_DELIVERY;
    this.#counts = this.#kind.prefix.replace(/\/$/, '');
    this.#live = new SupervisedActors({
      supervisor: options.supervisor,
      actorOptions: (id, onCrash) => this.#actorOptions(id, onCrash),
      onFailed: (id, reason) => this.#markFailed(id, reason),
      onTransition: (_id, _actor, t) => {
        if (this.#o.onDelivered && outboxStateOf(t.snapshot.value) === 'delivered') this.#o.onDelivered(t.snapshot.context as OutboxDeliveryContext);
      },
    });
  }

  /** Resume every delivery that has not reached a final state. */
  async start(): Promise<void> {
    for (const stream of [...this.#o.store.liveStreams(this.#kind.prefix)]) {
      await this.#live.resume(stream.slice(this.#kind.prefix.length));
    }
  }

  /** Durably queue a message and start delivering it. Resolves once the message is in the log. */
  enqueue(input: Omit<OutboxDeliveryInput, 'createdAt'>): Promise<PersistedActor> {
    return this.#live.create(input.id, { ...input, createdAt: this.#o.clock.now() }, [{ type: 'SEND' }]);
  }

  /**
   * One attempt outside any delivery: nothing is written. For a caller whose own log already holds the intent
   * (a task's transition, until its effect is acknowledged), trying once before queueing saves the delivery's
   * commits when the peer is there; if it is not, the caller enqueues.
   */
  async attempt(to: string, content: unknown, timeoutMs: number): Promise<true | { error: string; permanent: boolean }> {
    const p: DeliverParams = { id: '', to, content, createdAt: this.#o.clock.now(), attempt: 0 };
    const { type, payload } = this.#kind.request(p);
    try {
      const reply = await this.#o.transport.request(to, type, payload, { timeoutMs });
      return this.#kind.reply(reply.payload, p);
    } catch (err) {
      return { error: (err instanceof Error ? err.message : String(err)).slice(0, 500), permanent: false };
    }
  }

  /** A peer came online: retry what waits for it now, not at the end of its back-off. */
  peerConnected(did: string): void {
    for (const [, actor] of this.#live.entries()) {
      const ctx = actor.snapshot.context as OutboxDeliveryContext;
      if (ctx.to === did) actor.send({ type: 'PEER_CONNECTED' }).catch(() => undefined);
    }
  }

  list(filter: { id?: string; to?: string; pendingOnly?: boolean; limit?: number }): OutboxEntry[] {
    const streams = filter.id
      ? [this.#kind.prefix + filter.id]
      : filter.pendingOnly ? [...this.#o.store.liveStreams(this.#kind.prefix)] : this.#o.store.listStreams(this.#kind.prefix);
    const out: OutboxEntry[] = [];
    for (const stream of streams) {
      const id = stream.slice(this.#kind.prefix.length);
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
    return { queued: 0, sending: 0, retrying: 0, delivered: 0, expired: 0, rejected: 0, failed: 0, ...this.#o.store.counts(this.#counts) };
  }

  /**
   * Past its crash budget the delivery's actor is stopped for good, so the FAIL event is settled on its stream
   * without it (the runtime retires its effects and timers in the same transaction): the failure is durable and
   * a restart does not resume the delivery.
   */
  async #markFailed(id: string, reason: string): Promise<void> {
    await PersistedActor.settle(this.#actorOptions(id, () => undefined), { type: 'FAIL', reason });
  }

  #actorOptions(id: string, onCrash: (e: unknown) => void) {
    return {
      store: this.#o.store,
      stream: this.#kind.prefix + id,
      machine: outboxDelivery,
      clock: this.#o.clock,
      onCrash,
      perform: (effect: Effect) => this.#perform(effect),
      count: { group: this.#counts, label: (s: AnyMachineSnapshot) => outboxStateOf(s.value) },
    };
  }

  async #perform(effect: Effect): Promise<AnyEventObject[]> {
    if (effect.type !== 'deliver') throw new Error(`outbox: unknown effect ${effect.type}`);
    const p = effect.params as DeliverParams;
    const failed = (error: string) => [{ type: 'DELIVERY_FAILED', attempt: p.attempt, error, jitter: this.#o.random() }];
    const { type, payload } = this.#kind.request(p);
    try {
      const reply = await this.#o.transport.request(p.to, type, payload, { timeoutMs: this.#o.attemptTimeoutMs ?? 10_000 });
      const outcome = this.#kind.reply(reply.payload, p);
      if (outcome === true) return [{ type: 'DELIVERED', attempt: p.attempt }];
      if (outcome.permanent) return [{ type: 'DELIVERY_REJECTED', attempt: p.attempt, error: `refused by the receiver: ${outcome.error}` }];
      return failed(outcome.error);
    } catch (err) {
      return failed((err instanceof Error ? err.message : String(err)).slice(0, 500));
    }
  }
}
