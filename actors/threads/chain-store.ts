// One thread's committed chain on this replica: stream `thread-chain/<id>`, one event per block, so an event's seq
// is the block's height (appended with the expected head: a block can only follow the one before it). Beside each
// block, in the same transaction, an index row per entry id (['entry', thread, id] → [height, index]): appending an
// id that is already in the chain adds nothing, and AppendEntry can answer where it landed.
//
// Readers get history then live blocks with no gap and no duplicate: subscribe first, read `blocks(from)`, then
// take live blocks above the last height read.
import type { EventStore, RowOp } from '../../runtime/event-store.ts';
import { blockHash, decodeBlock, decodeEntry, encodeBlock, genesisHash, verifyChain, type Block, type ChainReport, type Genesis, type Verify } from '../../machines/chain.ts';
import { equalBytes } from '../../runtime/canonical-cbor.ts';

export const CHAIN_PREFIX = 'thread-chain/';

/** A committed block as stored: its bytes, and (Tendermint) the commit certificate that decided it. */
export interface CommittedBlock {
  block: Block;
  hash: Uint8Array;
  /** Tendermint: the 2f+1 signed precommits; undefined for Raft. */
  certificate?: unknown;
}

interface BlockEventData {
  block: Uint8Array;
  certificate: unknown;
}

export class ChainStore {
  readonly stream: string;
  readonly genesis: Genesis;
  readonly #store: EventStore;
  #head: Uint8Array;
  #height: number;
  readonly #listeners = new Set<(b: CommittedBlock) => void>();
  /** Blocks decided but not yet written (see `commit`), by height, and their entries' places by id. */
  readonly #unwritten = new Map<number, CommittedBlock>();
  readonly #unwrittenIds = new Map<string, { height: number; index: number }>();
  /** Writes of recoverable blocks held back to join their owner's next write (see `commit`), in height order. */
  #deferred: (() => void)[] = [];
  /** Callers waiting for an entry to be committed, by entry id. */
  readonly #landing = new Map<string, ((at: { height: number; index: number; hash: Uint8Array }) => void)[]>();

  constructor(store: EventStore, genesis: Genesis) {
    this.#store = store;
    this.genesis = genesis;
    this.stream = CHAIN_PREFIX + genesis.thread;
    this.#height = store.head(this.stream);
    this.#head = this.#height === 0 ? genesisHash(genesis) : this.block(this.#height)!.hash;
  }

  get height(): number {
    return this.#height;
  }

  /** The last block's hash (the genesis hash before the first block). */
  get head(): Uint8Array {
    return this.#head;
  }

  /** Where entry `id` is in the chain, if it is. */
  locate(id: string): { height: number; index: number } | undefined {
    const unwritten = this.#unwrittenIds.get(id);
    if (unwritten) return unwritten;
    const row = this.#store.getRow<[number, number]>('index', ['entry', this.genesis.thread, id]);
    return row && { height: row[0], index: row[1] };
  }

  block(height: number): CommittedBlock | undefined {
    const unwritten = this.#unwritten.get(height);
    if (unwritten) return unwritten;
    const e = this.#store.readOne(this.stream, height);
    if (!e) return undefined;
    const data = e.data as BlockEventData;
    const block = decodeBlock(data.block);
    return { block, hash: blockHash(block), ...(data.certificate === null ? {} : { certificate: data.certificate }) };
  }

  /** Blocks from `height` on. */
  *blocks(from = 1): Generator<CommittedBlock> {
    for (let h = Math.max(1, from); h <= this.#height; h++) yield this.block(h)!;
  }

  /**
   * Append the next block (it must follow the head), with `extraRows` in the same transaction. Resolves once it is
   * durable. Listeners see it then — or at once with `recoverable`, when the block is already recoverable from
   * elsewhere (a Raft log that a quorum holds: a crash before this write re-derives the same block): readers then
   * get it from memory until it is written, and blocks committed one after another share LMDB's group commit.
   * `ids`: its entries' ids when the caller has decoded them already. Entries already in the chain must have been
   * left out by the caller. `deferWrite` (with `recoverable`): the write waits for `flushWrites()`, which the caller
   * calls right before its own next write (the Raft log's), so both go in one LMDB transaction and one fsync.
   */
  async commit(block: Block, at: number, certificate?: unknown, extraRows: RowOp[] = [], options: { ids?: string[]; recoverable?: boolean; deferWrite?: boolean } = {}): Promise<CommittedBlock> {
    if (block.height !== this.#height + 1 || !equalBytes(block.parent, this.#head)) {
      throw new Error(`block ${block.height} does not follow the head of ${this.genesis.thread} (height ${this.#height})`);
    }
    const ids = block.entries.map((bytes, index) => options.ids?.[index] ?? entryIdOf(bytes));
    const rows: RowOp[] = ids.map((id, index) => ({ table: 'index' as const, key: ['entry', this.genesis.thread, id], value: [block.height, index] }));
    rows.push(...extraRows);
    const data: BlockEventData = { block: encodeBlock(block), certificate: certificate ?? null };
    const committed = { block, hash: blockHash(block), ...(certificate === undefined ? {} : { certificate }) };
    // The head moves now, so the next block can be built on it before this one is written; appends run in order.
    const previousHead = this.#head;
    this.#height = block.height;
    this.#head = committed.hash;
    this.#unwritten.set(block.height, committed);
    ids.forEach((id, index) => this.#unwrittenIds.set(id, { height: block.height, index }));
    if (options.recoverable) this.#notify(committed, ids);
    const write = () => this.#store.append(this.stream, [{ type: 'BLOCK', at, data }], { expectedHead: block.height - 1, rows });
    let written: Promise<number>;
    if (options.recoverable && options.deferWrite) {
      written = new Promise((resolve, reject) => this.#deferred.push(() => write().then(resolve, reject)));
    } else {
      this.flushWrites(); // blocks are written in height order
      written = write();
    }
    try {
      await written;
    } catch (err) {
      // Nothing after this block can be written either: back to what is on disk, and let the caller's actor crash.
      this.#height = this.#store.head(this.stream);
      this.#head = this.#height === block.height - 1 ? previousHead : this.#height === 0 ? genesisHash(this.genesis) : this.block(this.#height)!.hash;
      this.#unwritten.clear();
      this.#unwrittenIds.clear();
      throw err;
    }
    this.#unwritten.delete(block.height);
    for (const id of ids) this.#unwrittenIds.delete(id);
    if (!options.recoverable) this.#notify(committed, ids);
    return committed;
  }

  /** Issues the deferred block writes now, in order (in this turn: LMDB puts them in one transaction). */
  flushWrites(): void {
    const deferred = this.#deferred;
    this.#deferred = [];
    for (const write of deferred) write();
  }

  get hasDeferredWrites(): boolean {
    return this.#deferred.length > 0;
  }

  #notify(b: CommittedBlock, ids: string[]): void {
    for (const l of this.#listeners) l(b);
    ids.forEach((id, index) => {
      const waiting = this.#landing.get(id);
      if (!waiting) return;
      this.#landing.delete(id);
      for (const resolve of waiting) resolve({ height: b.block.height, index, hash: b.hash });
    });
  }

  /** Resolves when entry `id` is committed (at once when it is), with where it landed; rejects when `signal` aborts. */
  landed(id: string, signal: AbortSignal): Promise<{ height: number; index: number; hash: Uint8Array }> {
    const at = this.locate(id);
    if (at) return Promise.resolve({ ...at, hash: this.block(at.height)!.hash });
    return new Promise((resolve, reject) => {
      const waiting = this.#landing.get(id) ?? [];
      const settle = (r: { height: number; index: number; hash: Uint8Array }) => (signal.removeEventListener('abort', abort), resolve(r));
      const abort = () => {
        const list = this.#landing.get(id);
        const i = list?.indexOf(settle) ?? -1;
        if (i >= 0) list!.splice(i, 1);
        if (list?.length === 0) this.#landing.delete(id);
        reject(signal.reason);
      };
      waiting.push(settle);
      this.#landing.set(id, waiting);
      signal.addEventListener('abort', abort, { once: true });
    });
  }

  /** Every block committed from now on. Returns an unsubscribe function. */
  subscribe(listener: (b: CommittedBlock) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  verify(verify: Verify): ChainReport {
    return verifyChain(this.genesis, (function* (self) { for (const b of self.blocks()) yield b.block; })(this), verify);
  }
}

/** An entry's id, read from its canonical bytes (the chain checks the rest when it verifies). */
function entryIdOf(bytes: Uint8Array): string {
  return decodeEntry(bytes).id;
}
