// libp2p's LevelDB datastore with an in-memory read cache in front (write-through: every write still reaches
// LevelDB before it resolves, so what survives a restart is unchanged).
//
// Why: libp2p reads its peer store from the datastore on every use — each protocol stream opened or accepted
// merges the peer's entry (a read and a write), and each DHT request served reads the ~20 closest peers' entries
// to return them — and every read is a LevelDB call through the native binding, which cost about a third of a
// DHT lookup's CPU on a 20-daemon mesh. The entries read are few and hot (the peers we talk to), so a bounded LRU
// of recent keys (values and "not found" both) answers nearly all of them from memory.
//
// Consistency: a write updates the cache when it is issued (a read after it sees the new value, as LevelDB
// would once the write completed) and a failed write drops the key, so the next read goes to LevelDB. A read
// that missed fills the cache only if no write or delete of that key was issued while it was reading, so a
// slow read can never put an older value back over a newer one. query()/queryKeys() read LevelDB itself, as
// before. Values are copied in and out: a caller that reuses or alters a buffer cannot change the cache.
import { LevelDatastore } from 'datastore-level';
import type { Key } from 'interface-datastore';

type Options = Parameters<LevelDatastore['get']>[1];
type Batch = ReturnType<LevelDatastore['batch']>;
interface WriteOp {
  key: Key;
  value: Uint8Array | null;
}

/** A promise to settle later whose rejection, should nobody wait for it, is not an unhandled one. */
function settledLater(): PromiseWithResolvers<void> {
  const d = Promise.withResolvers<void>();
  d.promise.catch(() => undefined);
  return d;
}

/** `p`, or the signal's reason once it aborts first (the write itself goes on, as LevelDatastore's does). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Bytes the cache may hold by default (values, keys and a per-entry allowance). */
export const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
const ENTRY_OVERHEAD = 96;

class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor() {
    super('Not Found');
  }
}

export class CachedLevelDatastore extends LevelDatastore {
  /** key → value, or null for "LevelDB holds nothing"; in least-recently-used-first order. */
  readonly #cache = new Map<string, Uint8Array | null>();
  /** The read in flight per key that may fill the cache (a write of the key removes it). */
  readonly #reading = new Map<string, object>();
  readonly #maxBytes: number;
  #bytes = 0;
  /** Writes waiting for the next batch, by key (the newest per key). */
  #queued = new Map<string, WriteOp>();
  /** Every write issued and not yet committed (queued or in the batch being written), by key: the newest per key. */
  readonly #unwritten = new Map<string, WriteOp>();
  /** Settles when the queued writes' batch is committed. */
  #next = settledLater();
  #flushScheduled = false;
  /** The batch being written (the chain of them). */
  #flushed: Promise<void> = Promise.resolve();

  constructor(path: string, options: { cacheBytes?: number } = {}) {
    super(path);
    this.#maxBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  }

  /** Entries and bytes held (tests, diagnostics). */
  cacheStats(): { entries: number; bytes: number } {
    return { entries: this.#cache.size, bytes: this.#bytes };
  }

  override async get(key: Key, options?: Options): Promise<Uint8Array> {
    const k = key.toString();
    const cached = this.#cache.get(k);
    if (cached !== undefined) {
      this.#touch(k, cached);
      if (cached === null) throw new NotFoundError();
      return cached.slice();
    }
    const unwritten = this.#unwritten.get(k);
    if (unwritten !== undefined) {
      // Issued, not yet in LevelDB (and since evicted from the cache): LevelDB would answer with the value before.
      if (unwritten.value === null) throw new NotFoundError();
      return unwritten.value.slice();
    }
    const token = {};
    this.#reading.set(k, token);
    let value: Uint8Array;
    try {
      value = await super.get(key, options);
    } catch (err) {
      if ((err as Error)?.name === 'NotFoundError' && this.#reading.get(k) === token) this.#set(k, null);
      if (this.#reading.get(k) === token) this.#reading.delete(k);
      throw err;
    }
    if (this.#reading.get(k) === token) {
      this.#reading.delete(k);
      this.#set(k, value.slice());
    }
    return value;
  }

  override async has(key: Key, options?: Options): Promise<boolean> {
    const cached = this.#cache.get(key.toString()) ?? this.#unwritten.get(key.toString())?.value;
    if (cached !== undefined) return cached !== null;
    return super.has(key, options);
  }

  override async put(key: Key, value: Uint8Array, options?: Options): Promise<Key> {
    options?.signal?.throwIfAborted();
    await this.#write([[key, value.slice()]], options);
    return key;
  }

  override async delete(key: Key, options?: Options): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.#write([[key, null]], options);
  }

  override batch(): Batch {
    const ops: Array<[Key, Uint8Array | null]> = [];
    return {
      put: (key, value) => void ops.push([key, value.slice()]),
      delete: (key) => void ops.push([key, null]),
      commit: async (options) => {
        options?.signal?.throwIfAborted();
        await this.#write(ops, options);
      },
    };
  }

  override async close(): Promise<void> {
    if (this.#queued.size > 0) {
      this.#flushSoon();
      await this.#next.promise.catch(() => undefined);
    }
    await this.#flushed;
    this.#cache.clear();
    this.#reading.clear();
    this.#bytes = 0;
    await super.close();
  }

  /**
   * Writes `ops` with the next LevelDB batch; resolves once that batch is committed (as a put or delete of
   * LevelDB's resolves once it is written). Writes issued in one turn of the event loop share one batch — the
   * peer store writes a peer's entry again for every stream opened and every address heard of, often several at
   * once — and a key written twice before the batch goes keeps only its newer value. One batch is written at a
   * time, in the order writes were issued.
   */
  async #write(ops: Array<[Key, Uint8Array | null]>, options?: Options): Promise<void> {
    for (const [key, value] of ops) {
      const k = key.toString();
      this.#reading.delete(k);
      this.#set(k, value);
      const op = { key, value };
      this.#queued.set(k, op);
      this.#unwritten.set(k, op);
    }
    const committed = this.#next.promise;
    this.#flushSoon();
    await (options?.signal ? raceAbort(committed, options.signal) : committed);
  }

  #flushSoon(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const ops = this.#queued;
      const done = this.#next;
      this.#queued = new Map();
      this.#next = settledLater();
      // Written after the batch before it, never beside it.
      this.#flushed = this.#flushed.then(async () => {
        const batch = super.batch();
        for (const { key, value } of ops.values()) {
          if (value === null) batch.delete(key);
          else batch.put(key, value);
        }
        try {
          await batch.commit();
        } catch (err) {
          // Not written: the cache must not show it (a read goes to LevelDB again).
          for (const [k, op] of ops) {
            if (this.#unwritten.get(k) === op) {
              this.#unwritten.delete(k);
              this.#drop(k);
            }
          }
          done.reject(err);
          return;
        }
        for (const [k, op] of ops) if (this.#unwritten.get(k) === op) this.#unwritten.delete(k);
        done.resolve();
      });
    });
  }

  #touch(k: string, v: Uint8Array | null): void {
    this.#cache.delete(k);
    this.#cache.set(k, v);
  }

  #set(k: string, v: Uint8Array | null): void {
    this.#drop(k);
    const size = k.length * 2 + (v?.byteLength ?? 0) + ENTRY_OVERHEAD;
    if (size > this.#maxBytes / 16) return; // one huge value does not flush everything else
    this.#cache.set(k, v);
    this.#bytes += size;
    for (const [oldest, ov] of this.#cache) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#cache.delete(oldest);
      this.#bytes -= oldest.length * 2 + (ov?.byteLength ?? 0) + ENTRY_OVERHEAD;
    }
  }

  #drop(k: string): void {
    const v = this.#cache.get(k);
    if (v === undefined) return;
    this.#cache.delete(k);
    this.#bytes -= k.length * 2 + (v?.byteLength ?? 0) + ENTRY_OVERHEAD;
  }
}
