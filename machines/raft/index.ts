// The Raft core's public surface: a pure replica (RaftCore) and the plain values it exchanges with its shell.
// The contract (persist, then send, then apply, then advance) is stated at the top of core.ts.
export { RaftCore } from './core.ts';
export { fromLeader } from './types.ts';
export type {
  AppendMessage,
  AppendResponse,
  CommitMessage,
  Entry,
  HardState,
  HeartbeatMessage,
  HeartbeatResponse,
  LogPosition,
  Message,
  MessageType,
  NodeId,
  PersistedState,
  ProposalMessage,
  ProposeResult,
  RaftConfig,
  Ready,
  Role,
  SoftState,
  Status,
  VoteRequest,
  VoteResponse,
} from './types.ts';
