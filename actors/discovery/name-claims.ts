// The names actor: the human-readable names this daemon claims, one supervised name machine (machines/name.ts)
// per claim, each on its own stream `name/<name>/<n>` (n counts this daemon's claims of that name: a claim after a
// release, expiry or loss starts a new stream, its seqs counting on from the last one's). And resolving anyone's
// name from the DHT.
//
// Consent is checked before a machine starts: while another DID holds a live record of the name, the claim is
// refused with ALREADY_EXISTS (names.ts claimRefusal). The machine's one effect, publishRecord, is performed here:
// sign the record, put it, and look at who holds the name now — another DID's earlier claim (a race lost) answers
// LOST, which withdraws ours. Because two claims can cross without either daemon seeing the other's at first, a
// claim is looked at once more shortly after it is confirmed, and again at each renewal.
import type { AnyEventObject, AnyMachineSnapshot } from 'xstate';
import { ApiError } from '../../runtime/errors.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import type { Logger } from '../../runtime/log.ts';
import { foldStream, type PersistedActor } from '../../runtime/persisted-actor.ts';
import { KeyedSerial } from '../../runtime/keyed-serial.ts';
import { SupervisedActors } from '../../runtime/supervised-actors.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import type { Effect } from '../../runtime/transitions.ts';
import { nameMachine, nameStateOf, type NameContext, type NameInput, type NameState, type PublishRecordParams } from '../../machines/name.ts';
import { holdingRecord, nameHolder, nameKey } from './dht.ts';
import { RESOLVE_QUORUM, type MeshDht, type Spreader } from './mesh-dht.ts';
import { claimRefusal, isoSeconds, parseName } from './names.ts';
import { NAME_TTL_MS, signName, type Signer, type SignedName } from './records.ts';

export const NAME_PREFIX = 'name/';

/** A name and who holds it, as the API shows it. */
export interface NameView {
  name: string;
  did: string;
  claimedAt: number;
  expiresAt: number;
  seq: number;
  /** Ours, renewed by this daemon while it runs. */
  autoRenew: boolean;
}

export interface NameClaimsOptions {
  identity: Signer;
  store: EventStore;
  clock: Clock;
  dht: MeshDht;
  spreader: Spreader;
  supervisor: Supervisor;
  log: Logger;
  /** The set of names we hold changed (the card shows one). */
  onChange(): void;
  ttlMs?: number;
  renewBeforeMs?: number;
  retryMs?: number;
  /** Look at a confirmed claim again this long after, in case a crossing claim was not visible yet. */
  recheckMs?: number;
}

const HOLDING: readonly NameState[] = ['claimed', 'renewing'];

export class NameClaims {
  readonly #o: NameClaimsOptions;
  readonly #supervisor: Supervisor;
  readonly #actors: SupervisedActors;
  readonly #serial = new KeyedSerial();
  readonly #rechecks = new Set<unknown>();
  /** The record that beat ours, by name, until our release has been published. */
  readonly #winners = new Map<string, Uint8Array>();

  constructor(options: NameClaimsOptions) {
    this.#o = options;
    this.#supervisor = new Supervisor(`${options.supervisor.path}/names`, { clock: options.clock });
    this.#actors = new SupervisedActors({
      supervisor: this.#supervisor,
      actorOptions: (id, onCrash) => ({
        store: options.store,
        stream: NAME_PREFIX + id,
        machine: nameMachine,
        clock: options.clock,
        onCrash,
        perform: (effect: Effect) => this.#perform(id, effect),
      }),
      onFailed: (id, reason) => options.log('error', 'name claim failed past its crash budget; it is no longer renewed', { stream: NAME_PREFIX + id, reason }),
      // Any move may change which names we hold, which the card shows (refreshing an unchanged card costs nothing).
      onTransition: () => options.onChange(),
    });
  }

  /** Join the supervision tree; resume every claim that has not ended (timers re-armed, an unacknowledged publish
   *  performed again). */
  async start(): Promise<void> {
    const names = this.#supervisor;
    await this.#o.supervisor.startChild({ id: 'names', start: () => ({ stop: () => names.stop(), tree: () => names.tree() }) });
    for (const stream of [...this.#o.store.liveStreams(NAME_PREFIX)]) await this.#actors.resume(stream.slice(NAME_PREFIX.length));
  }

  stop(): void {
    for (const t of this.#rechecks) this.#o.clock.clearTimeout(t);
    this.#rechecks.clear();
  }

  /** The names we hold now, the earliest claim first. */
  held(): string[] {
    return this.#holding().map((c) => c.name);
  }

  list(): NameView[] {
    return this.#holding().map((c) => this.#view(c));
  }

  /**
   * Claim `name` for our DID; resolves once its record is published, with the record. Our own live claim answers
   * with itself. ALREADY_EXISTS when another DID holds it (now, or won a crossing claim).
   */
  claim(raw: string): Promise<NameView> {
    const name = parseName('name', raw);
    return this.#serial.run(name, async () => {
      const current = this.#liveClaim(name);
      if (current) return this.#outcome(current.actor);
      const now = this.#o.clock.now();
      const refusal = claimRefusal(name, await this.#holder(name), this.#o.identity.did, now);
      if (refusal) throw refusal;
      const { id, previousSeq } = this.#nextClaim(name);
      const input: NameInput = {
        name, owner: this.#o.identity.did, at: now, previousSeq,
        ttlMs: this.#o.ttlMs ?? NAME_TTL_MS,
        renewBeforeMs: this.#o.renewBeforeMs ?? (this.#o.ttlMs ?? NAME_TTL_MS) / 2,
        retryMs: this.#o.retryMs ?? 5_000,
      };
      const actor = await this.#actors.create(id, input);
      return this.#outcome(actor);
    });
  }

  /** Give up our claim of `name`: a release record replaces ours in the mesh. NOT_FOUND unless we hold it. */
  release(raw: string): Promise<void> {
    const name = parseName('name', raw);
    return this.#serial.run(name, async () => {
      const current = this.#liveClaim(name);
      if (!current) throw new ApiError('NOT_FOUND', `this daemon holds no name ${JSON.stringify(name)} (see: moltmesh-daemon name list)`);
      await current.actor.send({ type: 'RELEASE' });
      await current.actor.effectsSettled();
    });
  }

  /** Who holds `name`, verified: ours from memory, anyone else's from the DHT. NOT_FOUND when nobody does. */
  async resolve(raw: string, signal?: AbortSignal): Promise<NameView> {
    const name = parseName('name', raw);
    const ours = this.#holding().find((c) => c.name === name);
    if (ours) return this.#view(ours);
    const holder = await this.#holder(name, { ...(signal ? { signal } : {}), quorum: RESOLVE_QUORUM });
    if (!holder) throw new ApiError('NOT_FOUND', `name ${JSON.stringify(name)} is not claimed`);
    return { name, did: holder.did, claimedAt: holder.claimedAt, expiresAt: holder.expiresAt, seq: holder.seq, autoRenew: false };
  }

  peerConnected(): void {
    this.#o.spreader.peerConnected();
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────────

  #holding(): NameContext[] {
    const out: NameContext[] = [];
    for (const [, actor] of this.#actors.entries()) {
      if (HOLDING.includes(nameStateOf(actor.snapshot.value))) out.push(actor.snapshot.context as NameContext);
    }
    return out.sort((a, b) => a.claimedAt - b.claimedAt || (a.name < b.name ? -1 : 1));
  }

  #view(c: NameContext): NameView {
    const record = c.record ?? c.pending!;
    return { name: c.name, did: c.owner, claimedAt: c.claimedAt, expiresAt: record.expiresAt, seq: record.seq, autoRenew: true };
  }

  #liveClaim(name: string): { id: string; actor: PersistedActor } | undefined {
    for (const [id, actor] of this.#actors.entries()) {
      if (!actor.done && (actor.snapshot.context as NameContext).name === name) return { id, actor };
    }
    return undefined;
  }

  /** The id of a new claim of `name`, and the last seq our earlier claims of it used. */
  #nextClaim(name: string): { id: string; previousSeq: number } {
    const earlier = this.#o.store.listStreams(`${NAME_PREFIX}${name}/`);
    const last = earlier.map((s) => Number(s.slice(NAME_PREFIX.length + name.length + 1))).filter(Number.isSafeInteger).sort((a, b) => a - b).at(-1) ?? 0;
    let previousSeq = 0;
    if (last > 0) {
      const { snapshot } = foldStream(this.#o.store, `${NAME_PREFIX}${name}/${last}`, nameMachine);
      previousSeq = (snapshot?.context as NameContext | undefined)?.seq ?? 0;
    }
    return { id: `${name}/${last + 1}`, previousSeq };
  }

  /** Waits until the claim is confirmed (its view), lost or gone (an error saying so). */
  #outcome(actor: PersistedActor): Promise<NameView> {
    return new Promise((resolve, reject) => {
      const settle = (snapshot: AnyMachineSnapshot): boolean => {
        const c = snapshot.context as NameContext;
        const state = nameStateOf(snapshot.value);
        if (HOLDING.includes(state)) resolve(this.#view(c));
        else if (state === 'lost') {
          reject(new ApiError('ALREADY_EXISTS', `name ${JSON.stringify(c.name)} already claimed by ${c.lostTo!.did} (expires ${isoSeconds(c.lostTo!.expiresAt)})`));
        } else if (state === 'claiming' && c.lastError) {
          reject(new ApiError('UNAVAILABLE', `could not publish the claim of ${JSON.stringify(c.name)} yet (${c.lastError}); this daemon keeps trying (see: moltmesh-daemon name list)`));
        } else if (snapshot.status === 'done') reject(new ApiError('FAILED_PRECONDITION', `the claim of ${JSON.stringify(c.name)} ended ${state}`));
        else return false;
        return true;
      };
      if (settle(actor.snapshot)) return;
      const off = actor.subscribe((t) => {
        if (settle(t.snapshot)) off();
      });
    });
  }

  /**
   * The verified record that holds `name` in the mesh now, if any. A claim's consent and LOST checks walk the whole
   * lookup; a resolve settles for a quorum of storing peers.
   */
  async #holder(name: string, options: { signal?: AbortSignal; quorum?: number } = {}): Promise<SignedName | undefined> {
    const records = await this.#o.dht.records(nameKey(name), { signal: options.signal ?? AbortSignal.timeout(10_000), ...(options.quorum ? { quorum: options.quorum } : {}) });
    return nameHolder(name, records, this.#o.clock.now());
  }



  async #perform(id: string, effect: Effect): Promise<AnyEventObject[]> {
    if (effect.type !== 'publishRecord') throw new Error(`unknown name effect ${effect.type}`);
    const { record } = effect.params as PublishRecordParams;
    const bytes = signName(record, this.#o.identity);
    const put = () => this.#o.dht.put(nameKey(record.name), bytes, AbortSignal.timeout(15_000));
    let reached: number;
    try {
      reached = await put();
    } catch (err) {
      // A release is the last word of a claim that has ended (released, lost): its machine waits for nothing more,
      // so the release is kept trying here until it reaches the mesh.
      if (record.released) {
        this.#o.spreader.spread(NAME_PREFIX + record.name, put);
        return [];
      }
      return [{ type: 'PUBLISH_FAILED', seq: record.seq, error: String((err as Error)?.message ?? err)}];
    }
    // Stored here at least; until a peer takes it, keep trying (and look for a crossing claim once one does).
    if (reached === 0) {
      this.#o.spreader.spread(NAME_PREFIX + record.name, async () => {
        const n = await this.#o.dht.put(nameKey(record.name), bytes, AbortSignal.timeout(15_000));
        if (n > 0 && !record.released) this.#recheckSoon(id, 0);
        return n;
      });
    }
    if (record.released) {
      // A claim lost in a race is withdrawn; storing peers that kept it (refusing the winner's while ours was live)
      // take the winner's record now that ours is released, so every lookup finds the winner, not only releases.
      const winner = this.#winners.get(record.name);
      this.#winners.delete(record.name);
      if (winner) await this.#o.dht.put(nameKey(record.name), winner, AbortSignal.timeout(15_000)).catch(() => undefined);
      return [{ type: 'PUBLISHED', seq: record.seq }];
    }
    const lost = reached > 0 ? await this.#lostTo(record.name, bytes).catch(() => undefined) : undefined;
    if (lost) return [{ type: 'LOST', seq: record.seq, holder: lost.did, holderExpiresAt: lost.expiresAt}];
    if (reached > 0) this.#recheckSoon(id, this.#o.recheckMs ?? 2_000);
    return [{ type: 'PUBLISHED', seq: record.seq}];
  }

  /**
   * Another DID's record that wins `name` now against `ours` (our live record, judged with what the mesh holds: a
   * lookup that missed it must not make us give the name up), if one does — kept, to spread once ours is withdrawn.
   */
  async #lostTo(name: string, ours: Uint8Array): Promise<SignedName | undefined> {
    const records = [...(await this.#o.dht.records(nameKey(name), { signal: AbortSignal.timeout(10_000) })), ours];
    const holder = holdingRecord(name, records, this.#o.clock.now());
    if (!holder || holder.record.did === this.#o.identity.did) return undefined;
    this.#winners.set(name, holder.bytes);
    return holder.record;
  }

  /**
   * Look again after `ms` whether claim `id` still wins; LOST if it does not. Twice (after `ms`, then 4× as long):
   * a crossing claim can take a while to show, and a lookup cut short by a busy mesh sees none.
   */
  #recheckSoon(id: string, ms: number, again = true): void {
    const timer = this.#o.clock.setTimeout(() => {
      this.#rechecks.delete(timer);
      const actor = this.#actors.get(id);
      if (!actor || actor.done) return;
      const c = actor.snapshot.context as NameContext;
      const ours = c.record ?? c.pending;
      if (!ours) return;
      const bytes = signName(ours, this.#o.identity);
      void this.#lostTo(c.name, bytes).then(
        async (lost) => {
          if (lost) return actor.send({ type: 'LOST', seq: c.seq, holder: lost.did, holderExpiresAt: lost.expiresAt } as AnyEventObject);
          // Still ours: put it again, so storing peers that refused it while a crossing claim was live (and hold
          // that claim's release now) take it.
          await this.#o.dht.put(nameKey(c.name), bytes, AbortSignal.timeout(15_000)).catch(() => undefined);
          if (again) this.#recheckSoon(id, Math.max(ms, 1_000) * 4, false);
        },
        (err) => this.#o.log('debug', 'name recheck failed', { name: c.name, error: String(err) }),
      );
    }, ms);
    this.#rechecks.add(timer);
  }
}
