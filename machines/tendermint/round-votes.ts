// The message log of one height, as the paper's upon-rules read it: per round, the proposal and the prevotes and
// precommits, tallied by block hash (nil included) so "2f+1 ⟨PREVOTE, h, r, id(v)⟩" is a map lookup.
//
// Equivocation. A validator's first vote of a kind in a round is the one "any value" thresholds count (lines 34,
// 47, 55), so nobody counts twice there. A different second vote is evidence (the caller's business), and it still
// counts towards ITS block's tally when that block matters (nil, or a block proposed at this height): otherwise a
// Byzantine validator that showed us nil and showed others block B would make the proof of lock for B — which
// exists, signed — invisible to us forever, and a validator locked on B could never convince us. Counting it is
// safe: two quorums for different blocks in one round would still need an honest validator in both.
//
// Memory is bounded whatever a Byzantine validator sends: rounds at or below ours are bounded by honest progress
// (we reach a round only through a quorum or through f+1 validators there), and above ours each validator holds at
// most MAX_FUTURE_ROUNDS rounds — a message for a higher one evicts its lowest, so an honest validator that moves
// on is never shut out. (Tendermint's own vote sets use the same idea, "catch-up rounds" per peer.) Second votes
// are kept only for blocks that matter, at most one per proposal.
import type { Proposal, Vote, VoteType } from './messages.ts';

export const MAX_FUTURE_ROUNDS = 2;
const NIL = '';

const key = (hash: string | null): string => hash ?? NIL;

export class RoundVotes<B> {
  readonly round: number;
  /** The proposal from this round's proposer (already checked: signed, hash recomputed from the block). */
  proposal: Proposal<B> | null = null;
  /** valid(v) of the paper, computed once when the proposal arrived. */
  proposalValid = false;
  /** Each validator's first prevote and precommit in this round. */
  readonly prevotes = new Map<string, Vote>();
  readonly precommits = new Map<string, Vote>();
  // The paper's "for the first time" (lines 34, 36, 47): volatile, so a restart may fire them again, harmlessly.
  prevoteTimeoutScheduled = false;
  lockRuleFired = false;
  precommitTimeoutScheduled = false;
  /** hash (or NIL) → validator → its vote for it: first votes and counted second votes. */
  readonly #prevotesByHash = new Map<string, Map<string, Vote>>();
  readonly #precommitsByHash = new Map<string, Map<string, Vote>>();
  /** Validators with any message in this round (line 55). */
  readonly #senders = new Set<string>();

  constructor(round: number) {
    this.round = round;
  }

  /** The validator's first vote of this type in this round. */
  vote(type: VoteType, validator: string): Vote | undefined {
    return (type === 'prevote' ? this.prevotes : this.precommits).get(validator);
  }

  /** Is this validator's vote for this block counted already? */
  counted(v: Vote): boolean {
    return this.#byHash(v.type).get(key(v.blockHash))?.has(v.validator) ?? false;
  }

  setProposal(p: Proposal<B>, valid: boolean): void {
    this.proposal = p;
    this.proposalValid = valid;
    this.#senders.add(p.validator);
  }

  /** A first vote; or, when the validator has one, a second one counted for its block (see the header). */
  addVote(v: Vote): void {
    const first = v.type === 'prevote' ? this.prevotes : this.precommits;
    if (!first.has(v.validator)) first.set(v.validator, v);
    const byHash = this.#byHash(v.type);
    let voters = byHash.get(key(v.blockHash));
    if (!voters) {
      voters = new Map();
      byHash.set(key(v.blockHash), voters);
    }
    voters.set(v.validator, v);
    this.#senders.add(v.validator);
  }

  /** Forget everything `validator` said in this round (its future-round slot went to a higher round). */
  removeValidator(validator: string): void {
    if (this.proposal?.validator === validator) {
      this.proposal = null;
      this.proposalValid = false;
    }
    this.prevotes.delete(validator);
    this.precommits.delete(validator);
    for (const byHash of [this.#prevotesByHash, this.#precommitsByHash]) {
      for (const [k, voters] of byHash) {
        voters.delete(validator);
        if (voters.size === 0) byHash.delete(k);
      }
    }
    this.#senders.delete(validator);
  }

  /** Distinct validators that prevoted `hash` (null: nil). */
  prevotesFor(hash: string | null): number {
    return this.#prevotesByHash.get(key(hash))?.size ?? 0;
  }

  precommitsFor(hash: string | null): number {
    return this.#precommitsByHash.get(key(hash))?.size ?? 0;
  }

  /** Distinct validators with any message in this round. */
  get senders(): number {
    return this.#senders.size;
  }

  /** Everything counted in this round: the proposal, then every counted vote. */
  *messages(): Iterable<Proposal<B> | Vote> {
    if (this.proposal) yield this.proposal;
    for (const byHash of [this.#prevotesByHash, this.#precommitsByHash]) for (const voters of byHash.values()) yield* voters.values();
  }

  /** The votes for `hash`, one per validator. */
  votesFor(type: VoteType, hash: string | null): Vote[] {
    return [...(this.#byHash(type).get(key(hash))?.values() ?? [])];
  }

  #byHash(type: VoteType): Map<string, Map<string, Vote>> {
    return type === 'prevote' ? this.#prevotesByHash : this.#precommitsByHash;
  }
}

export class HeightVotes<B> {
  readonly rounds = new Map<number, RoundVotes<B>>();
  /** Hashes of the blocks proposed at this height: the blocks second votes are kept for. */
  readonly proposed = new Set<string>();
  /** The rounds each validator has messages in. */
  readonly #roundsOf = new Map<string, Set<number>>();

  get(round: number): RoundVotes<B> | undefined {
    return this.rounds.get(round);
  }

  at(round: number): RoundVotes<B> {
    let rv = this.rounds.get(round);
    if (!rv) {
      rv = new RoundVotes<B>(round);
      this.rounds.set(round, rv);
    }
    return rv;
  }

  /**
   * May `validator` store a message for `round` while we are at `current`? Always at or below it; above it, in at
   * most MAX_FUTURE_ROUNDS rounds per validator, a higher one evicting the lowest.
   */
  admit(validator: string, round: number, current: number): boolean {
    if (round <= current) return true;
    const mine = this.#roundsOf.get(validator);
    if (!mine || mine.has(round)) return true;
    const future = [...mine].filter((r) => r > current);
    if (future.length < MAX_FUTURE_ROUNDS) return true;
    const lowest = Math.min(...future);
    if (round < lowest) return false;
    this.rounds.get(lowest)?.removeValidator(validator);
    mine.delete(lowest);
    return true;
  }

  /** Record that `validator` now has a message in `round` (after admit). */
  noteStored(validator: string, round: number): void {
    let mine = this.#roundsOf.get(validator);
    if (!mine) {
      mine = new Set();
      this.#roundsOf.set(validator, mine);
    }
    mine.add(round);
  }
}
