// The values that cross the boundary of the Raft core (machines/raft/core.ts): what goes in (configuration, the
// persisted state to recover from, messages from peers) and what comes out (a Ready: what to persist, send and
// apply). Plain data only, so a shell can encode them as it likes (CBOR on a libp2p stream, rows in LMDB).
//
// The core never looks inside an entry's payload (`P`): a thread's blocks, a test's strings, anything.

/** A replica's identity (a DID in the daemon). The membership is fixed when the core is created. */
export type NodeId = string;

/** One slot of the replicated log. Indexes start at 1 and have no gaps; index 0 (term 0) is the empty prefix. */
export interface Entry<P = Uint8Array> {
  readonly index: number;
  readonly term: number;
  /** The proposer's opaque payload; null for the empty entry a new leader appends to commit its term (apply nothing). */
  readonly data: P | null;
}

/** What must survive a crash besides the log: a replica that forgets its vote or term could vote twice in a term. */
export interface HardState {
  readonly term: number;
  /** The candidate voted for in `term`, or null. */
  readonly vote: NodeId | null;
  /** Highest index known committed. Losing it is safe (it is re-learned) but keeping it speeds recovery. */
  readonly commit: number;
}

/** An entry's place in the log, without its payload: what is left of the last entry a compaction dropped. */
export interface LogPosition {
  readonly index: number;
  readonly term: number;
}

/**
 * What a replica recovers from: its last persisted hard state and its persisted log — `base`, the last entry it
 * compacted ((0, 0) when it never did), then `entries` (indexes base.index + 1 … n).
 */
export interface PersistedState<P = Uint8Array> {
  readonly hardState: HardState;
  readonly base?: LogPosition;
  readonly entries: readonly Entry<P>[];
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile facts a shell may want (whom to redirect clients to); never persisted. */
export interface SoftState {
  readonly role: Role;
  /** The leader this replica follows (itself when leader), or null while none is known. */
  readonly lead: NodeId | null;
}

// ── Messages ─────────────────────────────────────────────────────────────────────────────────────────────
// Every message names its sender and receiver and carries the sender's term (the pre-vote pair carries the term
// the candidate *would* have; a forwarded proposal carries 0, as it is not part of any term's exchange).

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/**
 * On every message from the leader (app, heartbeat, commit): the highest index that every replica holds durably
 * and that is committed — no leader, now or later, can need to send an entry up to it, so any replica may compact
 * its log up to it (once applied). Absent from senders that predate compaction (read as 0).
 */
interface Compactable {
  readonly compactable?: number;
}

/** AppendEntries: "after (prevIndex, prevTerm) my log holds `entries`; I have committed up to `commit`". */
export interface AppendMessage<P = Uint8Array> extends Envelope, Compactable {
  readonly type: 'app';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry<P>[];
  readonly commit: number;
}

/**
 * The answer to `app`. Accepted: `index` is the last index now known to match the leader's log. Rejected:
 * `index` is the rejected prevIndex, and (`hintIndex`, `hintTerm`) is the follower's guess at the last entry that
 * could match (its last entry at or below prevIndex whose term is ≤ prevTerm), so the leader can skip a whole
 * term's worth of entries per round trip instead of one (the "fast backtracking" of the Raft thesis, §5.3).
 */
export interface AppendResponse extends Envelope {
  readonly type: 'appResp';
  readonly index: number;
  readonly reject: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** The leader is alive. `commit` is capped at what the receiver is known to hold, so it never commits past it. */
export interface HeartbeatMessage extends Envelope, Compactable {
  readonly type: 'heartbeat';
  readonly commit: number;
}

export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeatResp';
}

/**
 * A new commit index for a follower that has every entry already (nothing to append), and that does not answer it:
 * an empty `app` would tell the leader nothing it does not know, yet cost a message each way. As in `app`, the
 * follower commits up to min(commit, prevIndex) only if its log holds (prevIndex, prevTerm). If it is lost, the
 * next `app` or heartbeat carries the commit index.
 */
export interface CommitMessage extends Envelope, Compactable {
  readonly type: 'commit';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly commit: number;
}

/** RequestVote (`vote`), or its dry run (`preVote`, with the term the candidate would campaign in). */
export interface VoteRequest extends Envelope {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
}

export interface VoteResponse extends Envelope {
  readonly type: 'voteResp' | 'preVoteResp';
  readonly reject: boolean;
}

/** Proposals a follower forwards to the leader it knows (term 0). A non-leader receiving one drops it. */
export interface ProposalMessage<P = Uint8Array> extends Envelope {
  readonly type: 'prop';
  readonly data: readonly P[];
}

export type Message<P = Uint8Array> =
  | AppendMessage<P>
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | CommitMessage
  | VoteRequest
  | VoteResponse
  | ProposalMessage<P>;

export type MessageType = Message['type'];

/** A leader's messages about its log and commit index (AppendEntries, heartbeat, commit notice): a receiver takes
 *  their sender as leader, and a shell may send them before the leader's own write is durable. */
export function fromLeader(m: Message<unknown>): m is AppendMessage<unknown> | HeartbeatMessage | CommitMessage {
  return m.type === 'app' || m.type === 'heartbeat' || m.type === 'commit';
}

// ── Output ───────────────────────────────────────────────────────────────────────────────────────────────

/**
 * What the shell must do, in this order (see the contract in core.ts):
 *   1. persist `hardState` (if present) and `entries` (if any) — atomically, or entries first;
 *   2. send `messages`;
 *   3. apply `committed` to the state machine, in order;
 *   4. call `advance(ready)`.
 */
export interface Ready<P = Uint8Array> {
  /** Present when term, vote or commit changed since the previous Ready. */
  readonly hardState?: HardState;
  /**
   * Entries to write. Not only appends: `entries[0].index` may be ≤ the last persisted index, in which case every
   * persisted entry from that index on must be deleted first (a new leader overwrote an uncommitted suffix).
   */
  readonly entries: readonly Entry<P>[];
  /** To send only after step 1 is durable: votes and acknowledgements promise what was just persisted. */
  readonly messages: readonly Message<P>[];
  /** Committed entries not yet handed out, in index order (including the leaders' empty entries, data null). */
  readonly committed: readonly Entry<P>[];
  /** Present when role or leader changed since the previous Ready. */
  readonly softState?: SoftState;
  /**
   * Whether step 1 needs a synchronous (fsync'd) write: true when there are entries or term/vote changed. A Ready
   * whose only hard-state change is `commit` may be written lazily (a lost commit index is re-learned).
   */
  readonly mustSync: boolean;
}

/** The outcome of `propose`: where the payload went, or why it was dropped (the shell should retry later). */
export type ProposeResult =
  | { readonly ok: true; readonly via: 'appended'; readonly index: number; readonly term: number }
  | { readonly ok: true; readonly via: 'forwarded'; readonly to: NodeId }
  | { readonly ok: false; readonly reason: 'no-leader' };

export interface RaftConfig<P = Uint8Array> {
  readonly id: NodeId;
  /** Every replica, this one included; the same list (in any order) on every replica. */
  readonly peers: readonly NodeId[];
  /** T: a follower that hears no leader for a random number of ticks in [T, 2T) starts an election. */
  readonly electionTicks: number;
  /** H: the leader sends heartbeats every H ticks (H < T; typically T/10). */
  readonly heartbeatTicks: number;
  /** The only source of randomness (the election timeout): returns a number in [0, 1). */
  readonly random: () => number;
  /** Ask "would you vote for me?" before raising the term, so a rejoining replica cannot depose a leader. Default true. */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum within T ticks steps down; followers refuse votes while they hear their leader. Default true. */
  readonly checkQuorum?: boolean;
  /** At most this many entries per AppendEntries message. Default 256. */
  readonly maxEntriesPerMessage?: number;
  /**
   * At most this many payload bytes per AppendEntries message (by `entrySize`), but always at least one entry, so a
   * message stays under the transport's size limit. Default: no limit.
   */
  readonly maxBytesPerMessage?: number;
  /** The size of a payload, for `maxBytesPerMessage`. */
  readonly entrySize?: (data: P) => number;
  /** At most this many AppendEntries with entries in flight (unacknowledged) per follower. Default 64. */
  readonly maxInflight?: number;
  /**
   * On restart: the last index the state machine has applied (so committed entries up to it are not handed out
   * again); at least the persisted log's base (entries are compacted only once applied). Default 0.
   */
  readonly applied?: number;
}

/** A snapshot of the core's state, for shells, diagnostics and tests. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly lead: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** Entries up to here are known durable (acknowledged through `advance`). */
  readonly persistedIndex: number;
  /** The last entry compacted away ((0, 0) when none): the log in memory starts right after it. */
  readonly base: LogPosition;
  /** The highest index `compact` accepts now: applied here, committed, and held durably by every replica. */
  readonly compactable: number;
  /**
   * Leader only: followers whose log stops below `base` — they need entries this log compacted, so they get only
   * heartbeats. Impossible unless a replica lost its disk (unsupported: it must be re-created).
   */
  readonly needCompactedEntries: readonly NodeId[];
}
