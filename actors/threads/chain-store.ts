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
    const row = this.#store.getRow<[number, number]>('index', ['entry', this.genesis.thread, id]);
    return row && { height: row[0], index: row[1] };
  }

  block(height: number): CommittedBlock | undefined {
    const e = this.#store.readOne(this.stream, height);
    if (!e) return undefined;
    const data = e.data as BlockEventData;
    const block = decodeBlock(data.block);
    return { block, hash: blockHash(block), ...(data.certificate === null ? {} : { certificate: data.certificate }) };
  }

  /** Stored blocks from `height` on. */
  *blocks(from = 1): Generator<CommittedBlock> {
    for (let h = Math.max(1, from); h <= this.#height; h++) yield this.block(h)!;
  }

  /**
   * Append the next block (it must follow the head), with `extraRows` in the same transaction (`ids`: its entries'
   * ids when the caller has decoded them already). Resolves once
   * durable; then listeners see it. Entries whose id is already in the chain must have been left out by the caller.
   */
  async commit(block: Block, at: number, certificate?: unknown, extraRows: RowOp[] = [], ids?: string[]): Promise<CommittedBlock> {
    if (block.height !== this.#height + 1 || !equalBytes(block.parent, this.#head)) {
      throw new Error(`block ${block.height} does not follow the head of ${this.genesis.thread} (height ${this.#height})`);
    }
    const rows: RowOp[] = block.entries.map((bytes, index) => ({
      table: 'index' as const, key: ['entry', this.genesis.thread, ids?.[index] ?? entryIdOf(bytes)], value: [block.height, index],
    }));
    rows.push(...extraRows);
    const data: BlockEventData = { block: encodeBlock(block), certificate: certificate ?? null };
    await this.#store.append(this.stream, [{ type: 'BLOCK', at, data }], { expectedHead: this.#height, rows });
    const committed = { block, hash: blockHash(block), ...(certificate === undefined ? {} : { certificate }) };
    this.#height = block.height;
    this.#head = committed.hash;
    for (const l of this.#listeners) l(committed);
    return committed;
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
