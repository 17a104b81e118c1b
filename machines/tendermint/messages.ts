// The three signed messages of Tendermint, and the check every message from the network passes before the core
// looks at it (a Byzantine peer can send anything: wrong types, huge numbers, another thread's votes).
//
//   proposal   ⟨PROPOSAL, height, round, block, validRound⟩ from the round's proposer; it signs the block's hash
//              (and validRound), not the block: receivers recompute the hash from the block they got.
//   prevote    ⟨PREVOTE, height, round, hash | nil⟩
//   precommit  ⟨PRECOMMIT, height, round, hash | nil⟩
//
// Every message names its signer (`validator`) and carries its signature over `signBytes` (sign-bytes.ts), so it
// can be relayed by anyone and checked by everyone. Block hashes are lowercase hex: one spelling per hash, so two
// strings that differ are two different hashes (an upper-case copy of an honest vote must not look like a second,
// conflicting vote).

export type VoteType = 'prevote' | 'precommit';
export type MessageType = 'proposal' | VoteType;

/** A block hash as the core handles it: lowercase hex of 1–255 bytes. */
export const HASH_HEX = /^(?:[0-9a-f]{2}){1,255}$/;
/** Rounds stay below this so that validRound (round - 1 at most) fits a signed 32-bit field. */
export const MAX_ROUND = 0x7fff_fffe;

export interface Vote {
  type: VoteType;
  thread: string;
  height: number;
  round: number;
  /** The block voted for; null is the paper's nil. */
  blockHash: string | null;
  validator: string;
  signature: Uint8Array;
}

export interface Proposal<B> {
  type: 'proposal';
  thread: string;
  height: number;
  round: number;
  /** The round of the proof of lock for this block (the paper's validRound), or -1. */
  validRound: number;
  blockHash: string;
  block: B;
  /** The proposer. */
  validator: string;
  signature: Uint8Array;
}

/** What a proposer signs, without the block: what evidence of a double proposal keeps. */
export type ProposalHeader = Omit<Proposal<unknown>, 'block'>;

export type Message<B> = Proposal<B> | Vote;

/** A signed message without its block: the part the signature covers, plus the signature. */
export type SignedHeader = Vote | ProposalHeader;

export function header(m: Message<unknown>): SignedHeader {
  if (m.type !== 'proposal') return m;
  const { block: _block, ...rest } = m;
  return rest;
}

/** Same signed content (the signature itself may differ and still be valid: it is not a second statement). */
export function sameContent(a: SignedHeader, b: SignedHeader): boolean {
  return a.type === b.type && a.thread === b.thread && a.height === b.height && a.round === b.round && a.blockHash === b.blockHash
    && a.validator === b.validator && validRoundOf(a) === validRoundOf(b);
}

export function validRoundOf(m: SignedHeader): number {
  return m.type === 'proposal' ? m.validRound : -1;
}

function isUint(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;
}

/**
 * `raw` as a message of `thread` signed (so it says) by one of `validators`, or null when it is not one: a wrong
 * shape, an unknown signer, another thread, an impossible round. The signature is not checked here.
 */
export function parseMessage<B>(raw: unknown, thread: string, validators: ReadonlySet<string>): Message<B> | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const m = raw as Record<string, unknown>;
  if (m.thread !== thread) return null;
  if (typeof m.validator !== 'string' || !validators.has(m.validator)) return null;
  if (!isUint(m.height) || !isUint(m.round, MAX_ROUND)) return null;
  if (!(m.signature instanceof Uint8Array) || m.signature.length === 0 || m.signature.length > 1024) return null;
  if (m.type === 'prevote' || m.type === 'precommit') {
    if (m.blockHash !== null && (typeof m.blockHash !== 'string' || !HASH_HEX.test(m.blockHash))) return null;
    return {
      type: m.type, thread, height: m.height, round: m.round, blockHash: m.blockHash as string | null,
      validator: m.validator, signature: m.signature,
    };
  }
  if (m.type === 'proposal') {
    if (typeof m.blockHash !== 'string' || !HASH_HEX.test(m.blockHash)) return null;
    const vr = m.validRound;
    if (typeof vr !== 'number' || !Number.isSafeInteger(vr) || vr < -1 || vr >= m.round) return null;
    if (m.block === undefined) return null;
    return {
      type: 'proposal', thread, height: m.height, round: m.round, validRound: vr, blockHash: m.blockHash,
      block: m.block as B, validator: m.validator, signature: m.signature,
    };
  }
  return null;
}
