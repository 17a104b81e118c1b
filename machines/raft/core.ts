// A pure Raft replica (Ongaro & Ousterhout 2014), in the shape of etcd's raft: it takes a tick, a message or a
// proposal, changes its state in memory, and hands the caller a Ready saying what to persist, send and apply.
// No I/O, no clock (time is `tick()`), no randomness but `config.random` (the election timeout).
//
// n = 2f+1 replicas (a fixed list of ids) tolerate f crashes. Implemented: leader election with pre-vote and
// check-quorum, log replication with batching, pipelining (a bounded in-flight window per follower) and fast
// backtracking, proposal forwarding from followers, recovery from persisted state, and log compaction without
// snapshots (below). Not implemented: membership changes, InstallSnapshot, read-index/lease reads, leadership
// transfer.
//
// ── The contract with the shell ─────────────────────────────────────────────────────────────────────────
//
//   const raft = new RaftCore(config, persisted)   // persisted: undefined for a new replica
//   if (bootstrapping && iAmTheCreator) raft.campaign()
//   on timer every tick interval: raft.tick()
//   on a message from a peer:     raft.step(message)
//   on a client request:          raft.propose(data)   → appended here / forwarded to the leader / dropped
//   whenever raft.hasReady():
//     const rd = raft.ready()
//     1. persist rd.hardState and rd.entries (one transaction; entries[0].index ≤ the last persisted index means
//        "delete from there on first"); fsync if rd.mustSync
//     2. send rd.messages
//     3. apply rd.committed in order
//     4. raft.advance(rd)
//
// Messages are sent only after the Ready that carries them is persisted, and a Ready is only produced once the
// previous one has been advanced; so every message goes out after all the state the core had when it made the
// message is durable — a vote after the vote, an acknowledgement after the entries it acknowledges. The leader's
// own entries count toward a quorum only once `advance` says they are persisted (for a single replica, f = 0:
// propose → Ready with the entry → advance → Ready with it committed; no tick and no network).
//
// Between `ready()` and `advance()` the shell may keep calling tick/step/propose (persistence may be
// asynchronous); what they produce waits for the next Ready. Entries handed out are shared: never mutate them.
//
// A restarted replica is built from its persisted hard state and log (plus `config.applied`, the state machine's
// position); it starts as a follower, re-learns the leader, and the leader's probing brings its log up to date.
// A replica alone in its cluster (f = 0) makes itself leader as soon as it is created, new or restarted.
//
// ── Log compaction, without snapshots ───────────────────────────────────────────────────────────────────
//
// There is no InstallSnapshot: a replica drops only entries that no leader, now or later, can ever need to send.
// The leader knows each follower's durable match index; min(its own persisted index, every follower's match),
// capped by its commit index, is held by every replica and committed (so in every future leader's log, where
// every follower's log already matches it). It carries that index on every app, heartbeat and commit message
// (`compactable`); a follower keeps the highest it has seen (volatile: re-learned after a restart). The shell
// reads `status().compactable` (that index, capped by what it has applied), persists the compacted log (the base
// and the entries after it), and calls `compact(index)`. A replica that is down holds compaction back everywhere
// (as etcd's raft without snapshots); one that lost its disk can never be caught up: the leader stops sending it
// entries and lists it in `status().needCompactedEntries`, and it must be re-created.
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import type {
  AppendMessage,
  AppendResponse,
  CommitMessage,
  Entry,
  HardState,
  HeartbeatMessage,
  Message,
  NodeId,
  PersistedState,
  ProposeResult,
  RaftConfig,
  Ready,
  Role,
  SoftState,
  Status,
  VoteRequest,
} from './types.ts';
import { fromLeader } from './types.ts';

const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

/** Distributes a Message over its union without losing the variant (for building messages). */
type Outgoing<P> = Message<P> extends infer M ? (M extends Message<P> ? Omit<M, 'from'> : never) : never;

interface InProgress<P> {
  readonly ready: Ready<P>;
  readonly lastEntry: Entry<P> | undefined;
  readonly appliedTo: number;
}

export class RaftCore<P = Uint8Array> {
  readonly id: NodeId;
  /** The other replicas. */
  readonly #others: readonly NodeId[];
  readonly #members: ReadonlySet<NodeId>;
  readonly #quorum: number;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #random: () => number;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #maxEntries: number;
  readonly #maxInflight: number;
  readonly #maxBytes: number;
  readonly #entrySize: ((data: P) => number) | undefined;

  #term: number;
  #vote: NodeId | null;
  readonly #log: RaftLog<P>;
  #role: Role = 'follower';
  #lead: NodeId | null = null;
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  readonly #votes = new Map<NodeId, boolean>();
  readonly #progress = new Map<NodeId, Progress>();
  /** Proposals appended since the last Ready, to be sent to followers in one go (batching). */
  #broadcastPending = false;
  #msgs: Message<P>[] = [];
  #applied: number;
  /** The highest index known to be held durably by every replica and committed (only grows; see the header). */
  #compactable = 0;
  #prevHard: HardState;
  #prevSoft: SoftState = { role: 'follower', lead: null };
  #inProgress: InProgress<P> | null = null;

  constructor(config: RaftConfig<P>, persisted?: PersistedState<P>) {
    const members = new Set(config.peers);
    if (!members.has(config.id)) throw new Error(`raft: ${config.id} is not among the peers`);
    if (members.size !== config.peers.length) throw new Error('raft: duplicate peer ids');
    if (!(config.electionTicks > config.heartbeatTicks && config.heartbeatTicks >= 1)) {
      throw new Error('raft: need electionTicks > heartbeatTicks ≥ 1');
    }
    this.id = config.id;
    this.#members = members;
    this.#others = [...members].filter((p) => p !== config.id).sort();
    this.#quorum = Math.floor(members.size / 2) + 1;
    this.#electionTicks = config.electionTicks;
    this.#heartbeatTicks = config.heartbeatTicks;
    this.#random = config.random;
    this.#preVote = config.preVote ?? true;
    this.#checkQuorum = config.checkQuorum ?? true;
    this.#maxEntries = Math.max(1, config.maxEntriesPerMessage ?? 256);
    this.#maxInflight = Math.max(1, config.maxInflight ?? 64);
    this.#maxBytes = config.maxBytesPerMessage ?? Infinity;
    this.#entrySize = config.entrySize;

    const hs = persisted?.hardState ?? EMPTY_HARD_STATE;
    const entries = persisted?.entries ?? [];
    const base = persisted?.base ?? { index: 0, term: 0 };
    const applied = config.applied ?? 0;
    if (applied > base.index + entries.length) throw new Error(`raft: applied ${applied} is beyond the persisted log`);
    // Entries are compacted only once applied: a state machine behind the base lost what no log holds any more.
    if (applied < base.index) throw new Error(`raft: applied ${applied} is below the compacted log's base ${base.index}`);
    this.#term = hs.term;
    this.#vote = hs.vote;
    // Applied entries were committed, even if the commit index itself was written lazily and lost.
    this.#log = new RaftLog(entries, Math.max(hs.commit, applied), base);
    this.#applied = applied;
    // What was compacted was held by every replica (the one fact about it this replica can vouch for at once).
    this.#compactable = base.index;
    this.#prevHard = hs;
    this.#resetRandomizedElectionTimeout();
    // Alone (f = 0), there is no one to wait for or to disturb: lead at once, on creation and on every restart.
    if (members.size === 1) this.#campaign('election');
  }

  // ── Inputs ──────────────────────────────────────────────────────────────────────────────────────────

  /** One unit of logical time: followers count toward an election, the leader toward a heartbeat. */
  tick(): void {
    if (this.#role === 'leader') this.#tickHeartbeat();
    else this.#tickElection();
  }

  /**
   * Start an election now instead of after an election timeout: a new cluster's creator does this at bootstrap, so
   * the first proposal need not wait one. `preVote` asks first whether a quorum would vote (no term changes hands
   * unless it would): for a later nudge, which must never depose a live leader. Peers that hear from a live leader
   * ignore either (check-quorum).
   */
  campaign(options: { preVote?: boolean } = {}): void {
    if (this.#role !== 'leader') this.#campaign(options.preVote ? 'pre' : 'election');
  }

  /**
   * Propose a payload. The leader appends it (sent to followers with everything else proposed before the next
   * Ready); a follower that knows the leader forwards it; otherwise it is dropped, and the shell should retry once
   * a Ready's softState names a leader. Accepted is not committed: watch `committed`, and retry on a timeout — a
   * forwarded proposal can be lost with its message or its leader (and a retry can then commit it twice, so
   * payloads that must apply once should carry an id the state machine deduplicates).
   */
  propose(data: P): ProposeResult {
    if (this.#role === 'leader') {
      const e = this.#appendAsLeader([data]);
      return { ok: true, via: 'appended', index: e.index, term: e.term };
    }
    if (this.#role === 'follower' && this.#lead !== null) {
      const to = this.#lead;
      // Coalesce with a forward still waiting for the next Ready: one message per batch.
      const last = this.#msgs[this.#msgs.length - 1];
      if (last?.type === 'prop' && last.to === to && this.#fits([...last.data, data])) (last.data as P[]).push(data);
      else this.#send({ type: 'prop', to, term: 0, data: [data] });
      return { ok: true, via: 'forwarded', to };
    }
    return { ok: false, reason: 'no-leader' };
  }

  /** Handle a message from a peer. Messages from non-members, or addressed to someone else, are ignored. */
  step(m: Message<P>): void {
    if (m.to !== this.id || !this.#members.has(m.from) || m.from === this.id) return;
    if (m.type === 'prop') {
      // Forwarded proposals are not part of any term's exchange; only a leader can take them, and a non-leader
      // does not forward them again (the origin retries), so a proposal never circles between stale followers.
      if (this.#role === 'leader' && m.data.length > 0) this.#appendAsLeader(m.data);
      return;
    }

    if (m.term > this.#term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Leader stickiness (with check-quorum): while we hear from a live leader, nobody needs a new one — so a
        // replica that was cut off cannot depose it. Not even the reply: the candidate must not learn a new term.
        const inLease = this.#checkQuorum && this.#lead !== null && this.#electionElapsed < this.#electionTicks;
        if (inLease) return;
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // A pre-vote is hypothetical: its term is the one the candidate would take, so nobody adopts it.
      } else if (fromLeader(m)) {
        this.#becomeFollower(m.term, m.from);
      } else {
        this.#becomeFollower(m.term, null);
      }
    } else if (m.term < this.#term) {
      if ((this.#checkQuorum || this.#preVote) && fromLeader(m)) {
        // A leader from an older term. With pre-vote/check-quorum our higher term would never reach it through
        // votes (they are refused or never sent), so tell it directly, and it steps down.
        this.#send({ type: 'appResp', to: m.from, term: this.#term, index: 0, reject: false, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'preVote') {
        // Tell a pre-candidate with a stale term about ours, or it could keep pre-campaigning in vain.
        this.#send({ type: 'preVoteResp', to: m.from, term: this.#term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.#handleVoteRequest(m);
      return;
    }
    // What every replica holds stays held (committed entries are never overwritten): keep the highest value heard.
    if (fromLeader(m) && m.compactable !== undefined) this.#compactable = Math.max(this.#compactable, m.compactable);
    switch (this.#role) {
      case 'leader':
        this.#stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.#stepCandidate(m);
        break;
      case 'follower':
        this.#stepFollower(m);
        break;
    }
  }

  // ── Output ──────────────────────────────────────────────────────────────────────────────────────────

  /** Whether `ready()` has anything to hand out (always false while a Ready awaits `advance`). */
  hasReady(): boolean {
    if (this.#inProgress !== null) return false;
    return (
      this.#msgs.length > 0 ||
      this.#broadcastPending ||
      this.#log.hasUnsent() ||
      this.#log.committed > this.#applied ||
      !sameHardState(this.#hardState(), this.#prevHard) ||
      this.#role !== this.#prevSoft.role ||
      this.#lead !== this.#prevSoft.lead
    );
  }

  /** Everything to persist, send and apply since the last Ready. Call `advance(ready)` when done. */
  ready(): Ready<P> {
    if (this.#inProgress !== null) throw new Error('raft: ready() called before advance() of the previous Ready');
    if (this.#broadcastPending) {
      this.#broadcastPending = false;
      if (this.#role === 'leader') for (const to of this.#others) this.#sendAppends(to, false);
    }
    const hs = this.#hardState();
    const hardChanged = !sameHardState(hs, this.#prevHard);
    const entries = this.#log.takeUnsent();
    const committed = this.#log.slice(this.#applied + 1, this.#log.committed);
    const messages = this.#msgs;
    this.#msgs = [];
    const softChanged = this.#role !== this.#prevSoft.role || this.#lead !== this.#prevSoft.lead;
    const ready: Ready<P> = {
      ...(hardChanged ? { hardState: hs } : {}),
      entries,
      messages,
      committed,
      ...(softChanged ? { softState: { role: this.#role, lead: this.#lead } } : {}),
      mustSync: entries.length > 0 || hs.term !== this.#prevHard.term || hs.vote !== this.#prevHard.vote,
    };
    if (softChanged) this.#prevSoft = ready.softState!;
    this.#prevHard = hs;
    this.#inProgress = { ready, lastEntry: entries[entries.length - 1], appliedTo: this.#log.committed };
    return ready;
  }

  /** The shell persisted `ready`, sent its messages and applied its committed entries. */
  advance(ready: Ready<P>): void {
    const ip = this.#inProgress;
    if (ip === null || ip.ready !== ready) throw new Error('raft: advance() of a Ready that is not the outstanding one');
    this.#inProgress = null;
    if (ip.lastEntry !== undefined) this.#log.persistedTo(ip.lastEntry.index, ip.lastEntry.term);
    this.#applied = ip.appliedTo;
    // The leader's own durable entries now count toward the quorum.
    if (this.#role === 'leader' && this.#maybeCommit()) this.#broadcastAppend();
  }

  /**
   * Drop the log's entries up to `index`, once the shell has persisted the log without them (its base and the
   * entries after it). Throws above `status().compactable`: an entry not yet applied here, or that some replica
   * may not hold, could still be needed.
   */
  compact(index: number): void {
    const limit = this.#compactableIndex();
    if (index > limit) throw new Error(`raft: cannot compact to ${index}: only entries up to ${limit} are applied and held by every replica`);
    this.#log.compact(index);
  }

  status(): Status {
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      lead: this.#lead,
      commit: this.#log.committed,
      applied: this.#applied,
      lastIndex: this.#log.lastIndex,
      persistedIndex: this.#log.persisted,
      base: this.#log.base,
      compactable: this.#compactableIndex(),
      needCompactedEntries: this.#role === 'leader' ? this.#others.filter((p) => this.#needsCompacted(this.#progress.get(p)!)) : [],
    };
  }

  /** The in-memory log from `lo` to `hi` (inclusive; default: all of it, from just after the base), for diagnostics and tests. */
  entries(lo = this.#log.base.index + 1, hi = this.#log.lastIndex): Entry<P>[] {
    return this.#log.slice(lo, hi);
  }

  // ── Roles ───────────────────────────────────────────────────────────────────────────────────────────

  #reset(term: number): void {
    if (term !== this.#term) {
      this.#term = term;
      this.#vote = null;
    }
    this.#lead = null;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#resetRandomizedElectionTimeout();
    this.#votes.clear();
    this.#progress.clear();
    this.#broadcastPending = false;
  }

  #becomeFollower(term: number, lead: NodeId | null): void {
    this.#reset(term);
    this.#role = 'follower';
    this.#lead = lead;
  }

  #becomePreCandidate(): void {
    // Neither the term nor the vote changes: a pre-candidacy leaves no trace on disk or on peers.
    this.#votes.clear();
    this.#role = 'pre-candidate';
    this.#lead = null;
  }

  #becomeCandidate(): void {
    this.#reset(this.#term + 1);
    this.#vote = this.id;
    this.#role = 'candidate';
  }

  #becomeLeader(): void {
    this.#reset(this.#term);
    this.#role = 'leader';
    this.#lead = this.id;
    for (const p of this.#others) this.#progress.set(p, new Progress(this.#log.lastIndex + 1, this.#maxInflight));
    // An empty entry of the new term: entries from earlier terms commit only under one of the current term (§5.4.2).
    this.#appendAsLeader([null]);
  }

  #campaign(kind: 'pre' | 'election'): void {
    let term: number;
    let type: 'preVote' | 'vote';
    if (kind === 'pre') {
      this.#becomePreCandidate();
      term = this.#term + 1;
      type = 'preVote';
    } else {
      this.#becomeCandidate();
      term = this.#term;
      type = 'vote';
    }
    if (this.#poll(this.id, true) === 'won') {
      // A quorum of one (f = 0): no one to ask.
      if (kind === 'pre') this.#campaign('election');
      else this.#becomeLeader();
      return;
    }
    const lastIndex = this.#log.lastIndex;
    const lastTerm = this.#log.lastTerm;
    for (const to of this.#others) this.#send({ type, to, term, lastIndex, lastTerm });
  }

  #poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.#votes.has(from)) this.#votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.#votes.values()) v ? yes++ : no++;
    if (yes >= this.#quorum) return 'won';
    if (no > this.#members.size - this.#quorum) return 'lost';
    return 'pending';
  }

  // ── Time ────────────────────────────────────────────────────────────────────────────────────────────

  #resetRandomizedElectionTimeout(): void {
    // [T, 2T): spread so that one replica usually times out well before the others and wins alone.
    const r = this.#random();
    this.#randomizedElectionTimeout = this.#electionTicks + Math.floor(Math.min(Math.max(r, 0), 0.999999) * this.#electionTicks);
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign(this.#preVote ? 'pre' : 'election');
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum) {
        // Step down if a quorum has not answered within an election timeout: we may be the one cut off, and
        // clients would otherwise wait on us forever while the others elect a new leader.
        let active = 1;
        for (const pr of this.#progress.values()) if (pr.recentActive) active++;
        if (active < this.#quorum) {
          this.#becomeFollower(this.#term, null);
          return;
        }
        for (const pr of this.#progress.values()) pr.recentActive = false;
      }
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      for (const to of this.#others) {
        const pr = this.#progress.get(to)!;
        this.#send({ type: 'heartbeat', to, term: this.#term, commit: Math.min(pr.match, this.#log.committed), compactable: this.#compactable });
      }
    }
  }

  // ── Voting ──────────────────────────────────────────────────────────────────────────────────────────

  #handleVoteRequest(m: VoteRequest): void {
    const canVote =
      this.#vote === m.from ||
      (this.#vote === null && this.#lead === null) ||
      (m.type === 'preVote' && m.term > this.#term);
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (canVote && this.#log.isUpToDate(m.lastIndex, m.lastTerm)) {
      // A granted pre-vote answers in the candidate's prospective term, so it counts in its pre-campaign.
      this.#send({ type: respType, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.#electionElapsed = 0;
        this.#vote = m.from;
      }
    } else {
      this.#send({ type: respType, to: m.from, term: this.#term, reject: true });
    }
  }

  // ── Per role ────────────────────────────────────────────────────────────────────────────────────────

  #stepFollower(m: Message<P>): void {
    if (m.type === 'app') {
      this.#electionElapsed = 0;
      this.#lead = m.from;
      this.#handleAppend(m);
    } else if (m.type === 'heartbeat') {
      this.#electionElapsed = 0;
      this.#lead = m.from;
      this.#handleHeartbeat(m);
    } else if (m.type === 'commit') {
      this.#electionElapsed = 0;
      this.#lead = m.from;
      this.#handleCommit(m);
    }
  }

  #stepCandidate(m: Message<P>): void {
    const respType = this.#role === 'pre-candidate' ? 'preVoteResp' : 'voteResp';
    if (m.type === 'app') {
      this.#becomeFollower(m.term, m.from);
      this.#handleAppend(m);
    } else if (m.type === 'heartbeat') {
      this.#becomeFollower(m.term, m.from);
      this.#handleHeartbeat(m);
    } else if (m.type === 'commit') {
      this.#becomeFollower(m.term, m.from);
      this.#handleCommit(m);
    } else if (m.type === respType) {
      const result = this.#poll(m.from, !m.reject);
      if (result === 'won') {
        if (this.#role === 'pre-candidate') this.#campaign('election');
        else this.#becomeLeader();
      } else if (result === 'lost') {
        this.#becomeFollower(this.#term, null);
      }
    }
  }

  #stepLeader(m: Message<P>): void {
    if (m.type !== 'appResp' && m.type !== 'heartbeatResp') return;
    const pr = this.#progress.get(m.from)!;
    pr.recentActive = true;
    if (m.type === 'heartbeatResp') {
      pr.probeSent = false;
      if (pr.state === 'replicate' && pr.isFull()) pr.freeFirst();
      if (pr.match < this.#log.lastIndex) this.#sendAppends(m.from, true);
      return;
    }
    this.#handleAppendResponse(m, pr);
  }

  #handleAppendResponse(m: AppendResponse, pr: Progress): void {
    if (m.reject) {
      // Fast backtracking: the follower's hint, refined by our own log — skip every index whose term cannot match.
      let probe = m.hintIndex;
      if (m.hintTerm > 0) probe = this.#log.findConflictByTerm(m.hintIndex, m.hintTerm)[0];
      if (pr.maybeDecrTo(m.index, probe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.#sendAppends(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    // The second condition: an answer to a probe at exactly our match (nothing new) still proves the logs agree.
    if (pr.maybeUpdate(m.index) || (pr.state === 'probe' && pr.match === m.index)) {
      if (pr.state === 'probe') pr.becomeReplicate();
      else pr.freeTo(m.index);
      if (this.#maybeCommit()) {
        this.#broadcastAppend();
        return;
      }
    }
    if (wasPaused) this.#sendAppends(m.from, true);
    else this.#sendAppends(m.from, false);
  }

  // ── Replication ─────────────────────────────────────────────────────────────────────────────────────

  #appendAsLeader(data: readonly (P | null)[]): Entry<P> {
    let last: Entry<P> | undefined;
    const entries: Entry<P>[] = [];
    for (const d of data) {
      last = { index: this.#log.lastIndex + 1 + entries.length, term: this.#term, data: d };
      entries.push(last);
    }
    this.#log.append(entries);
    if (this.#others.length > 0) this.#broadcastPending = true;
    return last!;
  }

  /**
   * Send the commit index (and anything new) to every follower that is not paused. A follower known to hold every
   * entry gets a `commit` message, which it does not answer (its answer to an empty `app` would say nothing new);
   * one being probed gets an `app`, whose answer the probe needs.
   */
  #broadcastAppend(): void {
    this.#broadcastPending = false;
    for (const to of this.#others) {
      const pr = this.#progress.get(to)!;
      if (pr.state !== 'replicate' || pr.next <= this.#log.lastIndex) {
        this.#sendAppends(to, true);
      } else if (!pr.isPaused()) {
        const prevIndex = pr.next - 1;
        this.#send({ type: 'commit', to, term: this.#term, prevIndex, prevTerm: this.#log.term(prevIndex), commit: this.#log.committed, compactable: this.#compactable });
      }
    }
  }

  /**
   * Send `to` as much as its flow control allows: in replicate, several messages back to back without waiting
   * for answers (pipelining); in probe, one. `sendIfEmpty`: send even with no entries (to carry the commit index
   * or to probe).
   */
  #sendAppends(to: NodeId, sendIfEmpty: boolean): void {
    if (!this.#sendAppend(to, sendIfEmpty)) return;
    while (this.#sendAppend(to, false));
  }

  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to)!;
    // A follower that needs compacted entries can never be caught up (status says so); heartbeats still go to it.
    if (pr.isPaused() || this.#needsCompacted(pr)) return false;
    const prevIndex = pr.next - 1;
    const entries = this.#log.slice(pr.next, prevIndex + this.#maxEntries);
    if (this.#entrySize !== undefined && this.#maxBytes !== Infinity) {
      let bytes = 0;
      for (let i = 0; i < entries.length; i++) {
        const d = entries[i]!.data;
        bytes += d === null ? 0 : this.#entrySize(d);
        if (i > 0 && bytes > this.#maxBytes) {
          entries.length = i;
          break;
        }
      }
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    const msg: Omit<AppendMessage<P>, 'from'> = {
      type: 'app',
      to,
      term: this.#term,
      prevIndex,
      prevTerm: this.#log.term(prevIndex),
      entries,
      commit: this.#log.committed,
      compactable: this.#compactable,
    };
    this.#send(msg);
    pr.sent(entries.length, prevIndex + entries.length);
    return true;
  }

  /**
   * Commit the highest index a quorum holds durably — if it is from this term (§5.4.2, Figure 8). Called whenever
   * what the replicas hold changes, so it also moves the index that all of them hold (and that is committed).
   */
  #maybeCommit(): boolean {
    const matches = [this.#log.persisted];
    for (const pr of this.#progress.values()) matches.push(pr.match);
    matches.sort((a, b) => b - a);
    const index = matches[this.#quorum - 1];
    const committed = index > this.#log.committed && this.#log.term(index) === this.#term && this.#log.commitTo(index);
    this.#compactable = Math.max(this.#compactable, Math.min(matches[matches.length - 1], this.#log.committed));
    return committed;
  }

  /** What `compact` accepts: held by every replica and committed, and applied here. */
  #compactableIndex(): number {
    return Math.min(this.#compactable, this.#applied);
  }

  /** Whether the next entry `pr`'s follower needs is at or below the base: gone from this log. */
  #needsCompacted(pr: Progress): boolean {
    return pr.next <= this.#log.base.index;
  }

  #handleAppend(m: AppendMessage<P>): void {
    const reply = { type: 'appResp' as const, to: m.from, term: this.#term };
    if (m.prevIndex < this.#log.committed) {
      // Everything up to our commit index is known to match (committed entries never change).
      this.#send({ ...reply, index: this.#log.committed, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const last = this.#log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (last !== null) {
      this.#send({ ...reply, index: last, reject: false, hintIndex: 0, hintTerm: 0 });
    } else {
      const [hintIndex, hintTerm] = this.#log.findConflictByTerm(Math.min(m.prevIndex, this.#log.lastIndex), m.prevTerm);
      this.#send({ ...reply, index: m.prevIndex, reject: true, hintIndex, hintTerm });
    }
  }

  /** Commit what the leader committed, up to the entry it vouches for — if our log matches there. No answer. */
  #handleCommit(m: CommitMessage): void {
    if (this.#log.matchTerm(m.prevIndex, m.prevTerm)) this.#log.commitTo(Math.min(m.commit, m.prevIndex));
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    this.#log.commitTo(m.commit);
    this.#send({ type: 'heartbeatResp', to: m.from, term: this.#term });
  }

  // ── Helpers ─────────────────────────────────────────────────────────────────────────────────────────

  #send(m: Outgoing<P>): void {
    this.#msgs.push({ ...m, from: this.id } as Message<P>);
  }

  /** Whether payloads fit in one message (maxBytesPerMessage). */
  #fits(data: readonly P[]): boolean {
    if (this.#entrySize === undefined || this.#maxBytes === Infinity) return true;
    let bytes = 0;
    for (const d of data) bytes += this.#entrySize(d);
    return bytes <= this.#maxBytes;
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
