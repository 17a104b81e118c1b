// The mesh's kad-dht as discovery uses it: put a record and learn how many peers took it, collect every record
// the mesh holds for a key (so our own selector, not the order of replies, decides), provide and find providers.
// A thin shell: what a record means, and which one wins, is in dht.ts and records.ts.
import type { KadDHT } from '@libp2p/kad-dht';
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { CID } from 'multiformats/cid';
import type { Clock } from '../../runtime/clock.ts';
import { ApiError } from '../../runtime/errors.ts';
import { equalBytes } from '../../runtime/canonical-cbor.ts';

/** Storing peers whose answers a lookup for a reader (GetAgentCard, ResolveName) waits for, when it can stop early. */
export const RESOLVE_QUORUM = 3;

export interface Provider {
  id: PeerId;
  multiaddrs: Multiaddr[];
}

export class MeshDht {
  readonly #dht: KadDHT;

  constructor(dht: KadDHT) {
    this.#dht = dht;
  }

  /** Store `value` under `key` here and at the closest peers. Resolves with how many peers confirmed it. */
  async put(key: Uint8Array, value: Uint8Array, signal?: AbortSignal): Promise<number> {
    const confirmed = new Set<string>();
    for await (const e of this.#dht.put(key, value, { signal })) {
      if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE' && e.record && equalBytes(e.record.value, value)) {
        confirmed.add(e.from.toString());
      }
    }
    return confirmed.size;
  }

  /**
   * Distinct records the mesh answers for `key` (ours included), for a selector to choose from; [] when nobody
   * holds one. With `quorum`, stops once that many peers have answered with a record (a lookup's tail of further
   * hops costs more than it usually adds); without, walks the whole query. Stops early, keeping what it has, when
   * `signal` aborts.
   */
  async records(key: Uint8Array, options: { signal?: AbortSignal; quorum?: number } = {}): Promise<Uint8Array[]> {
    const found: Uint8Array[] = [];
    const add = (value: Uint8Array) => {
      if (!found.some((f) => equalBytes(f, value))) found.push(value);
    };
    const enough = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, enough.signal]) : enough.signal;
    let answered = 0;
    try {
      for await (const e of this.#dht.get(key, { signal })) {
        if (e.name === 'PEER_RESPONSE' && e.record) {
          add(e.record.value);
          if (++answered === options.quorum) enough.abort();
        } else if (e.name === 'VALUE') add(e.value); // the last event: the best, our own local copy included
      }
    } catch (err) {
      // kad-dht throws when no peer holds the key (NotFoundError / AggregateError) or when aborted; either way the
      // answer is what was collected.
      if (!signal.aborted && !isNotFound(err)) throw err;
    }
    // Cut short by the caller with nothing found is not "nobody holds it": say so, rather than NOT_FOUND.
    if (found.length === 0 && options.signal?.aborted) {
      throw new ApiError('DEADLINE_EXCEEDED', 'the DHT lookup did not finish in time (a busy or partitioned mesh); try again');
    }
    return found;
  }

  /** Announce us as a provider of `cid` to the closest peers (kad-dht re-provides it until cancelled). */
  async provide(cid: CID, signal?: AbortSignal): Promise<number> {
    const reached = new Set<string>();
    for await (const e of this.#dht.provide(cid, { signal })) {
      if (e.name === 'PEER_RESPONSE') reached.add(e.from.toString());
    }
    return reached.size;
  }

  async cancelProvide(cid: CID): Promise<void> {
    await this.#dht.cancelReprovide(cid).catch(() => undefined);
  }

  /** Providers of `cid` as they are found (each once; ours too when we provide it). */
  async *providers(cid: CID, signal?: AbortSignal): AsyncGenerator<Provider> {
    const seen = new Set<string>();
    try {
      for await (const e of this.#dht.findProviders(cid, { signal })) {
        if (e.name !== 'PROVIDER' && !(e.name === 'PEER_RESPONSE' && e.providers.length > 0)) continue;
        for (const p of e.providers) {
          const id = p.id.toString();
          if (seen.has(id)) continue;
          seen.add(id);
          yield { id: p.id, multiaddrs: p.multiaddrs };
        }
      }
    } catch (err) {
      if (!signal?.aborted && !isNotFound(err)) throw err;
    }
  }
}

function isNotFound(err: unknown): boolean {
  const name = (err as Error)?.name;
  return name === 'NotFoundError' || name === 'AggregateError' || name === 'QueryAbortedError';
}

/**
 * Keeps putting what must reach the mesh until it does: a record published while we have no DHT peers (a daemon
 * just started, offline, or alone) is stored here only. Each job runs at once; while it reaches no peer it runs
 * again after 1 s, 2 s, 4 s … up to a minute, and at once when a peer connects. A newer job under the same key
 * replaces the older one.
 */
export class Spreader {
  readonly #jobs = new Map<string, { attempt: () => Promise<number>; timer: unknown; delayMs: number; running: boolean }>();
  readonly #clock: Clock;
  readonly #onError: (key: string, error: unknown) => void;
  #stopped = false;

  constructor(clock: Clock, onError: (key: string, error: unknown) => void) {
    this.#clock = clock;
    this.#onError = onError;
  }

  spread(key: string, attempt: () => Promise<number>): void {
    const old = this.#jobs.get(key);
    if (old) this.#clock.clearTimeout(old.timer);
    this.#jobs.set(key, { attempt, timer: undefined, delayMs: 1_000, running: false });
    this.#run(key);
  }

  /** A new peer: whatever has not reached the mesh yet tries now. */
  peerConnected(): void {
    for (const [key, job] of this.#jobs) {
      if (job.running) continue;
      this.#clock.clearTimeout(job.timer);
      this.#run(key);
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const job of this.#jobs.values()) this.#clock.clearTimeout(job.timer);
    this.#jobs.clear();
  }

  #run(key: string): void {
    const job = this.#jobs.get(key);
    if (!job || this.#stopped) return;
    job.running = true;
    void job.attempt().then(
      (reached) => reached > 0,
      (err) => (this.#onError(key, err), false),
    ).then((done) => {
      if (this.#jobs.get(key) !== job) return; // replaced meanwhile
      job.running = false;
      if (done || this.#stopped) {
        this.#jobs.delete(key);
        return;
      }
      job.timer = this.#clock.setTimeout(() => this.#run(key), job.delayMs);
      job.delayMs = Math.min(job.delayMs * 2, 60_000);
    });
  }
}
