// The mesh's kad-dht as discovery uses it: put a record and learn how many peers took it, collect every record
// the mesh holds for a key (so our own selector, not the order of replies, decides), provide and find providers.
// A thin shell: what a record means, and which one wins, is in dht.ts and records.ts.
import { Record as Libp2pRecord, type KadDHT } from '@libp2p/kad-dht';
import { lpStream } from '@libp2p/utils';
import type { PeerId, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { CID } from 'multiformats/cid';
import type { Clock } from '../../runtime/clock.ts';
import { ApiError } from '../../runtime/errors.ts';
import { equalBytes } from '../../runtime/canonical-cbor.ts';
import { sha256 } from 'multiformats/hashes/sha2';

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
   * holds one. With `quorum`, stops once that many storing peers have answered with a record, this node counting
   * as one when it holds a copy (a lookup's tail of further hops costs more than it usually adds): the closest peers
   * of our routing table are asked first, directly (see #nearest), and only when too few of them hold a record does
   * the iterative lookup run. Without `quorum`, walks the whole query. Stops early, keeping what it has, when
   * `signal` aborts.
   */
  async records(key: Uint8Array, options: { signal?: AbortSignal; quorum?: number } = {}): Promise<Uint8Array[]> {
    const found: Uint8Array[] = [];
    const add = (value: Uint8Array) => {
      if (!found.some((f) => equalBytes(f, value))) found.push(value);
    };
    /** Peers (this node too) that answered with a record. */
    const holders = new Set<string>();
    if (options.quorum !== undefined) {
      await this.#nearest(key, options.quorum, holders, add, options.signal);
      if (holders.size >= options.quorum || options.signal?.aborted) return this.#collected(found, options.signal);
    }
    const enough = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, enough.signal]) : enough.signal;
    try {
      for await (const e of this.#dht.get(key, { signal })) {
        if (e.name === 'PEER_RESPONSE' && e.record) {
          add(e.record.value);
          holders.add(e.from.toString());
          if (holders.size === options.quorum) enough.abort();
        } else if (e.name === 'VALUE') add(e.value); // the last event: the best, our own local copy included
      }
    } catch (err) {
      // kad-dht throws when no peer holds the key (NotFoundError / AggregateError) or when aborted; either way the
      // answer is what was collected.
      if (!signal.aborted && !isNotFound(err)) throw err;
    }
    return this.#collected(found, options.signal);
  }

  #collected(found: Uint8Array[], signal: AbortSignal | undefined): Uint8Array[] {
    // Cut short by the caller with nothing found is not "nobody holds it": say so, rather than NOT_FOUND.
    if (found.length === 0 && signal?.aborted) {
      throw new ApiError('DEADLINE_EXCEEDED', 'the DHT lookup did not finish in time (a busy or partitioned mesh); try again');
    }
    return found;
  }

  /**
   * The quorum read without the iterative walk: our own stored copy, then a GET_VALUE to each of the peers of our
   * routing table closest to `key`, in parallel, as many as records are still wanted; a peer that answers without a
   * record (not a storing peer: our table misses closer ones), fails, or is slow makes the next closest one be
   * asked, up to DIRECT_EXTRA more requests. On a small mesh our table holds every peer and the closest ones are
   * the storing peers, so this asks 2–3 peers where the walk asks all of them; on a large one it may fall short,
   * and records() walks on. Every record is checked by the DHT's validators on arrival (and by the caller's selector).
   */
  async #nearest(key: Uint8Array, quorum: number, holders: Set<string>, add: (value: Uint8Array) => void, signal?: AbortSignal): Promise<void> {
    const dht = kadInternals(this.#dht);
    if (!dht) return;
    try {
      // Our own copy, validated as kad-dht's get() does it: we are one of the storing peers the quorum counts.
      const local = await dht.contentFetching.getLocal(key, signal ? { signal } : {});
      add(local.value);
      holders.add('self');
    } catch {
      // none held here (or not valid any more)
    }
    const wanted = quorum - holders.size;
    if (wanted <= 0) return;
    const kadId = (await sha256.digest(key)).digest;
    const candidates = dht.routingTable.closestPeers(kadId, { count: dht.routingTable.kBucketSize });
    if (candidates.length === 0) return;
    const done = new AbortController();
    const requestSignal = signal ? AbortSignal.any([signal, done.signal]) : done.signal;
    const budget = Math.min(candidates.length, wanted + DIRECT_EXTRA);
    let next = 0;
    let running = 0;
    await new Promise<void>((resolve) => {
      let hedge: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(hedge);
        done.abort();
        resolve();
      };
      const armHedge = () => {
        clearTimeout(hedge);
        hedge = setTimeout(() => {
          if (next < budget) launch();
          armHedge();
        }, DIRECT_HEDGE_MS);
        hedge.unref?.();
      };
      const launch = () => {
        const peer = candidates[next++]!;
        running++;
        void (async () => {
          try {
            const value = await getValueFrom(dht, peer, key, AbortSignal.any([requestSignal, AbortSignal.timeout(DIRECT_TIMEOUT_MS)]));
            if (value !== undefined) {
              add(value);
              holders.add(peer.toString());
            }
          } catch {
            // a failed request is a miss
          }
        })().then(() => {
          running--;
          if (done.signal.aborted) return;
          if (holders.size >= quorum || requestSignal.aborted) return finish();
          // A miss (or an answer we already counted): ask the next closest while the budget lasts.
          const stillWanted = quorum - holders.size;
          while (running < stillWanted && next < budget) launch();
          if (running === 0) finish();
        });
      };
      if (requestSignal.aborted) return finish();
      requestSignal.addEventListener('abort', finish, { once: true });
      while (running < wanted && next < budget) launch();
      armHedge();
    });
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

/** Direct requests a quorum read may send beyond the records it wants, for misses and stragglers. */
const DIRECT_EXTRA = 3;
/** A direct request not answered after this long has the next closest peer asked as well. */
const DIRECT_HEDGE_MS = 250;
/** A direct request is given up (a miss) after this long. */
const DIRECT_TIMEOUT_MS = 3_000;

/**
 * The parts of kad-dht 16.4.5 (pinned) a direct quorum read uses, which its typed API does not show: the routing
 * table, the connection manager and protocol it sends requests with, its validators, and the read of our own
 * stored copy. Undefined when a kad-dht version lacks them; records() then walks, as before.
 */
interface KadInternals {
  routingTable: { kBucketSize: number; closestPeers(kadId: Uint8Array, options: { count: number }): PeerId[] };
  components: { connectionManager: { openStream(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream> } };
  protocol: string;
  validators: Record<string, (key: Uint8Array, value: Uint8Array, options?: { signal?: AbortSignal }) => Promise<void>>;
  contentFetching: { getLocal(key: Uint8Array, options: { signal?: AbortSignal }): Promise<{ value: Uint8Array }> };
}

export function kadInternals(dht: KadDHT): KadInternals | undefined {
  const d = dht as unknown as Partial<KadInternals>;
  return typeof d.routingTable?.closestPeers === 'function' && typeof d.components?.connectionManager?.openStream === 'function' &&
    typeof d.protocol === 'string' && typeof d.validators === 'object' && typeof d.contentFetching?.getLocal === 'function'
    ? d as KadInternals : undefined;
}

/**
 * GET_VALUE of `key` from `peer` alone, on the DHT's protocol, as kad-dht sends it (one length-prefixed protobuf
 * Message each way on a new stream): the record's value when the peer holds one that the DHT's validator for the
 * key's namespace accepts, else undefined. kad-dht's own request would also hand every "closer peer" of the reply
 * (about 20) to the peer store, a read and a write each — the larger part of what a quorum read cost.
 */
export async function getValueFrom(dht: KadInternals, peer: PeerId, key: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
  const stream = await dht.components.connectionManager.openStream(peer, dht.protocol, { signal });
  let reply: Uint8Array;
  try {
    const lp = lpStream(stream);
    await lp.write(encodeGetValue(key), { signal });
    reply = (await lp.read({ signal })).subarray();
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
  void stream.close({ signal }).catch((err: Error) => stream.abort(err));
  const recordBytes = protoField(reply, MESSAGE_RECORD);
  if (recordBytes === undefined) return undefined;
  const record = Libp2pRecord.deserialize(recordBytes);
  if (!equalBytes(record.key, key)) return undefined;
  const namespace = utf8Decoder.decode(key).split('/');
  const validate = namespace.length >= 3 ? dht.validators[namespace[1]!] : undefined;
  if (!validate) return undefined;
  try {
    await validate(key, record.value, { signal });
  } catch {
    return undefined; // an invalid record is no answer
  }
  return record.value;
}

const utf8Decoder = new TextDecoder();
// kad-dht's Message (src/message/dht.proto): type = 1 (GET_VALUE = 1), key = 2, record = 3 (a serialized Record).
const MESSAGE_TYPE = 1;
const MESSAGE_KEY = 2;
const MESSAGE_RECORD = 3;
const GET_VALUE = 1;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

export function encodeGetValue(key: Uint8Array): Uint8Array {
  return Uint8Array.from([(MESSAGE_TYPE << 3) | 0, GET_VALUE, (MESSAGE_KEY << 3) | 2, ...varint(key.length), ...key]);
}

/** The bytes of length-delimited field `field` of protobuf message `buf` (the last one, as protobuf reads it). */
export function protoField(buf: Uint8Array, field: number): Uint8Array | undefined {
  let i = 0;
  let found: Uint8Array | undefined;
  const readVarint = (): number => {
    let n = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (i >= buf.length) throw new Error('truncated protobuf');
      const b = buf[i++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    throw new Error('bad varint');
  };
  while (i < buf.length) {
    const tag = readVarint();
    const wire = tag % 8;
    if (wire === 0) readVarint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = readVarint();
      if (i + len > buf.length) throw new Error('truncated protobuf');
      if (Math.floor(tag / 8) === field) found = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  if (i > buf.length) throw new Error('truncated protobuf');
  return found;
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
