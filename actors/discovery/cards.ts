// The cards actor: this daemon's own Agent Card in the mesh, and other agents' cards found by DID or capability.
//
// Our card. Built from moltbook.toml [agent] (PublishCard's fields override it, durably), our listen addresses and
// the name we hold. Every version is appended to the `card` stream *before* it is signed and put, so its seq is
// never reused — a restart continues from the log, and the newest card always outranks what it replaces. Published
// on start, whenever it changes, and again halfway through its lifetime; stored under the DID's key and provided
// under each capability's key (dht.ts). Withdrawing puts a tombstone — a newer card with no capabilities and no
// addresses that outlives every earlier one — and stops providing.
//
// Others' cards. Every card returned is verified (records.ts verifyCard: signature, the DID asked for, not expired,
// within limits) and, for FindAgents, must list the capability searched for: a provider record is only a hint.
// A card comes from its owner over a direct request when we can reach the owner (fastest, and the owner always
// has its newest), else from the DHT, where the selector keeps the newest valid record.
import { ApiError, notFound } from '../../runtime/errors.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { EventStore, StoredEvent } from '../../runtime/event-store.ts';
import type { Logger } from '../../runtime/log.ts';
import { KeyedSerial } from '../../runtime/keyed-serial.ts';
import { capabilityId } from '../capability.ts';
import { didFromPeerId, peerIdFromDid } from '../identity/did.ts';
import type { Transport } from '../transport/transport.ts';
import { capabilityCid, cardKey, selectCard } from './dht.ts';
import { RESOLVE_QUORUM, type MeshDht, type Provider, type Spreader } from './mesh-dht.ts';
import { CARD_LIMITS, CARD_TTL_MS, signCard, verifyCard, type CardContent, type Signer, type SignedCard, type Skill } from './records.ts';

export const CARD_STREAM = 'card';
export const CARD_ENVELOPE = 'card.get';
export const PROTOCOL_VERSION = 'a2a:v1';

/** What PublishCard may set; anything absent comes from moltbook.toml [agent]. */
export interface CardOverrides {
  /** A name this daemon holds ('' to show none). */
  name?: string;
  description?: string;
  capabilities?: string[];
  skills?: Skill[];
}

export interface CardsOptions {
  identity: Signer;
  store: EventStore;
  clock: Clock;
  transport: Transport;
  dht: MeshDht;
  spreader: Spreader;
  /** moltbook.toml [agent]. */
  agent: { description: string; capabilities: string[] };
  /** The names this daemon holds now, its first claim first. */
  heldNames(): string[];
  log: Logger;
  /** A card's lifetime; republished halfway through. */
  ttlMs?: number;
}

type CardEvent =
  | { type: 'PUBLISHED'; data: { card: CardContent; overrides: CardOverrides } }
  | { type: 'WITHDRAWN'; data: { card: CardContent; overrides: CardOverrides } };

/** A tombstone: what WithdrawCard leaves in the mesh. */
export function isWithdrawn(card: CardContent): boolean {
  return card.capabilities.length === 0 && card.addresses.length === 0;
}

export class Cards {
  readonly #o: CardsOptions;
  readonly #ttlMs: number;
  #overrides: CardOverrides = {};
  #card: CardContent | undefined;
  #bytes: Uint8Array | undefined;
  #withdrawn = false;
  #republish: unknown;
  /** Card changes run one at a time: each new version counts its seq on from the last. */
  readonly #serial = new KeyedSerial();

  constructor(options: CardsOptions) {
    this.#o = options;
    this.#ttlMs = options.ttlMs ?? CARD_TTL_MS;
    options.transport.handle(CARD_ENVELOPE, async () => ({ type: 'card', payload: this.#withdrawn ? null : (this.#bytes ?? null) }));
  }

  /** Recover our card from the log, then publish it (our addresses may have changed) unless it was withdrawn. */
  async start(): Promise<void> {
    const last = lastEvent(this.#o.store, CARD_STREAM) as CardEvent | undefined;
    if (last) {
      this.#overrides = last.data.overrides;
      this.#card = last.data.card;
      this.#withdrawn = last.type === 'WITHDRAWN';
    }
    if (!this.#withdrawn) await this.publish();
  }

  stop(): void {
    this.#o.clock.clearTimeout(this.#republish);
  }

  /** Our card as published, or undefined when withdrawn or never published. */
  own(): SignedCard | undefined {
    return this.#withdrawn || !this.#bytes ? undefined : verifyCard(this.#bytes, { now: this.#o.clock.now() });
  }

  /** Publish a new version of our card, with `overrides` (merged into those given before) when given. */
  publish(overrides?: CardOverrides): Promise<SignedCard> {
    return this.#serial.run(CARD_STREAM, async () => {
      const merged = { ...this.#overrides, ...(overrides ?? {}) };
      if (merged.name && !this.#o.heldNames().includes(merged.name)) {
        throw new ApiError('FAILED_PRECONDITION', `this daemon does not hold the name ${JSON.stringify(merged.name)}; claim it first (moltmesh-daemon name claim ${merged.name.split('-').join(' ')})`, 'name');
      }
      const content = this.#content(merged);
      const bytes = await this.#commit('PUBLISHED', content, merged);
      this.#spread(bytes, content.capabilities, content.seq);
      return verifyCard(bytes, { now: this.#o.clock.now() });
    });
  }

  /** Publish again if what the card would say now differs (a name claimed or lost). */
  refresh(): Promise<void> {
    return this.#serial.run(CARD_STREAM, async () => {
      if (this.#withdrawn || !this.#card) return;
      const next = this.#content(this.#overrides);
      if (sameClaims(next, this.#card)) return;
      const bytes = await this.#commit('PUBLISHED', next, this.#overrides);
      this.#spread(bytes, next.capabilities, next.seq);
    }).catch((err) => this.#o.log('warn', 'could not republish our card', { error: String(err) }));
  }

  /** Replace our card with a tombstone and stop providing its capabilities. */
  withdraw(): Promise<void> {
    return this.#serial.run(CARD_STREAM, async () => {
      const now = this.#o.clock.now();
      const previous = this.#card;
      for (const cap of previous?.capabilities ?? []) await this.#o.dht.cancelProvide(capabilityCid(cap));
      const tombstone: CardContent = {
        did: this.#o.identity.did, name: '', description: '', capabilities: [], skills: [], addresses: [],
        protocolVersion: PROTOCOL_VERSION, issuedAt: now,
        // Outlives every card of ours that may still be live, so the selector prefers it to each of them.
        expiresAt: Math.max(previous?.expiresAt ?? 0, now + 60_000),
        seq: (previous?.seq ?? 0) + 1,
      };
      const bytes = await this.#commit('WITHDRAWN', tombstone, this.#overrides);
      this.#spread(bytes, [], tombstone.seq);
    });
  }

  /** The verified card of `did`: NOT_FOUND when the mesh holds none (or only a withdrawn one). */
  async get(did: string, signal?: AbortSignal): Promise<SignedCard> {
    peerIdFromDid(did, 'did');
    if (did === this.#o.identity.did) {
      const own = this.own();
      if (!own) throw notFound(`card of ${did} (ours is withdrawn)`);
      return own;
    }
    const card = await this.#fetch(did, { direct: this.#o.transport.isConnected(did), ...(signal ? { signal } : {}) });
    if (!card || isWithdrawn(card)) throw notFound(`card of ${did}${card ? ' (withdrawn)' : ''}`);
    return card;
  }

  /**
   * Verified cards of agents offering `capability`, each as soon as it is found and checked, until `limit`
   * cards, the search's end, `timeoutMs`, or `signal`.
   */
  async *find(capability: string, options: { limit: number; timeoutMs: number; signal?: AbortSignal }): AsyncGenerator<SignedCard> {
    const cap = capabilityId('capability', capability);
    const done = new AbortController();
    const stop = AbortSignal.any([done.signal, AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])]);
    const ready: SignedCard[] = [];
    let searching = true;
    let fetching = 0;
    let wake: (() => void) | undefined;
    const notify = () => { wake?.(); wake = undefined; };
    stop.addEventListener('abort', notify, { once: true });

    void (async () => {
      for await (const provider of this.#o.dht.providers(capabilityCid(cap), stop)) {
        fetching++;
        void this.#cardOf(provider, stop)
          .then((card) => { if (card && !isWithdrawn(card) && card.capabilities.includes(cap)) ready.push(card); }, () => undefined)
          .finally(() => { fetching--; notify(); });
      }
    })().catch((err) => this.#o.log('debug', 'provider search failed', { capability: cap, error: String(err) }))
      .finally(() => { searching = false; notify(); });

    try {
      for (let sent = 0; sent < options.limit;) {
        const card = ready.shift();
        if (card) {
          yield card;
          sent++;
          continue;
        }
        if (stop.aborted || (!searching && fetching === 0)) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      done.abort();
    }
  }

  async #cardOf(provider: Provider, signal: AbortSignal): Promise<SignedCard | undefined> {
    const did = didFromPeerId(provider.id);
    if (did === this.#o.identity.did) return this.own();
    if (provider.multiaddrs.length > 0) {
      await this.#o.transport.libp2p.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => undefined);
    }
    return this.#fetch(did, { direct: true, signal });
  }

  /**
   * The card of `did`, verified now: from its owner (when `direct`; no cache, so a changed card shows at once),
   * else from the DHT. Undefined when none is found or valid.
   */
  async #fetch(did: string, options: { direct: boolean; signal?: AbortSignal }): Promise<SignedCard | undefined> {
    const bytes = (options.direct ? await this.#fromOwner(did, options.signal).catch(() => undefined) : undefined) ??
      (await this.#fromDht(did, options.signal));
    return bytes && this.#verified(did, bytes);
  }

  #verified(did: string, bytes: Uint8Array): SignedCard | undefined {
    try {
      return verifyCard(bytes, { expectedDid: did, now: this.#o.clock.now() });
    } catch {
      return undefined;
    }
  }

  /** The owner's current card bytes, asked directly; undefined when it has none (or answers with an invalid one). */
  async #fromOwner(did: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const reply = await this.#o.transport.request(did, CARD_ENVELOPE, null, { timeoutMs: 3_000, ...(signal ? { signal } : {}) });
    if (!(reply.payload instanceof Uint8Array)) return undefined;
    return this.#verified(did, reply.payload) && reply.payload;
  }

  /** The bytes of the card the selector prefers among what the DHT holds for `did`. */
  async #fromDht(did: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const records = await this.#o.dht.records(cardKey(did), { ...(signal ? { signal } : {}), quorum: RESOLVE_QUORUM });
    try {
      return records[selectCard(did, records, this.#o.clock.now())];
    } catch {
      return undefined; // none valid
    }
  }

  #content(o: CardOverrides): CardContent {
    const now = this.#o.clock.now();
    const held = this.#o.heldNames();
    const skills = o.skills ?? [];
    const capabilities = [...new Set([...(o.capabilities ?? this.#o.agent.capabilities), ...skills.map((s) => s.id)].map((c) => capabilityId('capabilities', c)))];
    return {
      did: this.#o.identity.did,
      name: o.name !== undefined && (o.name === '' || held.includes(o.name)) ? o.name : (held[0] ?? ''),
      description: o.description ?? this.#o.agent.description,
      capabilities,
      skills,
      // Our own listen addresses, public ones first (the transport sorts them); the card holds a bounded number.
      addresses: this.#o.transport.addresses().slice(0, CARD_LIMITS.addresses),
      protocolVersion: PROTOCOL_VERSION,
      issuedAt: now,
      expiresAt: now + this.#ttlMs,
      seq: (this.#card?.seq ?? 0) + 1,
    };
  }

  /** Sign (checking it as verifiers will), append, then make it ours. The republish timer follows the newest card. */
  async #commit(type: CardEvent['type'], content: CardContent, overrides: CardOverrides): Promise<Uint8Array> {
    const bytes = signCard(content, this.#o.identity);
    await this.#o.store.append(CARD_STREAM, [{ type, at: content.issuedAt, data: { card: content, overrides } }]);
    this.#card = content;
    this.#bytes = bytes;
    this.#overrides = overrides;
    this.#withdrawn = type === 'WITHDRAWN';
    this.#o.clock.clearTimeout(this.#republish);
    if (!this.#withdrawn) {
      this.#republish = this.#o.clock.setTimeout(() => void this.publish().catch((err) => this.#o.log('warn', 'card republish failed', { error: String(err) })), this.#ttlMs / 2);
    }
    return bytes;
  }

  #spread(bytes: Uint8Array, capabilities: string[], seq: number): void {
    const did = this.#o.identity.did;
    this.#o.spreader.spread(`card/${did}`, async () => {
      const reached = await this.#o.dht.put(cardKey(did), bytes, AbortSignal.timeout(30_000));
      // Provider records after the card, so a searcher who finds us finds the card too.
      await Promise.all(capabilities.map((cap) => this.#o.dht.provide(capabilityCid(cap), AbortSignal.timeout(30_000))));
      this.#o.log('debug', 'card published', { seq, peers: reached });
      return reached;
    });
  }
}

/** Whether two cards say the same thing, apart from their times and seq. */
function sameClaims(a: CardContent, b: CardContent): boolean {
  const strip = ({ issuedAt: _i, expiresAt: _e, seq: _s, ...rest }: CardContent) => JSON.stringify(rest);
  return strip(a) === strip(b);
}

function lastEvent(store: EventStore, stream: string): StoredEvent | undefined {
  const head = store.head(stream);
  return head === 0 ? undefined : store.readOne(stream, head);
}
