// The event store: append-only streams of events in LMDB, values in cbor-x.
//
// Every stream is a gap-free sequence 1, 2, 3, … . An append writes its events together with any side rows
// (pending effects, timers, indexes) in ONE transaction, so a crash leaves either all of it or none of it.
// A stream may be rebased: an append with `rebase` writes events that summarise everything before them (e.g. a
// compacted log) and deletes the stream's earlier events in the same transaction. Sequence numbers go on counting
// (the head never goes back); reading starts at the first event left. Only for streams no machine folds: a stream's
// snapshot is left as it is, and a fold would start from the summary.
// Durable by default: `overlappingSync` is off, so an append's promise resolves only after LMDB has fsynced
// the commit — it survives `kill -9` and power loss. lmdb-js batches every write issued in one event-loop turn
// into one transaction and one fsync, which is what keeps durable appends fast under concurrency.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { Encoder } from 'cbor-x';

/** Bumped when the stored shape of an event changes; readers upgrade older versions. */
export const EVENT_SCHEMA_VERSION = 1;

export interface NewEvent {
  type: string;
  /** ms since epoch, stamped by the caller's injected clock. */
  at: number;
  data?: unknown;
}

export interface StoredEvent extends Required<NewEvent> {
  stream: string;
  seq: number;
  v: number;
}

export interface Snapshot<T = unknown> {
  seq: number;
  state: T;
}

/** Side rows written in the same transaction as an append. Keys are arrays (ordered) within a named table. */
export interface RowOp {
  table: Table;
  key: (string | number)[];
  /** undefined removes the row. */
  value?: unknown;
  /** Instead of `value`: add this to the number the row holds (a missing row holds 0), inside the transaction. */
  add?: number;
}

export type Table = 'effects' | 'timers' | 'index';

/** Index rows ['live', stream] mark streams whose actor has not reached a final state (see liveStreams). */
export const LIVE = 'live';
/** Index rows ['count', group, label] count a group's actors by state label (see PersistedActorOptions.count). */
export const COUNT = 'count';

/** The counter rows that move one member of `group` from label `from` (none: a new member) to label `to`. */
export function countMove(group: string, from: string | undefined, to: string): RowOp[] {
  if (from === to) return [];
  const rows: RowOp[] = [{ table: 'index', key: [COUNT, group, to], add: 1 }];
  if (from !== undefined) rows.push({ table: 'index', key: [COUNT, group, from], add: -1 });
  return rows;
}
export const liveRow = (stream: string, live: boolean): RowOp => ({ table: 'index', key: [LIVE, stream], value: live ? 1 : undefined });

export class StreamConflictError extends Error {
  constructor(stream: string, expected: number, actual: number) {
    super(`stream ${stream}: expected head ${expected}, found ${actual}`);
    this.name = 'StreamConflictError';
  }
}

// Plain CBOR (no record structures) so the log stays readable by any tool, and Uint8Array/BigInt/Date survive.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export interface EventStoreOptions {
  /** false trades power-loss durability for speed (an acknowledged append still survives kill -9). */
  durable?: boolean;
}

export class EventStore {
  readonly #root: RootDatabase;
  readonly #events: Database<Buffer, (string | number)[]>;
  readonly #heads: Database<number, string>;
  readonly #snapshots: Database<Buffer, string>;
  readonly #tables: Record<Table, Database<Buffer, (string | number)[]>>;

  constructor(path: string, options: EventStoreOptions = {}) {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    const durable = options.durable ?? true;
    this.#root = open({
      path: join(path, 'events.mdb'),
      // With overlappingSync on (lmdb-js's Linux default) a resolved put means committed, not flushed.
      overlappingSync: !durable,
      noSync: false,
    });
    const binary = { encoding: 'binary' as const, keyEncoding: 'ordered-binary' as const };
    this.#events = this.#root.openDB({ name: 'events', ...binary });
    this.#heads = this.#root.openDB({ name: 'heads', encoding: 'ordered-binary' });
    this.#snapshots = this.#root.openDB({ name: 'snapshots', ...binary });
    this.#tables = {
      effects: this.#root.openDB({ name: 'effects', ...binary }),
      timers: this.#root.openDB({ name: 'timers', ...binary }),
      index: this.#root.openDB({ name: 'index', ...binary }),
    };
  }

  /**
   * Append events to a stream atomically, with side rows in the same transaction.
   * `expectedHead` (optional) makes the append conditional: it fails with StreamConflictError if another
   * append got there first. `rebase`: the events appended summarise every earlier event of the stream, which are
   * deleted in the same transaction (a crash leaves the old events or the summary, never neither).
   * Resolves with the sequence number of the last event once it is durable.
   */
  async append(
    stream: string,
    events: NewEvent[],
    options: { expectedHead?: number; rows?: RowOp[]; snapshot?: Snapshot; rebase?: boolean } = {},
  ): Promise<number> {
    if (stream.length === 0 || stream.length > 200) throw new Error(`bad stream name "${stream}"`);
    // Encode before the transaction: LMDB's write thread holds the write lock while the callback runs on our
    // thread, so the callback does only what needs the transaction (the head check, counter reads, the puts).
    // cbor-x hands back a fresh view per encode (its buffer is never rewound in this mode), so the bytes keep.
    const encoded = events.map((e) => cbor.encode({ v: EVENT_SCHEMA_VERSION, type: e.type, at: e.at, data: e.data ?? null }));
    const snapshot = options.snapshot && cbor.encode(options.snapshot);
    const rows = (options.rows ?? []).map((op) => ({
      db: this.#tables[op.table], key: op.key, add: op.add,
      value: op.add === undefined && op.value !== undefined ? cbor.encode(op.value) : undefined,
    }));
    return this.#root.transaction(() => {
      const head = this.#heads.get(stream) ?? 0;
      if (options.expectedHead !== undefined && options.expectedHead !== head) {
        throw new StreamConflictError(stream, options.expectedHead, head);
      }
      if (options.rebase) {
        const earlier = [...this.#events.getKeys({ start: [stream, 0], end: [stream, head + 1] })];
        for (const key of earlier) this.#events.remove(key);
      }
      let seq = head;
      for (const bytes of encoded) this.#events.put([stream, ++seq], bytes);
      if (seq !== head) this.#heads.put(stream, seq);
      if (snapshot) this.#snapshots.put(stream, snapshot);
      for (const { db, key, add, value } of rows) {
        if (add !== undefined) {
          const raw = db.get(key);
          db.put(key, cbor.encode((raw ? (cbor.decode(raw) as number) : 0) + add));
        } else if (value === undefined) db.remove(key);
        else db.put(key, value);
      }
      return seq;
    });
  }

  /** Write side rows alone (e.g. acknowledge an effect) in one durable transaction. */
  async writeRows(rows: RowOp[]): Promise<void> {
    if (rows.length === 0) return;
    await this.append('~rows', [], { rows });
  }

  /** Events of a stream from `fromSeq` (inclusive), in order; of a rebased stream, those left (see `rebase`). */
  *read(stream: string, fromSeq = 1): Generator<StoredEvent> {
    for (const { key, value } of this.#events.getRange({ start: [stream, fromSeq], end: [stream, Number.MAX_SAFE_INTEGER] })) {
      yield this.#decodeEvent(stream, key[1] as number, value);
    }
  }

  /** One event by its sequence number. */
  readOne(stream: string, seq: number): StoredEvent | undefined {
    const raw = this.#events.get([stream, seq]);
    return raw ? this.#decodeEvent(stream, seq, raw) : undefined;
  }

  head(stream: string): number {
    return this.#heads.get(stream) ?? 0;
  }

  /** Stream names, optionally those starting with `prefix`, in lexical order. */
  listStreams(prefix = ''): string[] {
    const out: string[] = [];
    for (const key of this.#heads.getKeys({ start: prefix })) {
      if (!key.startsWith(prefix)) break;
      if (key.startsWith('~')) continue;
      out.push(key);
    }
    return out;
  }

  /** Snapshots are a cache: losing one only costs replay time. They are not fsynced on their own. */
  async putSnapshot(stream: string, snapshot: Snapshot): Promise<void> {
    await this.#snapshots.put(stream, cbor.encode(snapshot));
  }

  getSnapshot<T>(stream: string): Snapshot<T> | undefined {
    const raw = this.#snapshots.get(stream);
    return raw ? (cbor.decode(raw) as Snapshot<T>) : undefined;
  }

  /**
   * Streams of persisted actors that have not reached a final state, optionally those starting with `prefix`:
   * what must be resumed at start, without visiting every stream ever written.
   */
  *liveStreams(prefix = ''): Generator<string> {
    for (const key of this.#tables.index.getKeys({ start: [LIVE, prefix] })) {
      if (key[0] !== LIVE || !String(key[1]).startsWith(prefix)) break;
      yield String(key[1]);
    }
  }

  /** The counters of `group`, by label (see PersistedActorOptions.count). */
  counts(group: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { key, value } of this.rows<number>('index', [COUNT, group])) out[String(key[2])] = value;
    return out;
  }

  /** Side rows whose key starts with `prefix`. */
  *rows<T>(table: Table, prefix: (string | number)[]): Generator<{ key: (string | number)[]; value: T }> {
    const db = this.#tables[table];
    for (const { key, value } of db.getRange({ start: prefix })) {
      if (!startsWith(key, prefix)) break;
      yield { key, value: cbor.decode(value) as T };
    }
  }

  getRow<T>(table: Table, key: (string | number)[]): T | undefined {
    const raw = this.#tables[table].get(key);
    return raw ? (cbor.decode(raw) as T) : undefined;
  }

  async close(): Promise<void> {
    await this.#root.close();
  }

  #decodeEvent(stream: string, seq: number, raw: Buffer): StoredEvent {
    const e = cbor.decode(raw) as { v: number; type: string; at: number; data: unknown };
    if (e.v !== EVENT_SCHEMA_VERSION) throw new Error(`stream ${stream}#${seq}: unknown event schema v${e.v}`);
    return { stream, seq, v: e.v, type: e.type, at: e.at, data: e.data };
  }
}

function startsWith(key: (string | number)[], prefix: (string | number)[]): boolean {
  return prefix.every((p, i) => key[i] === p);
}
