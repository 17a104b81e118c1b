// Tendermint BFT for threads: the pure core (core.ts) and the pure checks anyone can run on what it produces.
// Read core.ts's header for the contract between the core and the shell that persists and sends.
export { Tendermint } from './core.ts';
export type { Decided, Ready, Step, TendermintConfig, TendermintEvent, TendermintPersisted, TendermintStatus, Timeout } from './core.ts';
export { verifyCommit } from './commit.ts';
export type { Check, CommitCertificate, Verify } from './commit.ts';
export { makeEvidence, verifyEvidence } from './evidence.ts';
export type { Evidence, EvidenceKind } from './evidence.ts';
export { HASH_HEX, header, parseMessage, sameContent } from './messages.ts';
export type { Message, MessageType, Proposal, ProposalHeader, SignedHeader, Vote, VoteType } from './messages.ts';
export { signBytes } from './sign-bytes.ts';
export { DEFAULT_TIMEOUTS, timeoutMs } from './timeouts.ts';
export type { TimeoutParams } from './timeouts.ts';
export { faultsTolerated, oneHonest, proposer, quorum } from './validators.ts';
