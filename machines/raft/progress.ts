// What a leader knows about one follower's log, and the flow control of what it sends it (etcd's tracker.Progress).
//
//   probe ──an append is accepted──▶ replicate ──a rejection, or the follower restarted──▶ probe
//
// probe: we do not know where the follower's log ends. Send one AppendEntries at a time (at `next`) and wait for
//   its answer (or the next heartbeat answer); each rejection moves `next` back, by whole terms (fast backtracking).
// replicate: the follower's log matches up to `match`. Stream: send entries from `next` on without waiting for
//   answers (pipelining), advancing `next` optimistically, with at most `maxInflight` unacknowledged messages.
export type ProgressState = 'probe' | 'replicate';

export class Progress {
  /** The highest index known to be replicated on the follower (acknowledged after its persistence). */
  match = 0;
  /** The index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** probe: a message is out and unanswered, so wait (a heartbeat answer clears it). */
  probeSent = false;
  /** The follower answered something since the last check-quorum round. */
  recentActive = false;
  /** replicate: the last index of each unacknowledged message, oldest first. */
  readonly #inflight: number[] = [];
  readonly #maxInflight: number;

  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.#maxInflight = maxInflight;
  }

  get inflight(): number {
    return this.#inflight.length;
  }

  isPaused(): boolean {
    return this.state === 'probe' ? this.probeSent : this.#inflight.length >= this.#maxInflight;
  }

  becomeProbe(): void {
    this.#reset('probe');
  }

  becomeReplicate(): void {
    this.#reset('replicate');
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.#inflight.length = 0;
    this.next = this.match + 1;
  }

  /** An AppendEntries carrying entries up to `lastIndex` (`count` of them) went out. */
  sent(count: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.#inflight.push(lastIndex);
      }
    } else {
      this.probeSent = true;
    }
  }

  /** An acceptance up to `index`; false when it tells nothing new (a duplicate or reordered answer). */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /** Release the window for every message up to `index` (it has been acknowledged). */
  freeTo(index: number): void {
    let n = 0;
    while (n < this.#inflight.length && this.#inflight[n] <= index) n++;
    this.#inflight.splice(0, n);
  }

  /** A heartbeat answer while the window is full: one message was probably lost; let one more through. */
  freeFirst(): void {
    this.#inflight.shift();
  }

  isFull(): boolean {
    return this.#inflight.length >= this.#maxInflight;
  }

  /**
   * A rejection of the append at `rejected`, with the index the follower's (and our) hint points to. Returns
   * false for a stale rejection (one that answers a message sent before we moved on).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
