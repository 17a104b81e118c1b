// The storing peer's half of dht.ts's `shouldStore`: a datastore that keeps the record it holds when an incoming
// card or name record should not replace it.
//
// kad-dht (16.x) stores whatever validly signed record a PUT_VALUE brings, over the one it holds — it never runs
// a selector on a put and has no hook for one — so anybody could roll a card back to an older seq, or put another
// DID's claim over a live name, at every storing peer. All its record writes go through one call,
// `datastore.put(<datastorePrefix>/record/<base32 of the record key>, serialized Libp2pRecord)`: the PUT_VALUE
// handler, a local dht.put() and get()'s self-correction. The guard sits there. For a record key under
// /moltmesh-card/ or /moltmesh-name/ it reads what is held and writes only when `shouldStore` takes the incoming
// record; otherwise it keeps what it holds and returns as if it had written (the PUT_VALUE handler then echoes
// the record anyway, so a putter's PEER_RESPONSE means "reached", not "stored" — only a get() tells). Every other
// key (provider records, the peer store, other namespaces) and every other method pass straight through.
//
// Not guarded: batch(), which kad-dht never writes a record through (a MemoryDatastore's batch goes through put()
// anyway, a LevelDatastore's does not). putMany() calls put() on both, so it is guarded.
import type { Libp2pInit } from 'libp2p';
import { Record as Libp2pRecord } from '@libp2p/kad-dht';
import { base32 } from 'multiformats/bases/base32';
import { equalBytes } from '../../runtime/canonical-cbor.ts';
import { CARD_NAMESPACE, NAME_NAMESPACE, shouldStore } from './dht.ts';

/** What createLibp2p({ datastore }) takes (interface-datastore's Datastore). */
export type Datastore = NonNullable<Libp2pInit['datastore']>;
type DsKey = Parameters<Datastore['put']>[0];

export interface RecordGuardOptions {
  /** kad-dht's `datastorePrefix` (its default: '/dht'); records live under `${datastorePrefix}/record/`. */
  datastorePrefix?: string;
}

const latin1 = new TextDecoder('latin1');
const GUARDED_PREFIXES = [`/${CARD_NAMESPACE}/`, `/${NAME_NAMESPACE}/`];

/**
 * Guards `datastore` in place (its `put` is replaced; the same object comes back, every other method, `this` and
 * `instanceof` intact) and returns it. Pass the result to createLibp2p({ datastore }); `now` is the clock the
 * validators and selectors use.
 */
export function guardRecords<D extends Datastore>(datastore: D, now: () => number, options: RecordGuardOptions = {}): D {
  const recordsPrefix = `${options.datastorePrefix ?? '/dht'}/record/`;
  const put = datastore.put.bind(datastore);
  const get = datastore.get.bind(datastore);
  // Read-check-write must not interleave for one key: two PUT_VALUEs arriving together would both see the old
  // record and the later write would win unchecked.
  const pending = new Map<string, Promise<unknown>>();

  /** The DHT record key a datastore key stores, when it is one of ours; else undefined. */
  function guardedRecordKey(dsKey: string): Uint8Array | undefined {
    if (!dsKey.startsWith(recordsPrefix)) return undefined;
    let key: Uint8Array;
    try {
      key = base32.baseDecode(dsKey.slice(recordsPrefix.length));
    } catch {
      return undefined; // not a key kad-dht made
    }
    // kad-dht picks validators by the key's first path segment, decoding it leniently; ASCII prefixes compare the same.
    const s = latin1.decode(key.subarray(0, 32));
    return GUARDED_PREFIXES.some((p) => s.startsWith(p)) ? key : undefined;
  }

  async function admits(dsKey: DsKey, recordKey: Uint8Array, value: Uint8Array): Promise<boolean> {
    let incoming: Libp2pRecord;
    try {
      incoming = Libp2pRecord.deserialize(value);
    } catch {
      return false;
    }
    if (!equalBytes(incoming.key, recordKey)) return false; // stored under another key than it names
    let raw: Uint8Array | undefined;
    try {
      raw = await get(dsKey);
    } catch (err) {
      if ((err as Error)?.name !== 'NotFoundError') throw err; // a failing store fails the put
    }
    let stored: Uint8Array | undefined;
    try {
      stored = raw === undefined ? undefined : Libp2pRecord.deserialize(raw).value;
    } catch {
      stored = undefined; // unreadable: as if nothing were held
    }
    return shouldStore(recordKey, stored, incoming.value, now());
  }

  const guardedPut = async (key: DsKey, value: Uint8Array, opts?: Parameters<Datastore['put']>[2]): Promise<DsKey> => {
    const id = key.toString();
    const recordKey = guardedRecordKey(id);
    if (recordKey === undefined) return put(key, value, opts);
    const previous = pending.get(id) ?? Promise.resolve();
    const run = previous.then(async () => ((await admits(key, recordKey, value)) ? put(key, value, opts) : key));
    const settled = run.then(() => undefined, () => undefined);
    pending.set(id, settled);
    void settled.then(() => {
      if (pending.get(id) === settled) pending.delete(id);
    });
    return run;
  };
  datastore.put = guardedPut as D['put'];
  return datastore;
}
