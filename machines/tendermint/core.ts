// Tendermint BFT consensus for one thread, as a pure core: Buchman, Kwon and Milosevic, "The latest gossip on BFT
// consensus" (2018), Algorithm 1. Comments "line N" point at that algorithm.
//
// Contract (etcd raft's shape): the shell feeds one event at a time — a message from the network, a timeout that
// fired, "entries are pending", a certified block from a peer, a peer's height — and gets back a Ready saying what
// to do, in order:
//   1. persist `persist` (when not null) and store `decided` blocks with their certificates and `evidence`, in ONE
//      durable transaction, before anything else — the state holds every vote and proposal we signed, so a
//      validator that crashes and restarts never signs a conflicting one;
//   2. send `broadcast` to every other validator (direct streams; order does not matter, loss is survivable);
//   3. schedule `timeouts` (durations: the shell owns the clock) and step `{ type: 'timeout', timeout }` when each
//      fires — stale ones are ignored, so nothing needs cancelling, and keeping only the newest timer per kind is
//      fine;
//   4. serve `sendCommits` (a peer is behind: send it our certified blocks from that height as `commit` events) and
//      `requestCommits` (we are behind: ask that peer for them);
//   5. then, if it applied decided blocks and entries are still pending, step `entries-pending` again.
// Besides: `start()` once (fresh, or from the last persisted state after a crash); when a connection to a validator
// comes up, send it `status.height` and step what it sends back as `peer-height`.
// The core does no I/O, reads no clock and draws no random number: the same events give the same Readys. Crypto
// and the block format are injected (sign, verify, hashBlock, validBlock, getBlock), so the core never looks inside
// a block.
//
// Deviations from the paper, each for a reason:
//   - No empty blocks. A proposer proposes a new block only when the shell has said entries are pending (and
//     getBlock returns one); it always re-proposes its validValue (line 14), which liveness needs. A height nobody
//     has anything for is idle: no message, no timer. A validator starts timeoutPropose (line 18) and the gossip
//     timer only once the height is active — entries pending here, or a validly signed message for this height (or
//     the next) from another validator.
//   - Gossip. The paper assumes a message an honest validator received reaches every honest validator; over a
//     lossy network that is the gossip timer's job: while a height is active we re-send every message we hold
//     for this round and the last (ours and others'), and the proof of lock for our validValue.
//   - Catch-up. A validator that missed a height learns its block from a peer's commit certificate (`commit`
//     event), checked with verifyCommit: more than two thirds of precommits decide a block, whoever relays them.
//   - Rule order. When several upon-rules are enabled at once the core fires decide (49) before the timeout rules
//     (34, 47) and the lock rule (36) before 34, so a fast path schedules no pointless timer; the paper leaves the
//     order free.
import { verifyCommit, type CommitCertificate, type Verify } from './commit.ts';
import { makeEvidence, type Evidence } from './evidence.ts';
import { parseMessage, sameContent, type Message, type Proposal, type Vote, type VoteType } from './messages.ts';
import { HeightVotes } from './round-votes.ts';
import { signBytes } from './sign-bytes.ts';
import { DEFAULT_TIMEOUTS, timeoutMs, type StepTimeoutKind, type TimeoutParams } from './timeouts.ts';
import { oneHonest, proposer, quorum } from './validators.ts';

export type Step = 'propose' | 'prevote' | 'precommit';
const STEP_RANK: Record<Step, number> = { propose: 0, prevote: 1, precommit: 2 };

/** Messages for the next height kept per validator until we get there (a fast proposer is already there). */
const MAX_NEXT_HEIGHT_PER_VALIDATOR = 8;
/** Certified blocks kept ahead of our height while catching up out of order. */
const MAX_COMMITS_AHEAD = 64;

export interface TendermintConfig<B> {
  /** The thread id: signed into every message, so a vote counts in one thread only. */
  thread: string;
  /** Every validator's id (DID), in the thread's fixed order: the proposer rotation. */
  validators: readonly string[];
  /** Our id: one of `validators`. */
  self: string;
  timeouts?: Partial<TimeoutParams>;
  /** Our signature (Ed25519) over `bytes`. */
  sign(bytes: Uint8Array): Uint8Array;
  /** Is `signature` the signature of `validator` over `bytes`? */
  verify: Verify;
  /** The block's hash, lowercase hex; recomputed by receivers from the block itself. May throw on garbage. */
  hashBlock(block: B): string;
  /** valid(v) of the paper: may this block be decided at `height` after `parentHash`? May throw on garbage. */
  validBlock(block: B, height: number, parentHash: string): boolean;
  /**
   * A new block of pending entries for `height` after `parentHash`, or null when there is none. Called when we are
   * the proposer of a round and the shell has said entries are pending since the last decided block — never after
   * a decision in the same step, so the shell has applied every decided block (and dropped its entries from the
   * pending ones) before it is asked for the next.
   */
  getBlock(height: number, parentHash: string): B | null;
  /** The first height of a fresh thread (default 1) and the hash its first block follows (default ''). */
  initialHeight?: number;
  genesisHash?: string;
}

export type Timeout =
  | { kind: StepTimeoutKind; height: number; round: number; delayMs: number }
  | { kind: 'gossip'; height: number; seq: number; delayMs: number };

export type TendermintEvent =
  /** Anything a peer sent: checked here (shape, signer, signature, hash), never trusted. */
  | { type: 'message'; message: unknown }
  | { type: 'timeout'; timeout: Timeout }
  /** The shell holds entries not yet in a decided block. Send again after applying a decided block if some remain. */
  | { type: 'entries-pending' }
  /** A decided block with its certificate, from a peer serving our requestCommits (`from`: who sent it, if known). */
  | { type: 'commit'; block: unknown; certificate: CommitCertificate; from?: string }
  /**
   * A peer told us, over an authenticated connection, the height it is working on (`status.height`). Send ours to
   * each validator when a connection to it comes up: a validator that missed a height while the thread went idle
   * has no other way to find out.
   */
  | { type: 'peer-height'; peer: string; height: number };

export interface Decided<B> {
  height: number;
  block: B;
  blockHash: string;
  certificate: CommitCertificate;
}

/** What survives a crash. Everything else (votes received, timers) comes back by gossip. */
export interface TendermintPersisted<B> {
  v: 1;
  height: number;
  round: number;
  step: Step;
  /** The hash of the block decided at height - 1 (the genesis hash at the first height). */
  parentHash: string;
  lockedRound: number;
  lockedBlock: B | null;
  lockedHash: string | null;
  validRound: number;
  validBlock: B | null;
  validHash: string | null;
  /**
   * The proof of lock for validBlock: 2f+1 prevotes for it in validRound. We re-propose validBlock with it, and
   * the others accept only with it (line 28); some of those prevotes may exist nowhere else (a Byzantine
   * validator's, sent to us alone), so losing them in a crash could stall the thread.
   */
  validPol: Vote[];
  /** Every proposal and vote we signed at this height: never sign another for the same (round, type). */
  signed: Message<B>[];
}

export interface Ready<B> {
  persist: TendermintPersisted<B> | null;
  broadcast: Message<B>[];
  timeouts: Timeout[];
  decided: Decided<B>[];
  evidence: Evidence[];
  requestCommits: { from: string; height: number }[];
  sendCommits: { to: string; height: number }[];
}

export interface TendermintStatus {
  height: number;
  round: number;
  step: Step;
  proposer: string;
  lockedRound: number;
  lockedHash: string | null;
  validRound: number;
  validHash: string | null;
  /** Entries are pending here, or another validator is working on this height: timers run. */
  active: boolean;
}

interface Outbox<B> {
  broadcast: Set<Message<B>>;
  timeouts: Timeout[];
  decided: Decided<B>[];
  evidence: Evidence[];
  requestCommits: Map<string, number>;
  sendCommits: Map<string, number>;
}

function emptyOutbox<B>(): Outbox<B> {
  return { broadcast: new Set(), timeouts: [], decided: [], evidence: [], requestCommits: new Map(), sendCommits: new Map() };
}

export class Tendermint<B> {
  readonly #c: TendermintConfig<B>;
  readonly #validators: readonly string[];
  readonly #members: ReadonlySet<string>;
  readonly #q: number;
  readonly #oneHonest: number;
  readonly #timeouts: TimeoutParams;
  readonly #restored: boolean;

  // The paper's state (persisted).
  #height: number;
  #round = 0;
  #step: Step = 'propose';
  #parentHash: string;
  #lockedRound = -1;
  #lockedBlock: B | null = null;
  #lockedHash: string | null = null;
  #validRound = -1;
  #validBlock: B | null = null;
  #validHash: string | null = null;
  #validPol: Vote[] = [];
  /** `${type}/${round}` → what we signed at this height. */
  #signed = new Map<string, Message<B>>();

  // Volatile: rebuilt from gossip after a restart.
  #votes = new HeightVotes<B>();
  #nextHeight: Message<B>[] = [];
  #certified = new Map<number, { block: B; certificate: CommitCertificate }>();
  #pending = false;
  #heard = false;
  #proposeTimerFor = '';
  #gossipSeq = 0;
  #gossipArmed = false;
  #evidenceSeen = new Set<string>();
  /** The highest height of a validly signed message from each validator (what `peerHeight` answers). */
  #peerHeights = new Map<string, number>();
  #started = false;
  /** What the shell last persisted (or what we were restored from): persist again only when it differs. */
  #persisted: TendermintPersisted<B> | null = null;
  readonly #out: Outbox<B> = emptyOutbox();

  constructor(config: TendermintConfig<B>, persisted?: TendermintPersisted<B>) {
    const vs = config.validators;
    if (vs.length === 0) throw new Error('tendermint: no validators');
    if (new Set(vs).size !== vs.length) throw new Error('tendermint: a validator is listed twice');
    if (!vs.includes(config.self)) throw new Error(`tendermint: ${config.self} is not a validator`);
    this.#c = config;
    this.#validators = [...vs];
    this.#members = new Set(vs);
    this.#q = quorum(vs.length);
    this.#oneHonest = oneHonest(vs.length);
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...config.timeouts };
    this.#restored = persisted !== undefined;
    if (persisted) {
      this.#height = persisted.height;
      this.#round = persisted.round;
      this.#step = persisted.step;
      this.#parentHash = persisted.parentHash;
      this.#lockedRound = persisted.lockedRound;
      this.#lockedBlock = persisted.lockedBlock;
      this.#lockedHash = persisted.lockedHash;
      this.#validRound = persisted.validRound;
      this.#validBlock = persisted.validBlock;
      this.#validHash = persisted.validHash;
      this.#validPol = persisted.validPol;
      for (const m of persisted.signed) {
        if (m.height !== this.#height || m.validator !== config.self) continue;
        this.#signed.set(`${m.type}/${m.round}`, m);
        this.#record(m);
      }
      // Checked when they arrived; ours are in `signed` already.
      if (this.#validHash !== null) this.#votes.proposed.add(this.#validHash);
      for (const v of this.#validPol) {
        if (v.height === this.#height && !this.#votes.get(v.round)?.counted(v)) this.#record(v);
      }
      this.#persisted = persisted;
    } else {
      this.#height = config.initialHeight ?? 1;
      this.#parentHash = config.genesisHash ?? '';
    }
  }

  /** Call once, before any step: starts round 0 of a fresh thread, or resumes from the persisted state. */
  start(): Ready<B> {
    if (this.#started) throw new Error('tendermint: already started');
    this.#started = true;
    if (this.#restored) {
      // What we signed may not have left before the crash: send it again (the same bytes, never new ones).
      if (this.#signed.size > 0) this.#heard = true;
      for (const m of this.#signed.values()) this.#send(m);
      // Peers may have decided heights while we were down; with nothing pending we would never find out.
      for (const v of this.#validators) if (v !== this.#c.self) this.#requestCommits(v, this.#height);
      this.#tryPropose();
    } else {
      this.#startRound(this.#round);
    }
    return this.#finish();
  }

  step(event: TendermintEvent): Ready<B> {
    if (!this.#started) throw new Error('tendermint: step before start');
    switch (event.type) {
      case 'message':
        this.#onMessage(event.message);
        break;
      case 'timeout':
        this.#onTimeout(event.timeout);
        break;
      case 'entries-pending':
        this.#pending = true;
        this.#tryPropose();
        break;
      case 'commit':
        this.#onCommit(event.block, event.certificate, event.from);
        break;
      case 'peer-height':
        // A hint, not signed: a lie costs a useless request or reply, nothing else.
        if (!this.#members.has(event.peer) || event.peer === this.#c.self || !Number.isSafeInteger(event.height)) break;
        if (event.height > this.#height) this.#requestCommits(event.peer, this.#height);
        else if (event.height < this.#height && event.height >= 0) this.#sendCommits(event.peer, event.height);
        break;
    }
    return this.#finish();
  }

  /**
   * The highest height at which `validator` signed a message that reached us (checked), or -1. A validator that
   * signed something for a height above h has decided h: a shell may skip pushing it certified blocks up to h.
   */
  peerHeight(validator: string): number {
    return this.#peerHeights.get(validator) ?? -1;
  }

  get status(): TendermintStatus {
    return {
      height: this.#height, round: this.#round, step: this.#step, proposer: proposer(this.#validators, this.#height, this.#round),
      lockedRound: this.#lockedRound, lockedHash: this.#lockedHash, validRound: this.#validRound, validHash: this.#validHash,
      active: this.#active(),
    };
  }

  // ── The algorithm ────────────────────────────────────────────────────────────────────────────────────────

  /** Lines 10-21. The timeoutPropose of line 18 is #ensureTimers' business: only while the height is active. */
  #startRound(round: number): void {
    this.#round = round; // line 11
    this.#step = 'propose'; // line 12
    this.#tryPropose(); // lines 13-16
  }

  /** Lines 13-16, when we are the proposer and have something to propose. */
  #tryPropose(): void {
    if (this.#step !== 'propose' || proposer(this.#validators, this.#height, this.#round) !== this.#c.self) return;
    if (this.#signed.has(`proposal/${this.#round}`)) return;
    let block: B;
    let validRound: number;
    if (this.#validBlock !== null) {
      block = this.#validBlock; // line 14
      validRound = this.#validRound;
    } else {
      if (!this.#pending) return; // no empty blocks: wait in the propose step for entries
      const b = this.#c.getBlock(this.#height, this.#parentHash); // line 15
      if (b === null || b === undefined) {
        this.#pending = false;
        return;
      }
      block = b;
      validRound = -1;
    }
    const blockHash = this.#c.hashBlock(block);
    this.#signProposal(block, blockHash, validRound); // line 16
    // Send the proof of lock with it: receivers need it for line 28 and should not wait for gossip.
    if (validRound >= 0) for (const v of this.#votes.get(validRound)?.votesFor('prevote', blockHash) ?? []) this.#send(v);
  }

  /** Fires one enabled upon-rule (lines 22-56) and says so; #settle calls it until none is enabled. */
  #applyRule(): boolean {
    const q = this.#q;
    // Catch-up: a certified block for this height arrived earlier (out of order).
    const certified = this.#certified.get(this.#height);
    if (certified) {
      this.#certified.delete(this.#height);
      this.#decide(certified.block, certified.certificate.blockHash, certified.certificate);
      return true;
    }
    // Line 49: a proposal and 2f+1 precommits for it in any round decide it (line 50: if valid).
    for (const rv of this.#votes.rounds.values()) {
      const p = rv.proposal;
      if (p && rv.proposalValid && rv.precommitsFor(p.blockHash) >= q) {
        const certificate: CommitCertificate = {
          thread: this.#c.thread, height: this.#height, round: rv.round, blockHash: p.blockHash,
          precommits: rv.votesFor('precommit', p.blockHash),
        };
        this.#decide(p.block, p.blockHash, certificate);
        return true;
      }
    }
    // Line 55: f+1 validators are in a later round — at least one honest one is: go there.
    let later = -1;
    for (const rv of this.#votes.rounds.values()) {
      if (rv.round > this.#round && rv.round > later && rv.senders >= this.#oneHonest) later = rv.round;
    }
    if (later >= 0) {
      this.#startRound(later); // line 56
      return true;
    }
    const rv = this.#votes.get(this.#round);
    if (!rv) return false;
    const p = rv.proposal;
    if (this.#step === 'propose' && p) {
      if (p.validRound === -1) {
        // Line 22: a fresh proposal. Prevote it unless we are locked on another block (line 23).
        const ok = rv.proposalValid && (this.#lockedRound === -1 || this.#lockedHash === p.blockHash);
        this.#vote('prevote', ok ? p.blockHash : null); // lines 23-26
        this.#step = 'prevote'; // line 27
        return true;
      }
      const pol = this.#votes.get(p.validRound);
      if (pol && pol.prevotesFor(p.blockHash) >= q) {
        // Line 28: a re-proposal with its proof of lock (2f+1 prevotes in validRound < round). A POL at least as
        // recent as our lock releases it (line 29): the lock we hold can no longer have been decided on.
        const ok = rv.proposalValid && (this.#lockedRound <= p.validRound || this.#lockedHash === p.blockHash);
        this.#vote('prevote', ok ? p.blockHash : null); // lines 29-32
        this.#step = 'prevote'; // line 33
        return true;
      }
    }
    if (STEP_RANK[this.#step] >= STEP_RANK.prevote && p && rv.proposalValid && !rv.lockRuleFired && rv.prevotesFor(p.blockHash) >= q) {
      // Line 36: a proof of lock in this round, for the first time.
      rv.lockRuleFired = true;
      if (this.#step === 'prevote') {
        this.#lockedBlock = p.block; // line 38
        this.#lockedHash = p.blockHash;
        this.#lockedRound = this.#round; // line 39
        this.#vote('precommit', p.blockHash); // line 40
        this.#step = 'precommit'; // line 41
      }
      this.#validBlock = p.block; // line 42
      this.#validHash = p.blockHash;
      this.#validRound = this.#round; // line 43
      this.#validPol = rv.votesFor('prevote', p.blockHash);
      return true;
    }
    if (this.#step === 'prevote' && rv.prevotesFor(null) >= q) {
      // Line 44: 2f+1 prevoted nil: nothing can be decided this round.
      this.#vote('precommit', null); // line 45
      this.#step = 'precommit'; // line 46
      return true;
    }
    if (this.#step === 'prevote' && !rv.prevoteTimeoutScheduled && rv.prevotes.size >= q) {
      // Line 34: 2f+1 prevotes, but for nothing we can precommit yet.
      rv.prevoteTimeoutScheduled = true;
      this.#schedule('prevote'); // line 35
      return true;
    }
    if (!rv.precommitTimeoutScheduled && rv.precommits.size >= q) {
      // Line 47: 2f+1 precommits for anything.
      rv.precommitTimeoutScheduled = true;
      this.#schedule('precommit'); // line 48
      return true;
    }
    return false;
  }

  /** Lines 51-54 (also a certified block from a peer): decide, move to the next height, start its round 0. */
  #decide(block: B, blockHash: string, certificate: CommitCertificate): void {
    this.#out.decided.push({ height: this.#height, block, blockHash, certificate }); // line 51
    this.#height += 1; // line 52
    this.#parentHash = blockHash;
    this.#lockedRound = -1; // line 53
    this.#lockedBlock = null;
    this.#lockedHash = null;
    this.#validRound = -1;
    this.#validBlock = null;
    this.#validHash = null;
    this.#validPol = [];
    this.#signed = new Map();
    this.#votes = new HeightVotes();
    this.#evidenceSeen = new Set();
    // Pending is a hint about the last height: the shell says it again once it has applied this block.
    this.#pending = false;
    this.#heard = false;
    this.#gossipArmed = false;
    for (const h of this.#certified.keys()) if (h < this.#height) this.#certified.delete(h);
    const early = this.#nextHeight;
    this.#nextHeight = [];
    this.#startRound(0); // line 54
    for (const m of early) this.#accept(m, true);
  }

  #onTimeout(t: Timeout): void {
    if (t.height !== this.#height) return;
    if (t.kind === 'gossip') {
      if (t.seq !== this.#gossipSeq) return;
      this.#gossipArmed = false;
      this.#gossip();
      return;
    }
    if (t.round !== this.#round) return;
    // Only a timer this core asked for counts (not one re-armed from before a restart, say).
    const rv = this.#votes.get(t.round);
    const asked = t.kind === 'propose' ? this.#proposeTimerFor === `${t.height}/${t.round}`
      : t.kind === 'prevote' ? rv?.prevoteTimeoutScheduled === true : rv?.precommitTimeoutScheduled === true;
    if (!asked) return;
    if (t.kind === 'propose' && this.#step === 'propose') {
      this.#vote('prevote', null); // lines 57-60
      this.#step = 'prevote';
    } else if (t.kind === 'prevote' && this.#step === 'prevote') {
      this.#vote('precommit', null); // lines 61-64
      this.#step = 'precommit';
    } else if (t.kind === 'precommit') {
      this.#startRound(this.#round + 1); // lines 65-67
    }
  }

  /**
   * Re-send what lets the others make progress if some of it was lost: everything we hold for this round and the
   * last — others' messages too, since a Byzantine validator may have shown a vote to us alone, and the quorum it
   * completed is what moved us here (honest validators left behind need that same quorum to follow) — and the
   * proof of lock for our validValue.
   */
  #gossip(): void {
    for (const m of this.#signed.values()) if (m.round >= this.#round - 1) this.#send(m);
    for (const round of [this.#round - 1, this.#round]) for (const m of this.#votes.get(round)?.messages() ?? []) this.#send(m);
    if (this.#validRound >= 0) {
      const pol = this.#votes.get(this.#validRound);
      if (pol?.proposal) this.#send(pol.proposal);
      for (const v of pol?.votesFor('prevote', this.#validHash) ?? []) this.#send(v);
    }
  }

  // ── Messages in ──────────────────────────────────────────────────────────────────────────────────────────

  #onMessage(raw: unknown): void {
    const m = parseMessage<B>(raw, this.#c.thread, this.#members);
    // Our own messages come back through relays and gossip; we hold every one we signed.
    if (!m || m.validator === this.#c.self) return;
    if (m.height < this.#height) {
      // Its signer is still working on a height we have decided: it needs the certified blocks.
      if (this.#signatureValid(m)) this.#sendCommits(m.validator, m.height);
      return;
    }
    if (m.height > this.#height) {
      if (!this.#signatureValid(m)) return;
      if (m.height === this.#height + 1) {
        // Usually a proposer that decided a moment before us. Keep it; and if we are stuck behind, being active
        // makes us time out and send our votes, which makes the peers send us the certified block.
        this.#keepForNextHeight(m);
        this.#heard = true;
      } else {
        this.#requestCommits(m.validator, this.#height);
      }
      return;
    }
    this.#accept(m, false);
  }

  /** A message for the current height into the log (or into evidence). */
  #accept(m: Message<B>, signatureChecked: boolean): void {
    if (m.type === 'proposal' && m.validator !== proposer(this.#validators, this.#height, m.round)) return;
    const rv = this.#votes.get(m.round);
    const first = rv && (m.type === 'proposal' ? rv.proposal : rv.vote(m.type, m.validator));
    if (first) {
      // A duplicate, a retransmission, or a second vote already counted.
      if (m.type === 'proposal' ? sameContent(first, m) : rv.counted(m)) return;
      if (!signatureChecked && !this.#signatureValid(m)) return;
      this.#equivocation(first, m);
      // round-votes.ts says why a second vote still counts for a block that matters.
      if (m.type !== 'proposal' && (m.blockHash === null || this.#votes.proposed.has(m.blockHash))) rv.addVote(m);
      return;
    }
    if (!signatureChecked && !this.#signatureValid(m)) return;
    if (!this.#votes.admit(m.validator, m.round, this.#round)) return;
    if (m.type === 'proposal') {
      // The signature covers the hash only: a block that does not hash to it is not the proposer's. Refuse it
      // without remembering it, so the real one is still accepted when it arrives.
      if (this.#safeHash(m.block) !== m.blockHash) return;
      this.#votes.at(m.round).setProposal(m, this.#safeValid(m.block));
      this.#votes.proposed.add(m.blockHash);
    } else {
      this.#votes.at(m.round).addVote(m);
    }
    this.#votes.noteStored(m.validator, m.round);
    this.#heard = true;
  }

  #equivocation(first: Message<B>, second: Message<B>): void {
    const key = `${first.validator}/${first.type}/${first.round}`;
    if (this.#evidenceSeen.has(key)) return;
    this.#evidenceSeen.add(key);
    this.#out.evidence.push(makeEvidence(first, second));
  }

  #keepForNextHeight(m: Message<B>): void {
    let mine = 0;
    for (const k of this.#nextHeight) {
      if (sameContent(k, m)) return;
      if (k.validator === m.validator) mine++;
    }
    if (mine < MAX_NEXT_HEIGHT_PER_VALIDATOR) this.#nextHeight.push(m);
  }

  #onCommit(block: unknown, cert: CommitCertificate, from: string | undefined): void {
    if (typeof cert !== 'object' || cert === null || cert.thread !== this.#c.thread) return;
    if (!Number.isSafeInteger(cert.height) || cert.height < this.#height || cert.height > this.#height + MAX_COMMITS_AHEAD) return;
    if (this.#certified.has(cert.height)) return;
    if (this.#safeHash(block as B) !== cert.blockHash) return;
    if (!verifyCommit(cert, this.#validators, this.#c.verify).ok) return;
    // More than two thirds precommitted it: it is decided, whatever our own log says (validBlock is not asked:
    // the honest validators among the signers have checked it).
    this.#certified.set(cert.height, { block: block as B, certificate: cert });
    if (from !== undefined && from !== this.#c.self && this.#members.has(from)) {
      // The peer may hold more: ask for what follows (it answers nothing when it has nothing).
      this.#requestCommits(from, cert.height === this.#height ? cert.height + 1 : this.#height);
    }
  }

  // ── Messages out ─────────────────────────────────────────────────────────────────────────────────────────

  #vote(type: VoteType, blockHash: string | null): void {
    this.#sign({ type, thread: this.#c.thread, height: this.#height, round: this.#round, blockHash, validator: this.#c.self });
  }

  #signProposal(block: B, blockHash: string, validRound: number): void {
    this.#sign({
      type: 'proposal', thread: this.#c.thread, height: this.#height, round: this.#round, validRound, blockHash, block,
      validator: this.#c.self,
    });
  }

  /**
   * Sign, remember (persisted with this step's state), count our own message, send it. At most one message per
   * (height, round, type), ever: if one was signed already — before a crash, say — that one is sent again.
   */
  #sign(unsigned: Omit<Vote, 'signature'> | Omit<Proposal<B>, 'signature'>): void {
    const key = `${unsigned.type}/${unsigned.round}`;
    const prior = this.#signed.get(key);
    if (prior) {
      this.#send(prior);
      return;
    }
    const m = { ...unsigned, signature: this.#c.sign(signBytes(unsigned)) } as Message<B>;
    this.#signed.set(key, m);
    this.#record(m);
    this.#send(m);
  }

  /** A message into the log unchecked: one of ours, or one checked before it was persisted (validPol). */
  #record(m: Message<B>): void {
    const rv = this.#votes.at(m.round);
    if (m.type === 'proposal') {
      rv.setProposal(m, this.#safeHash(m.block) === m.blockHash && this.#safeValid(m.block));
      this.#votes.proposed.add(m.blockHash);
    } else {
      rv.addVote(m);
    }
    this.#votes.noteStored(m.validator, m.round);
  }

  #send(m: Message<B>): void {
    if (this.#validators.length > 1) this.#out.broadcast.add(m);
  }

  #requestCommits(from: string, height: number): void {
    const h = this.#out.requestCommits.get(from);
    if (h === undefined || height < h) this.#out.requestCommits.set(from, height);
  }

  #sendCommits(to: string, height: number): void {
    const h = this.#out.sendCommits.get(to);
    if (h === undefined || height < h) this.#out.sendCommits.set(to, height);
  }

  #schedule(kind: StepTimeoutKind): void {
    this.#out.timeouts.push({ kind, height: this.#height, round: this.#round, delayMs: timeoutMs(this.#timeouts, kind, this.#round) });
  }

  // ── Step plumbing ────────────────────────────────────────────────────────────────────────────────────────

  #active(): boolean {
    return this.#pending || this.#heard;
  }

  /** Timers exist only while the height is active: an idle thread makes no timer churn. */
  #ensureTimers(): void {
    if (!this.#active()) return;
    if (this.#validators.length > 1 && !this.#gossipArmed) {
      this.#gossipArmed = true;
      this.#gossipSeq += 1;
      this.#out.timeouts.push({ kind: 'gossip', height: this.#height, seq: this.#gossipSeq, delayMs: this.#timeouts.gossipMs });
    }
    // Line 18, for a proposer without a block too: it must still take part in the round.
    const key = `${this.#height}/${this.#round}`;
    if (this.#step === 'propose' && this.#proposeTimerFor !== key) {
      this.#proposeTimerFor = key;
      this.#schedule('propose');
    }
  }

  #settle(): void {
    for (let i = 0; this.#applyRule(); i++) {
      if (i > 1_000_000) throw new Error('tendermint: the upon-rules do not settle (a bug)');
    }
  }

  #finish(): Ready<B> {
    this.#settle();
    this.#ensureTimers();
    let persist: TendermintPersisted<B> | null = null;
    if (this.#stateChanged()) {
      persist = {
        v: 1, height: this.#height, round: this.#round, step: this.#step, parentHash: this.#parentHash,
        lockedRound: this.#lockedRound, lockedBlock: this.#lockedBlock, lockedHash: this.#lockedHash,
        validRound: this.#validRound, validBlock: this.#validBlock, validHash: this.#validHash, validPol: this.#validPol,
        signed: [...this.#signed.values()],
      };
      this.#persisted = persist;
    }
    const out = this.#out;
    const ready: Ready<B> = {
      persist,
      broadcast: out.broadcast.size === 0 ? [] : [...out.broadcast],
      timeouts: out.timeouts,
      decided: out.decided,
      evidence: out.evidence,
      requestCommits: out.requestCommits.size === 0 ? [] : [...out.requestCommits].map(([from, height]) => ({ from, height })),
      sendCommits: out.sendCommits.size === 0 ? [] : [...out.sendCommits].map(([to, height]) => ({ to, height })),
    };
    out.broadcast.clear();
    out.requestCommits.clear();
    out.sendCommits.clear();
    out.timeouts = [];
    out.decided = [];
    out.evidence = [];
    return ready;
  }

  /** Has a persisted field changed since the last persist? (`signed` only grows within a height.) */
  #stateChanged(): boolean {
    const p = this.#persisted;
    return p === null || p.height !== this.#height || p.round !== this.#round || p.step !== this.#step
      || p.parentHash !== this.#parentHash || p.lockedRound !== this.#lockedRound || p.lockedHash !== this.#lockedHash
      || p.validRound !== this.#validRound || p.validHash !== this.#validHash || p.signed.length !== this.#signed.size;
  }

  /** Whether `m` carries its signer's valid signature; a valid one also tells how far its signer got (peerHeight). */
  #signatureValid(m: Message<B>): boolean {
    let valid: boolean;
    try {
      valid = this.#c.verify(m.validator, signBytes(m), m.signature);
    } catch {
      return false;
    }
    if (valid && m.height > (this.#peerHeights.get(m.validator) ?? -1)) this.#peerHeights.set(m.validator, m.height);
    return valid;
  }

  #safeHash(block: B): string | null {
    try {
      return this.#c.hashBlock(block);
    } catch {
      return null;
    }
  }

  #safeValid(block: B): boolean {
    try {
      return this.#c.validBlock(block, this.#height, this.#parentHash) === true;
    } catch {
      return false;
    }
  }
}
