// The Tendermint actor of one thread on this validator: a thin shell around the pure core (machines/tendermint). It
// feeds the core one event at a time, writes what a Ready says must survive before sending anything, runs the
// core's timers on the injected clock, carries its messages over signed envelopes on the direct libp2p sessions
// between validators, and stores decided blocks, with their commit certificates, in the chain.
//
//   persisted   stream `thread-tm/<id>`: one READY event per Ready that has something to keep — the core's
//               `persist` state (every vote and proposal it signed at the current height, its lock), the heights it
//               decided and the evidence it found — so `replay thread-tm/<id>` shows the consensus log, and a
//               restart resumes from the last state: it never signs a vote conflicting with one it sent
//   trimmed     after TRIM_AFTER_EVENTS events, a write starts with a BASE event (the last state written) and
//               replaces every earlier event in the same transaction (the event store's `rebase`): the stream stays
//               small — decided blocks are in the chain, evidence in its rows — and `replay` shows the recent heights
//   blocks      decided blocks go to the chain (chain-store.ts) with their certificates, in the same LMDB
//               transaction as the READY events (all issued in one event-loop turn, blocks first: lmdb-js commits
//               them as one transaction, in order). So the chain is never behind the state; should it ever be ahead
//               (the state is then for a decided height), the core starts afresh at the next height — safe, since
//               nothing can be signed for a decided height
//   evidence    kept in the READY event and as ['tm-evidence', thread, …] index rows (same append) for GetThread
//   entries     an appended entry is pending here (durably with return_on_accept, as Raft does) and sent to the
//               other validators (their mempool): whichever is the proposer has it. getBlock proposes the pending
//               entries not yet in the chain; validBlock refuses a block with an entry already in the chain, a
//               repeated id, or an entry not signed by a replica of the thread — every validator decides the same —
//               and one timed before its parent or more than a minute ahead of our clock (prevote nil: the next
//               round's proposer proposes again)
//   catch-up    on a connection to a validator, heights are exchanged (`status`); a validator behind asks
//               (`sync`) and gets at most 8 certified blocks per reply, a validator ahead pushes them (`commits`)
//               — to one whose message for a decided height arrives, only if 150 ms later it has still signed
//               nothing newer (the last votes of a height usually arrive just after we decided it)
//   f = 0       one validator decides in one step: no network, no timer
//   pipeline    a message that arrives while a write is being fsynced is stepped at once and its write issued
//               behind it; each batch sends and sets timers only once its own write and every earlier batch's are
//               done (#drive). New entries wait for the write in flight instead, so they make one block together
//
// Wire: one envelope type ('thread.tm', see threads.ts) with payload { thread, k, … }: proposals and votes, entries
// and pushed certified blocks go one-way (`tell`: one envelope per validator for everything sent in a turn, no reply
// envelope); `status` and `sync` are requests, their replies carry the answer. Messages are passed to the core as
// decoded; it checks every field and signature itself (and drops duplicates before verifying).
import type { EventStore, RowOp } from '../../runtime/event-store.ts';
import {
  BLOCK_MAX_ENTRIES, blockHash, decodeEntry, entrySigningBytes, makeBlock, merkleRoot, toHex, type Block, type Sign, type Verify,
} from '../../machines/chain.ts';
import {
  Tendermint, type CommitCertificate, type Decided, type Evidence, type Message, type Ready, type TendermintEvent,
  type TendermintPersisted, type TendermintStatus, type TimeoutParams,
} from '../../machines/tendermint/index.ts';
import { equalBytes } from '../../runtime/canonical-cbor.ts';
import type { ReplicaOptions } from './replica-options.ts';

export const TM_PREFIX = 'thread-tm/';
/** A proposal travels in one envelope (1 MiB): its block stays well under. */
const MAX_BLOCK_BYTES = 512 * 1024;
const MAX_BLOCK_ENTRIES = Math.min(1024, BLOCK_MAX_ENTRIES);
/** Certified blocks per catch-up reply (and about this many bytes at most). */
const COMMITS_PER_REPLY = 8;
const COMMITS_REPLY_BYTES = 640 * 1024;
/** Messages per envelope, sent and accepted. */
const MAX_MSGS_PER_ENVELOPE = 64;
/** Entries held for others (forwarded to us) at most. */
const MAX_FORWARDED = 10_000;
/** A pending entry of ours not committed after this long is sent to the validators again. */
const RESEND_MS = 2_000;
/** How long a validator that seems behind gets to show it moved on before we push it certified blocks. */
const PUSH_DELAY_MS = 150;
const MAX_EVIDENCE_ROWS = 1_000;
/** Events written (about three per height) after which the consensus log is trimmed to its last state (#persist). */
const TRIM_AFTER_EVENTS = 3_000;
/**
 * How far ahead of our clock a proposed block's time may be (validators' clocks differ). Further ahead, or before
 * its parent's time, the block is not valid: a Byzantine proposer cannot stamp the chain with any time it likes.
 */
const MAX_BLOCK_TIME_AHEAD_MS = 60_000;
const EVIDENCE_KEY = 'tm-evidence';
/** Network messages waiting for a step at most; beyond, they are dropped (the gossip sends them again). */
const MAX_INBOX = 20_000;

/** What travels in a 'thread.tm' envelope. */
export type TmPayload =
  /** Proposals and votes (ours, or others' relayed by the gossip). */
  | { thread: string; k: 'msgs'; msgs: unknown[] }
  /** Signed entries for the proposer's block. */
  | { thread: string; k: 'entries'; entries: Uint8Array[] }
  /** Our height (status.height); the reply carries the receiver's: { height }. */
  | { thread: string; k: 'status'; height: number }
  /** Certified blocks from `height`, please; the reply: { commits }. */
  | { thread: string; k: 'sync'; height: number }
  /** Certified blocks the receiver is missing. */
  | { thread: string; k: 'commits'; commits: CertifiedBlock[] };

export interface CertifiedBlock {
  block: unknown;
  certificate: CommitCertificate;
}

export interface TendermintValidatorOptions extends ReplicaOptions {
  verify: Verify;
  /** Our identity's Ed25519 signature. */
  sign: Sign;
  /** Sends one request to a validator; resolves with its reply's payload (rejects when it cannot be reached). */
  send(to: string, payload: TmPayload): Promise<unknown>;
  /** Sends a message that needs no answer (msgs, entries, commits), one-way and best effort. */
  tell(to: string, payload: TmPayload): void;
  timeouts?: Partial<TimeoutParams>;
  /** When to trim the consensus log (tests lower it); default TRIM_AFTER_EVENTS. */
  trimAfterEvents?: number;
}

/** Equivocation as GetThread shows it: `detail` is JSON with both signed messages (signatures in hex). */
export interface RecordedEvidence {
  validator: string;
  height: number;
  round: number;
  kind: string;
  detail: string;
  observedAt: number;
}

export interface ReadyEventData {
  /** As the core asked; a validBlock that is the lockedBlock (the usual case) is stored once: `validIsLocked`. */
  state: (TendermintPersisted<Block> & { validIsLocked?: true }) | null;
  decided: { height: number; round: number; hash: string }[];
  evidence: Evidence[];
}

const START = Symbol('start');
type Input = TendermintEvent | typeof START;

export class TendermintValidator {
  readonly #o: TendermintValidatorOptions;
  readonly #stream: string;
  readonly #core: Tendermint<Block>;
  /** Entries not yet in a block: ours (`local`, durable if asked) and those other validators sent us. */
  readonly #pending = new Map<string, { bytes: Uint8Array; local: boolean; sentAt: number }>();
  #forwarded = 0;
  readonly #inbox: Input[] = [];
  #pendingQueued = false;
  #kicked = false;
  #driving = false;
  #stopped = false;
  /** Sending and timers of the batches stepped so far, each after its own write and the acts before it. */
  #acting: Promise<void> = Promise.resolve();
  /** The last write issued, until it is done (writes complete in order: then every earlier one is done too). */
  #writing: Promise<unknown> | null = null;
  /** Entries pending were said while a write was in flight: the core hears it once that write is done. */
  #entriesWaiting = false;
  readonly #timers = new Map<string, unknown>();
  #resendTimer: unknown;
  /** The last block decided (stored, or being stored): what getBlock and validBlock build on. */
  #tip: { height: number; hash: string };
  /** Entry ids of decided blocks not yet durable in the chain. */
  readonly #inflight = new Set<string>();
  /** Blocks as parsed and hashed, by the object the core holds (a block is hashed many times). */
  readonly #parsed = new WeakMap<object, { block: Block; hash: string; bytes: number }>();
  /** Entry ids of a parsed block, in order (decoded once). */
  readonly #ids = new WeakMap<Block, string[]>();
  /** Recently hashed blocks by hash: validBlock looks up a parent decided in the same step. */
  readonly #recent = new Map<string, Block>();
  readonly #syncing = new Set<string>();
  /** Certified blocks to push to a validator that seems behind, from `height` (see #pushCommits). */
  readonly #pushes = new Map<string, { height: number; timer: unknown }>();
  #evidenceRows: number;
  /** The last state written (as stored), and the events written since the log was last trimmed. */
  #lastState: ReadyEventData['state'];
  #eventsSinceTrim = 0;
  #entriesOut: Uint8Array[] | undefined;

  constructor(options: TendermintValidatorOptions) {
    this.#o = options;
    this.#stream = TM_PREFIX + options.thread;
    const chain = options.chain;
    this.#tip = { height: chain.height, hash: toHex(chain.head) };
    this.#lastState = lastStoredState(options.store, this.#stream);
    let persisted = this.#lastState ? fromStoredState(this.#lastState) : undefined;
    if (persisted && persisted.height !== chain.height + 1) {
      if (persisted.height <= chain.height) {
        // The chain got ahead of the state (a crash between two blocks decided together): that height is decided,
        // nothing can be signed for it any more; start afresh after the chain's head.
        options.log('info', 'tendermint: the chain is ahead of the consensus state; resuming at the next height', {
          thread: options.thread, state: persisted.height, chain: chain.height,
        });
        persisted = undefined;
      } else {
        throw new Error(`tendermint ${options.thread}: consensus state at height ${persisted.height} but the chain ends at ${chain.height}`);
      }
    }
    this.#core = new Tendermint<Block>({
      thread: options.thread,
      validators: options.replicas,
      self: options.self,
      ...(options.timeouts ? { timeouts: options.timeouts } : {}),
      sign: options.sign,
      verify: options.verify,
      hashBlock: (b) => this.#parse(b).hash,
      validBlock: (b, height, parent) => this.#validBlock(b, height, parent),
      getBlock: (height, parent) => this.#getBlock(height, parent),
      initialHeight: chain.height + 1,
      genesisHash: toHex(chain.head),
    }, persisted);
    this.#evidenceRows = [...options.store.rows('index', [EVIDENCE_KEY, options.thread])].length;
    for (const { key, value } of options.store.rows<Uint8Array>('index', ['pending', options.thread])) {
      const id = String(key[2]);
      if (!chain.locate(id)) this.#pending.set(id, { bytes: value, local: true, sentAt: 0 });
    }
    this.#enqueue(START);
    if (this.#pending.size > 0) {
      this.#entriesPending();
      this.#armResend();
    }
    // Peers may be at other heights (we were down, or a thread restarted): compare with every validator we can reach.
    for (const v of this.#peers()) {
      this.#exchangeStatus(v);
      this.#sendLocalEntries(v);
    }
  }

  get status(): TendermintStatus {
    return this.#core.status;
  }

  /** The proposer of the current round (GetThread's `leader`). */
  get leader(): string {
    return this.#core.status.proposer;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) this.#o.clock.clearTimeout(t);
    this.#timers.clear();
    this.#o.clock.clearTimeout(this.#resendTimer);
    for (const p of this.#pushes.values()) this.#o.clock.clearTimeout(p.timer);
    this.#pushes.clear();
  }

  /**
   * Accept a signed entry and make it pending (sent to the other validators, proposed when we are the proposer);
   * with `durable`, it is written here first, so a restart proposes it again. Commitment shows up in the chain.
   */
  async accept(id: string, bytes: Uint8Array, durable: boolean): Promise<void> {
    if (this.#pending.get(id)?.local) return;
    if (durable) await this.#o.store.writeRows([{ table: 'index', key: ['pending', this.#o.thread, id], value: bytes }]);
    if (this.#stopped || this.#committed(id) || this.#pending.get(id)?.local) return;
    if (this.#pending.has(id)) this.#forwarded--; // someone else's entry with our id: ours wins here
    this.#pending.set(id, { bytes, local: true, sentAt: this.#o.clock.now() });
    this.#shareEntry(bytes);
    this.#entriesPending();
    this.#armResend();
  }

  /** A validator's 'thread.tm' request (the transport checked who sent it; threads.ts that it is a validator). */
  receive(from: string, payload: unknown): unknown {
    if (this.#stopped) return { error: 'stopped' };
    const p = payload as Partial<Record<string, unknown>>;
    switch (p?.k) {
      case 'msgs': {
        if (!Array.isArray(p.msgs) || p.msgs.length > MAX_MSGS_PER_ENVELOPE) return { error: 'bad msgs' };
        if (this.#inbox.length + p.msgs.length > MAX_INBOX) return { error: 'busy' };
        for (const message of p.msgs) this.#enqueue({ type: 'message', message });
        return null;
      }
      case 'entries': {
        if (!Array.isArray(p.entries) || p.entries.length > MAX_BLOCK_ENTRIES) return { error: 'bad entries' };
        let added = false;
        for (const bytes of p.entries) added = this.#admitForwarded(bytes) || added;
        if (added) this.#entriesPending();
        return null;
      }
      case 'status': {
        if (typeof p.height === 'number') this.#enqueue({ type: 'peer-height', peer: from, height: p.height });
        // It just started (it joined the thread, or restarted): it has none of the entries we are waiting on.
        this.#sendLocalEntries(from);
        return { height: this.#core.status.height };
      }
      case 'sync':
        return { commits: typeof p.height === 'number' ? this.#commitsFrom(p.height) : [] };
      case 'commits': {
        if (!Array.isArray(p.commits)) return { error: 'bad commits' };
        this.#deliverCommits(from, p.commits);
        return null;
      }
      default:
        return { error: 'unknown request' };
    }
  }

  /** A connection to `did` came up: tell it our height, and step what it answers (restarts, healed partitions). */
  peerConnected(did: string): void {
    if (this.#stopped || did === this.#o.self || !this.#o.replicas.includes(did)) return;
    this.#exchangeStatus(did);
    this.#sendLocalEntries(did);
  }

  // ── The loop: step, persist, act ──────────────────────────────────────────────────────────────────────

  #enqueue(input: Input): void {
    if (this.#stopped) return;
    this.#inbox.push(input);
    if (this.#driving || this.#kicked) return;
    // Everything that arrives in this turn is stepped together and written in one append.
    this.#kicked = true;
    queueMicrotask(() => {
      this.#kicked = false;
      this.#drive();
    });
  }

  #entriesPending(): void {
    if (this.#pendingQueued) return;
    this.#pendingQueued = true;
    this.#enqueue({ type: 'entries-pending' });
  }

  /**
   * Steps everything in the inbox and issues its write at once, without waiting for earlier writes: lmdb-js commits
   * writes in the order they were issued, so a batch's write never lands before an earlier one. What a batch says to
   * send or to schedule waits for its own write and for every earlier batch's acts (`#acting`): persist before send,
   * and in order. So a vote that arrives while a write is being fsynced is stepped at once, and what it makes us sign
   * goes into the next write instead of waiting for this one first.
   */
  #drive(): void {
    if (this.#driving) return;
    this.#driving = true;
    try {
      while (!this.#stopped && this.#inbox.length > 0) {
        const inputs = this.#inbox.splice(0);
        const readys: Ready<Block>[] = [];
        let decided = false;
        for (const input of inputs) {
          if (input !== START && input.type === 'entries-pending') {
            this.#pendingQueued = false;
            if (this.#writing) {
              // A block proposed now would hold only what is pending now: wait for the write in flight, and
              // propose then what arrived meanwhile too (as many appends in flight make one block, not one each).
              if (!this.#entriesWaiting) {
                this.#entriesWaiting = true;
                this.#writing.then(() => {
                  this.#entriesWaiting = false;
                  this.#entriesPending();
                }, () => undefined);
              }
              continue;
            }
          }
          const ready = input === START ? this.#core.start() : this.#core.step(input);
          this.#absorb(ready);
          readys.push(ready);
          if (ready.decided.length > 0) decided = true;
        }
        const written = this.#persist(readys);
        if (written) {
          this.#writing = written;
          const clear = () => {
            if (this.#writing === written) this.#writing = null;
          };
          written.then(clear, clear);
        }
        this.#acting = Promise.all([this.#acting, written]).then(() => {
          if (!this.#stopped) this.#act(readys);
        });
        this.#acting.catch((err: unknown) => this.#crash(err));
        // The decided blocks are applied (#absorb): say again that entries are pending (heard once they are written).
        if (decided && this.#pending.size > 0) this.#entriesPending();
      }
    } catch (err) {
      this.#crash(err);
    } finally {
      this.#driving = false;
    }
  }

  #crash(err: unknown): void {
    if (this.#stopped) return;
    this.stop();
    this.#o.onCrash(err);
  }

  /** Right after a step: what it decided is no longer pending, and the next block builds on it. */
  #absorb(ready: Ready<Block>): void {
    for (const d of ready.decided) {
      const { block } = this.#parse(d.block);
      this.#tip = { height: d.height, hash: d.blockHash };
      for (const id of this.#idsOf(block)) {
        this.#inflight.add(id);
        this.#dropPending(id);
      }
    }
  }

  /**
   * One durable write for every Ready of this batch, before anything is sent: the READY events (state, decided
   * heights, evidence) and the decided blocks — blocks first, the last one in the same transaction as the events.
   */
  #persist(readys: Ready<Block>[]): Promise<unknown> | null {
    const at = this.#o.clock.now();
    const events: { type: string; at: number; data: ReadyEventData }[] = [];
    const rows: RowOp[] = [];
    const decided: Decided<Block>[] = [];
    for (const r of readys) {
      if (r.persist === null && r.decided.length === 0 && r.evidence.length === 0) continue;
      events.push({
        type: 'READY', at,
        data: { state: r.persist && storedState(r.persist), decided: r.decided.map((d) => ({ height: d.height, round: d.certificate.round, hash: d.blockHash })), evidence: r.evidence },
      });
      for (const e of r.evidence) {
        this.#o.log('warn', 'tendermint: a validator signed two conflicting messages', { thread: this.#o.thread, validator: e.validator, kind: e.kind, height: e.height, round: e.round });
        if (this.#evidenceRows >= MAX_EVIDENCE_ROWS) continue;
        this.#evidenceRows++;
        rows.push({ table: 'index', key: [EVIDENCE_KEY, this.#o.thread, `${e.height}/${e.round}/${e.first.type}/${e.validator}`], value: { evidence: e, observedAt: at } });
      }
      decided.push(...r.decided);
    }
    if (events.length === 0) return null;
    // Trimming: a BASE with the state written so far summarises every earlier event, which go in the same write
    // (earlier writes still in flight commit before it: lmdb-js keeps their order).
    const rebase = this.#eventsSinceTrim + events.length >= (this.#o.trimAfterEvents ?? TRIM_AFTER_EVENTS);
    if (rebase) events.unshift({ type: 'BASE', at, data: { state: this.#lastState, decided: [], evidence: [] } });
    for (const e of events) if (e.data.state) this.#lastState = e.data.state;
    this.#eventsSinceTrim = rebase ? events.length : this.#eventsSinceTrim + events.length;
    // All issued in this turn, blocks first: lmdb-js commits them in one transaction, in this order.
    return Promise.all([...decided.map((d) => this.#commitBlock(d, at)), this.#o.store.append(this.#stream, events, { rows, rebase })]);
  }

  #commitBlock(d: Decided<Block>, at: number): Promise<unknown> {
    const { block } = this.#parse(d.block);
    const ids = this.#idsOf(block);
    const rows: RowOp[] = ids.map((id) => ({ table: 'index', key: ['pending', this.#o.thread, id] }));
    // Not `recoverable`: an append is acknowledged once its block is durable here.
    return this.#o.chain.commit(block, at, d.certificate, rows, { ids }).then(() => {
      for (const id of ids) this.#inflight.delete(id);
    });
  }

  /** After the write: send, set timers, serve catch-up. */
  #act(readys: Ready<Block>[]): void {
    const msgs: Message<Block>[] = [];
    for (const r of readys) {
      msgs.push(...r.broadcast);
      for (const t of r.timeouts) {
        // The newest timer of a kind replaces the older one (the core ignores stale ones anyway).
        const key = t.kind;
        this.#o.clock.clearTimeout(this.#timers.get(key));
        const handle = this.#o.clock.setTimeout(() => {
          if (this.#timers.get(key) === handle) this.#timers.delete(key);
          this.#enqueue({ type: 'timeout', timeout: t });
        }, t.delayMs);
        this.#timers.set(key, handle);
      }
      for (const q of r.requestCommits) this.#sync(q.from, q.height);
      for (const s of r.sendCommits) this.#pushCommits(s.to, s.height);
    }
    if (msgs.length > 0) this.#broadcast(msgs);
  }

  // ── Network ────────────────────────────────────────────────────────────────────────────────────────────

  #peers(): string[] {
    return this.#o.replicas.filter((v) => v !== this.#o.self);
  }

  #request(to: string, payload: TmPayload): Promise<unknown> {
    return this.#o.send(to, payload);
  }

  /** Proposals one per envelope (they carry a block), votes together. */
  #broadcast(msgs: Message<Block>[]): void {
    const thread = this.#o.thread;
    const payloads: TmPayload[] = [];
    let votes: Message<Block>[] = [];
    for (const m of msgs) {
      if (m.type === 'proposal') payloads.push({ thread, k: 'msgs', msgs: [m] });
      else {
        votes.push(m);
        if (votes.length === MAX_MSGS_PER_ENVELOPE) (payloads.push({ thread, k: 'msgs', msgs: votes }), votes = []);
      }
    }
    if (votes.length > 0) payloads.push({ thread, k: 'msgs', msgs: votes });
    for (const to of this.#peers()) for (const p of payloads) this.#o.tell(to, p); // loss: the gossip sends it again
  }

  #exchangeStatus(did: string): void {
    this.#request(did, { thread: this.#o.thread, k: 'status', height: this.#core.status.height }).then((reply) => {
      const height = (reply as { height?: unknown } | null)?.height;
      if (typeof height === 'number') this.#enqueue({ type: 'peer-height', peer: did, height });
    }, () => undefined);
  }

  #sync(from: string, height: number): void {
    if (this.#syncing.has(from) || !this.#o.replicas.includes(from)) return;
    this.#syncing.add(from);
    this.#request(from, { thread: this.#o.thread, k: 'sync', height }).then((reply) => {
      this.#syncing.delete(from);
      const commits = (reply as { commits?: unknown } | null)?.commits;
      if (Array.isArray(commits)) this.#deliverCommits(from, commits);
    }, () => this.#syncing.delete(from));
  }

  /**
   * A validator seems behind (a message of its for a height we decided, or its status): push it our certified
   * blocks — after a moment, and only if it has not shown since that it moved on. Usually it has: the last votes of
   * a height arrive just after we decided it, from validators that decide it a moment later themselves.
   */
  #pushCommits(to: string, height: number): void {
    const due = this.#pushes.get(to);
    if (due !== undefined) {
      due.height = Math.min(due.height, height);
      return;
    }
    const push = { height, timer: undefined as unknown };
    this.#pushes.set(to, push);
    push.timer = this.#o.clock.setTimeout(() => {
      this.#pushes.delete(to);
      if (this.#stopped || this.#core.peerHeight(to) > push.height) return;
      const commits = this.#commitsFrom(push.height);
      if (commits.length > 0) this.#o.tell(to, { thread: this.#o.thread, k: 'commits', commits });
    }, PUSH_DELAY_MS);
  }

  #deliverCommits(from: string, commits: unknown[]): void {
    for (const c of commits.slice(0, COMMITS_PER_REPLY)) {
      const item = c as Partial<CertifiedBlock> | null;
      if (typeof item !== 'object' || item === null) continue;
      this.#enqueue({ type: 'commit', block: item.block, certificate: item.certificate as CommitCertificate, from });
    }
  }

  /** Our certified blocks from `height` on, in order: at most 8, and about 640 KiB (always one). */
  #commitsFrom(height: number): CertifiedBlock[] {
    const chain = this.#o.chain;
    const out: CertifiedBlock[] = [];
    let bytes = 0;
    if (!Number.isSafeInteger(height)) return out;
    for (let h = Math.max(1, height); h <= chain.height && out.length < COMMITS_PER_REPLY; h++) {
      const b = chain.block(h);
      if (!b?.certificate) break;
      bytes += b.block.entries.reduce((n, e) => n + e.length, 0) + 300 * this.#o.replicas.length;
      if (out.length > 0 && bytes > COMMITS_REPLY_BYTES) break;
      out.push({ block: b.block, certificate: b.certificate as CommitCertificate });
    }
    return out;
  }

  /**
   * Entries go to every other validator together: those accepted until the event loop has handled the I/O it is
   * handling now (every AppendEntry read in this poll phase), so many appends in flight make one envelope per
   * validator, not one each.
   */
  #shareEntry(bytes: Uint8Array): void {
    if (this.#o.replicas.length === 1) return;
    if (this.#entriesOut) {
      this.#entriesOut.push(bytes);
      return;
    }
    this.#entriesOut = [bytes];
    setImmediate(() => {
      const entries = this.#entriesOut!;
      this.#entriesOut = undefined;
      for (const to of this.#peers()) this.#sendEntries(to, entries);
    });
  }

  #sendLocalEntries(to: string): void {
    const ours = [...this.#pending.values()].filter((p) => p.local).map((p) => p.bytes);
    if (ours.length > 0) this.#sendEntries(to, ours);
  }

  /** In envelopes of at most 256 entries and about 512 KiB (an entry is at most 64 KiB of payload). */
  #sendEntries(to: string, entries: Uint8Array[]): void {
    let chunk: Uint8Array[] = [];
    let bytes = 0;
    const flush = () => {
      if (chunk.length > 0) this.#o.tell(to, { thread: this.#o.thread, k: 'entries', entries: chunk });
      chunk = [];
      bytes = 0;
    };
    for (const e of entries) {
      if (chunk.length === 256 || bytes + e.length > MAX_BLOCK_BYTES) flush();
      chunk.push(e);
      bytes += e.length;
    }
    flush();
  }

  /** Our pending entries not committed after a while go out again (their first sending, or the proposer, was lost). */
  #armResend(): void {
    if (this.#resendTimer !== undefined || this.#stopped) return;
    this.#resendTimer = this.#o.clock.setTimeout(() => {
      this.#resendTimer = undefined;
      if (this.#stopped) return;
      const now = this.#o.clock.now();
      const stale: Uint8Array[] = [];
      let local = false;
      for (const [id, p] of this.#pending) {
        if (this.#committed(id)) {
          this.#dropPending(id);
          continue;
        }
        if (!p.local) continue;
        local = true;
        if (now - p.sentAt < RESEND_MS) continue;
        p.sentAt = now;
        stale.push(p.bytes);
      }
      if (stale.length > 0 && this.#o.replicas.length > 1) for (const to of this.#peers()) this.#sendEntries(to, stale);
      if (this.#pending.size > 0) this.#entriesPending();
      if (local) this.#armResend();
    }, RESEND_MS);
  }

  // ── Entries and blocks (the functions the core is given) ─────────────────────────────────────────────

  #committed(id: string): boolean {
    return this.#inflight.has(id) || this.#o.chain.locate(id) !== undefined;
  }

  #dropPending(id: string): void {
    const p = this.#pending.get(id);
    if (!p) return;
    if (!p.local) this.#forwarded--;
    this.#pending.delete(id);
  }

  /** An entry another validator holds: checked like a block's entry, kept in memory (its author keeps it durably). */
  #admitForwarded(bytes: unknown): boolean {
    if (!(bytes instanceof Uint8Array) || this.#forwarded >= MAX_FORWARDED) return false;
    try {
      const e = decodeEntry(bytes, this.#o.verify);
      if (e.thread !== this.#o.thread || !this.#o.replicas.includes(e.author)) return false;
      if (this.#pending.has(e.id) || this.#committed(e.id)) return false;
      this.#pending.set(e.id, { bytes: view(bytes), local: false, sentAt: this.#o.clock.now() });
      this.#forwarded++;
      return true;
    } catch {
      return false;
    }
  }

  /** A block of the pending entries not yet in the chain (called by the core when we propose). */
  #getBlock(height: number, parent: string): Block | null {
    const entries: Uint8Array[] = [];
    let bytes = 0;
    for (const [id, p] of this.#pending) {
      if (this.#committed(id)) {
        this.#dropPending(id);
        continue;
      }
      if (entries.length === MAX_BLOCK_ENTRIES || bytes + p.bytes.length > MAX_BLOCK_BYTES) break;
      entries.push(p.bytes);
      bytes += p.bytes.length;
    }
    if (entries.length === 0) return null;
    const time = Math.max(this.#o.clock.now(), this.#parentTime(parent, height)); // never before its parent
    return makeBlock({ thread: this.#o.thread, height, parent: fromHex(parent), proposer: this.#o.self, time, entries });
  }

  /**
   * A block as the core holds it (decoded from the wire or the store) parsed into the chain's Block, with its hash
   * computed from the entries: entriesRoot and count are recomputed, never taken from the sender. Throws on garbage.
   */
  #parse(raw: unknown): { block: Block; hash: string; bytes: number } {
    if (typeof raw !== 'object' || raw === null) throw new TypeError('not a block');
    const cached = this.#parsed.get(raw);
    if (cached) return cached;
    const b = raw as Record<string, unknown>;
    const uint = (f: string) => {
      const v = b[f];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`block.${f}`);
      return v;
    };
    if (typeof b.thread !== 'string' || typeof b.proposer !== 'string') throw new TypeError('block.thread/proposer');
    if (!(b.parent instanceof Uint8Array) || b.parent.length !== 32) throw new TypeError('block.parent');
    if (!Array.isArray(b.entries) || b.entries.length > BLOCK_MAX_ENTRIES || !b.entries.every((e) => e instanceof Uint8Array)) throw new TypeError('block.entries');
    const entries = (b.entries as Uint8Array[]).map(view);
    const block: Block = {
      thread: b.thread, height: uint('height'), parent: view(b.parent), entriesRoot: merkleRoot(entries), count: entries.length,
      proposer: b.proposer, time: uint('time'), entries,
    };
    const parsed = { block, hash: toHex(blockHash(block)), bytes: entries.reduce((n, e) => n + e.length, 0) };
    this.#parsed.set(raw, parsed);
    this.#recent.set(parsed.hash, block);
    if (this.#recent.size > 256) this.#recent.delete(this.#recent.keys().next().value!);
    return parsed;
  }

  #idsOf(block: Block): string[] {
    let ids = this.#ids.get(block);
    if (!ids) this.#ids.set(block, ids = block.entries.map(entryIdOf));
    return ids;
  }

  /** valid(v): may this block be decided at `height` after `parent`? Never throws. */
  #validBlock(raw: unknown, height: number, parent: string): boolean {
    try {
      const { block: b, bytes } = this.#parse(raw);
      if (b.height !== height || b.entries.length === 0 || b.entries.length > MAX_BLOCK_ENTRIES || bytes > MAX_BLOCK_BYTES) return false;
      if (b.thread !== this.#o.thread || toHex(b.parent) !== parent || !this.#o.replicas.includes(b.proposer)) return false;
      if (b.time < this.#parentTime(parent, height) || b.time > this.#o.clock.now() + MAX_BLOCK_TIME_AHEAD_MS) return false;
      // (entriesRoot and count were recomputed from the entries by #parse.)
      const above = this.#decidedAbove(parent);
      if (!above) return false;
      const seen = new Set<string>();
      const ids: string[] = [];
      for (const bytes of b.entries) {
        // Well-formed, of this thread, from a replica, signed by its author: checkBlock's checks, except that the
        // signature of an entry we hold with the same bytes was checked when it reached us (or we signed it).
        const e = decodeEntry(bytes);
        if (e.thread !== this.#o.thread || !this.#o.replicas.includes(e.author)) return false;
        if (seen.has(e.id) || above.has(e.id) || this.#committed(e.id)) return false;
        seen.add(e.id);
        ids.push(e.id);
        const held = this.#pending.get(e.id);
        if (!(held && equalBytes(held.bytes, bytes)) && !this.#o.verify(e.author, entrySigningBytes(e), e.signature)) return false;
      }
      this.#ids.set(b, ids);
      return true;
    } catch {
      return false;
    }
  }

  /** The time of block `parent`, which `height` follows (the thread's creation for the first block). */
  #parentTime(parent: string, height: number): number {
    if (height === 1) return this.#o.chain.genesis.createdAt;
    return this.#recent.get(parent)?.time ?? this.#o.chain.block(height - 1)?.block.time ?? 0;
  }

  /**
   * Entry ids of blocks decided after our tip up to `parent`: the core may check a proposal for the next height in
   * the very step it decided this one, before the shell has seen that decision.
   */
  #decidedAbove(parent: string): Set<string> | null {
    const ids = new Set<string>();
    let h = parent;
    for (let i = 0; h !== this.#tip.hash; i++) {
      const b = this.#recent.get(h);
      if (!b || i > 64) return null;
      for (const id of this.#idsOf(b)) ids.add(id);
      h = toHex(b.parent);
    }
    return ids;
  }
}

/** The state as written: a block is written once even when it is both the locked and the valid one. */
function storedState(p: TendermintPersisted<Block>): NonNullable<ReadyEventData['state']> {
  if (p.validBlock === null || p.validHash !== p.lockedHash) return p;
  return { ...p, validBlock: null, validIsLocked: true };
}

/** The last state the core asked to persist, as stored, if any (the newest event that has one: a READY or BASE). */
export function lastStoredState(store: EventStore, stream: string): ReadyEventData['state'] {
  for (let seq = store.head(stream); seq >= 1; seq--) {
    const event = store.readOne(stream, seq);
    if (!event) break; // before the first event left by a trim
    const state = (event.data as ReadyEventData).state;
    if (state) return state;
  }
  return null;
}

function fromStoredState(state: NonNullable<ReadyEventData['state']>): TendermintPersisted<Block> {
  const { validIsLocked, ...rest } = state;
  return validIsLocked ? { ...rest, validBlock: rest.lockedBlock } : rest;
}

/** The equivocation recorded for `thread` on this validator, oldest height first. */
export function readEvidence(store: EventStore, thread: string): RecordedEvidence[] {
  const out: RecordedEvidence[] = [];
  for (const { value } of store.rows<{ evidence: Evidence; observedAt: number }>('index', [EVIDENCE_KEY, thread])) {
    const e = value.evidence;
    out.push({
      validator: e.validator, height: e.height, round: e.round, kind: e.kind, observedAt: value.observedAt,
      detail: JSON.stringify({ thread: e.thread, first: hexSigned(e.first), second: hexSigned(e.second) }),
    });
  }
  return out.sort((a, b) => a.height - b.height || a.round - b.round);
}

function hexSigned(m: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v instanceof Uint8Array ? toHex(v) : v]));
}

/** A plain Uint8Array over the same bytes (the wire and the store hand back Buffers). */
function view(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function entryIdOf(bytes: Uint8Array): string {
  return decodeEntry(bytes).id;
}
