// A scripted harness for one Tendermint core: the test plays every other validator by hand, signing their
// proposals and votes with their keys, and reads the core's Readys. For transcripts in the style of etcd raft's
// tests: "deliver this, expect that".
import {
  Tendermint,
  signBytes,
  type Message,
  type Proposal,
  type Ready,
  type TendermintConfig,
  type TendermintPersisted,
  type TimeoutParams,
  type Vote,
  type VoteType,
} from '../../machines/tendermint/index.ts';
import { GENESIS, THREAD, ed25519Crypto, fakeCrypto, hashBlock, validBlock, type Crypto, type SimBlock } from './tendermint-cluster.ts';

export const HARNESS_TIMEOUTS: TimeoutParams = {
  proposeBaseMs: 100,
  proposeDeltaMs: 50,
  prevoteBaseMs: 60,
  prevoteDeltaMs: 30,
  precommitBaseMs: 40,
  precommitDeltaMs: 20,
  gossipMs: 1000,
};

export interface HarnessOptions {
  n: number;
  /** Which validator the core under test is. */
  self: number;
  crypto?: 'fake' | 'ed25519';
}

export class Harness {
  readonly ids: string[];
  readonly crypto: Crypto;
  readonly self: number;
  /** Entries the shell holds: getBlock makes a block of them. */
  mempool: string[] = [];
  core: Tendermint<SimBlock>;
  /** Every Ready the core returned, in order. */
  readonly log: Ready<SimBlock>[] = [];
  #lastPersist: TendermintPersisted<SimBlock> | undefined;

  constructor(opts: HarnessOptions) {
    this.ids = Array.from({ length: opts.n }, (_, i) => `did:key:z6MkHarness${String.fromCharCode(65 + i)}`);
    this.crypto = opts.crypto === 'ed25519' ? ed25519Crypto(this.ids, 42) : fakeCrypto(this.ids, 42);
    this.self = opts.self;
    this.core = new Tendermint(this.config());
  }

  config(): TendermintConfig<SimBlock> {
    return {
      thread: THREAD,
      validators: this.ids,
      self: this.ids[this.self]!,
      timeouts: HARNESS_TIMEOUTS,
      sign: this.crypto.signer(this.ids[this.self]!),
      verify: this.crypto.verify,
      hashBlock,
      validBlock: (b, h, parent) => validBlock(b, h, parent, this.ids),
      getBlock: (height, parent) => (this.mempool.length === 0 ? null : { height, parent, proposer: this.ids[this.self]!, entries: [...this.mempool] }),
      genesisHash: GENESIS,
    };
  }

  #record(r: Ready<SimBlock>): Ready<SimBlock> {
    this.log.push(r);
    if (r.persist) this.#lastPersist = r.persist;
    return r;
  }

  start(): Ready<SimBlock> {
    return this.#record(this.core.start());
  }

  /** What the shell would have on disk now. */
  get persisted(): TendermintPersisted<SimBlock> | undefined {
    return this.#lastPersist;
  }

  /** Crash and restart from what was persisted (a copy, as if read back from disk). */
  restart(persisted = this.#lastPersist): Ready<SimBlock> {
    this.core = new Tendermint(this.config(), persisted && structuredClone(persisted));
    return this.start();
  }

  deliver(...messages: unknown[]): Ready<SimBlock> {
    const merged = emptyReady();
    for (const m of messages) mergeInto(merged, this.#record(this.core.step({ type: 'message', message: m })));
    return merged;
  }

  pending(entries: string[]): Ready<SimBlock> {
    this.mempool = entries;
    return this.#record(this.core.step({ type: 'entries-pending' }));
  }

  timeout(kind: 'propose' | 'prevote' | 'precommit', height: number, round: number): Ready<SimBlock> {
    return this.#record(this.core.step({ type: 'timeout', timeout: { kind, height, round, delayMs: 0 } }));
  }

  block(height: number, entries: string[], proposer: number, parent = GENESIS): SimBlock {
    return { height, parent, proposer: this.ids[proposer]!, entries };
  }

  proposal(from: number, height: number, round: number, block: SimBlock, validRound = -1): Proposal<SimBlock> {
    const unsigned = { type: 'proposal' as const, thread: THREAD, height, round, validRound, blockHash: hashBlock(block), block, validator: this.ids[from]! };
    return { ...unsigned, signature: this.crypto.signer(this.ids[from]!)(signBytes(unsigned)) };
  }

  vote(from: number, type: VoteType, height: number, round: number, block: SimBlock | null): Vote {
    const unsigned = { type, thread: THREAD, height, round, blockHash: block === null ? null : hashBlock(block), validator: this.ids[from]! };
    return { ...unsigned, signature: this.crypto.signer(this.ids[from]!)(signBytes(unsigned)) };
  }

  /** Votes of `type` from each of `from`. */
  votes(from: number[], type: VoteType, height: number, round: number, block: SimBlock | null): Vote[] {
    return from.map((i) => this.vote(i, type, height, round, block));
  }
}

export function emptyReady(): Ready<SimBlock> {
  return { persist: null, broadcast: [], timeouts: [], decided: [], evidence: [], requestCommits: [], sendCommits: [] };
}

function mergeInto(into: Ready<SimBlock>, r: Ready<SimBlock>): void {
  if (r.persist) into.persist = r.persist;
  into.broadcast.push(...r.broadcast);
  into.timeouts.push(...r.timeouts);
  into.decided.push(...r.decided);
  into.evidence.push(...r.evidence);
  into.requestCommits.push(...r.requestCommits);
  into.sendCommits.push(...r.sendCommits);
}

/** The votes of `type` in a Ready, as "round:hash|nil" strings (hash shortened), for compact expectations. */
export function sent(r: Ready<SimBlock>, type: Message<SimBlock>['type']): string[] {
  return r.broadcast.filter((m) => m.type === type).map((m) => `${m.round}:${m.blockHash === null ? 'nil' : m.blockHash.slice(0, 8)}`);
}

export const short = (b: SimBlock): string => hashBlock(b).slice(0, 8);
