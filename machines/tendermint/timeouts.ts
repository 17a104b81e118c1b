// How long a validator waits before giving up on a step, and how often it re-sends what it has said.
//
// Tendermint is safe whatever the delays and live under partial synchrony: after some unknown global stabilisation
// time (GST) every message arrives within an unknown bound Δ. Timeouts that grow with the round (base + round ×
// delta) eventually exceed Δ, so after GST some round is long enough for the honest validators to agree (the
// paper's liveness argument). Height starts every round count at 0 again.
//
// The gossip interval is not in the paper: the paper assumes that a message received by an honest validator
// reaches every honest validator. Over a network that loses messages before GST, re-sending the latest votes
// periodically (while a height is in progress, never while idle) is what provides that.

export interface TimeoutParams {
  proposeBaseMs: number;
  proposeDeltaMs: number;
  prevoteBaseMs: number;
  prevoteDeltaMs: number;
  precommitBaseMs: number;
  precommitDeltaMs: number;
  /** Re-send our latest votes (and the proof of lock we hold) this often while a height is in progress. */
  gossipMs: number;
}

/** Tendermint's own defaults scaled for a thread of a few validators on one network (heights take ~10 ms). */
export const DEFAULT_TIMEOUTS: TimeoutParams = {
  proposeBaseMs: 1000,
  proposeDeltaMs: 500,
  prevoteBaseMs: 500,
  prevoteDeltaMs: 250,
  precommitBaseMs: 500,
  precommitDeltaMs: 250,
  gossipMs: 500,
};

export type StepTimeoutKind = 'propose' | 'prevote' | 'precommit';

/** timeoutPropose(r), timeoutPrevote(r), timeoutPrecommit(r) of the paper: base + r × delta. */
export function timeoutMs(params: TimeoutParams, kind: StepTimeoutKind, round: number): number {
  switch (kind) {
    case 'propose':
      return params.proposeBaseMs + round * params.proposeDeltaMs;
    case 'prevote':
      return params.prevoteBaseMs + round * params.prevoteDeltaMs;
    case 'precommit':
      return params.precommitBaseMs + round * params.precommitDeltaMs;
  }
}
