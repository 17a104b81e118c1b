// The daemon as the gRPC layer sees it: plain domain calls, no protobuf types.
// The composition root (actors/daemon.ts) implements this; actors/grpc/ maps it onto the .proto services.
// Errors: throw ApiError (runtime/errors.ts) with a code; the gRPC layer maps codes to status codes.
// Types the runtime, the machines or the transport already define are re-used, not restated.
import type { OutboxState } from '../../machines/outbox-delivery.ts';
import type { ReplayStep } from '../../runtime/replay.ts';
import type { HealthNode } from '../../runtime/supervisor.ts';
import type { PeerSummary } from '../transport/transport.ts';
import type { JsonObject, TaskPart, TaskState, TaskUpdate } from '../../machines/task.ts';
import type { TaskFilter, TaskInfo } from '../tasks/tasks.ts';
import type { StreamEvent, StreamEventContent } from '../tasks/task-events.ts';
import type { CardOverrides } from '../discovery/cards.ts';
import type { NameView } from '../discovery/name-claims.ts';
import type { SignedCard } from '../discovery/records.ts';
import type { AppendInput, AppendResult, ThreadInfo } from '../threads/threads.ts';
import type { CommittedBlock } from '../threads/chain-store.ts';
import type { ChainReport } from '../../machines/chain.ts';
import type { ThreadBackend } from '../../machines/thread.ts';

export type { ReplayStep };
export type PeerInfo = PeerSummary;
export type ActorHealth = HealthNode;

export interface InboxMessage {
  id: string;            // msg_<ULID>
  from: string;          // sender DID
  to: string;            // our DID
  text: string;          // UTF-8 body (empty when data is used)
  data: Uint8Array;      // binary body (empty when text is used)
  contentType: string;   // "text/plain" by default
  sentAt: number;        // ms since epoch, sender's clock (signed)
  receivedAt: number;    // ms since epoch, our clock, when durably appended
  read: boolean;
}

export interface OutboxEntry {
  id: string;
  to: string;
  state: OutboxState;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number | null;   // ms since epoch, when retrying
  deliveredAt: number | null;
  lastError: string;
  expiresAt: number;
}

/** `afterId`: only messages after this one in inbox order (exclusive) — the paging cursor. */
export interface InboxFilter { unreadOnly?: boolean; from?: string; since?: number; limit?: number; afterId?: string }

export interface Health {
  version: string;
  did: string;
  uptimeMs: number;
  peers: number;
  tree: ActorHealth;
  envelopes: { received: number; sent: number; rejected: Record<string, number> };
}

export interface Info { did: string; publicKeyHex: string; peerId: string; addresses: string[]; peers: number; uptimeMs: number; dataDir: string; grpcAddr: string; version: string }

export interface Status {
  inbox: { total: number; unread: number };
  outbox: Record<OutboxState, number>;
  /** Tasks here, by state as shown. */
  tasks: Partial<Record<TaskState, number>>;
  streams: number;
}

export type { TaskFilter, TaskInfo, StreamEvent, StreamEventContent, CardOverrides, NameView, SignedCard, AppendInput, AppendResult, ThreadInfo, CommittedBlock, ChainReport };

export interface ThreadEntryAt { height: number; index: number; bytes: Uint8Array }

export interface CreateTask { to: string; skill: string; metadata: JsonObject; input: TaskPart[]; deadline?: number; taskId?: string }

export interface NodeApi {
  // identity
  identity(): { did: string; publicKeyHex: string; peerId: string; dataDir: string };
  // discovery
  /** Publish a new version of our card; `overrides` replace moltbook.toml [agent] fields from now on. */
  publishCard(overrides: CardOverrides): Promise<SignedCard>;
  /** The verified card of `did`; NOT_FOUND when the mesh holds none. */
  getAgentCard(did: string, signal: AbortSignal): Promise<SignedCard>;
  /** Verified cards of agents offering `capability`, each as it is found. */
  findAgents(capability: string, options: { limit: number; timeoutMs: number; signal: AbortSignal }): AsyncIterable<SignedCard>;
  withdrawCard(): Promise<void>;
  // names
  /** Resolves once the claim is published; ALREADY_EXISTS while another DID holds the name. */
  claimName(name: string): Promise<NameView>;
  resolveName(name: string, signal: AbortSignal): Promise<NameView>;
  releaseName(name: string): Promise<void>;
  /** The names this daemon holds. */
  listNames(): NameView[];
  // threads
  createThread(req: { replicas: string[]; backend: ThreadBackend; f?: number }): Promise<ThreadInfo>;
  getThread(id: string): ThreadInfo;
  listThreads(pageSize: number, after?: string): { threads: ThreadInfo[]; next?: string };
  joinThread(id: string): Promise<ThreadInfo>;
  appendEntry(id: string, req: AppendInput & { returnOnAccept: boolean }, signal: AbortSignal): Promise<AppendResult>;
  appendEntryBatch(id: string, items: AppendInput[], returnOnAccept: boolean, signal: AbortSignal): Promise<AppendResult[]>;
  threadEntries(id: string, sinceHeight: number, pageSize: number, after?: { height: number; index: number }): { entries: ThreadEntryAt[]; next?: string };
  /** Committed blocks from `sinceHeight`: stored, then live; pulled at the reader's pace. */
  followThread(id: string, sinceHeight: number, signal: AbortSignal): AsyncIterable<CommittedBlock>;
  verifyThread(id: string): ChainReport;
  // messaging
  sendMessage(req: { to: string; text?: string; data?: Uint8Array; contentType?: string; ttlMs?: number }): Promise<{ messageId: string; queued: boolean }>;
  getInbox(filter: InboxFilter): Promise<{ messages: InboxMessage[]; unread: number }>;
  ackMessage(id: string): Promise<{ alreadyRead: boolean }>;
  /** Live inbox: calls onMessage for each message appended after the call. Returns an unsubscribe function.
   *  (The gRPC edge sends the unread backlog itself, paged through getInbox, with backpressure.) */
  subscribeInbox(onMessage: (m: InboxMessage) => void): () => void;
  getOutbox(filter: { id?: string; to?: string; pendingOnly?: boolean; limit?: number }): Promise<OutboxEntry[]>;
  // tasks
  createTask(req: CreateTask): Promise<TaskInfo>;
  getTask(id: string): TaskInfo;
  listTasks(filter: TaskFilter): { tasks: TaskInfo[]; next?: string };
  updateTask(id: string, target: TaskState, update: TaskUpdate): Promise<TaskInfo>;
  cancelTask(id: string, reason: string): Promise<TaskInfo>;
  /** Resolves once the task is terminal (or waits for the requester, with untilInputRequired), or as it is after
   *  `timeoutMs` / when `signal` aborts (timedOut). */
  waitTask(id: string, timeoutMs: number, signal: AbortSignal, options?: { untilInputRequired?: boolean }): Promise<{ task: TaskInfo; timedOut: boolean }>;
  /** Every task after each of its transitions here (and each created by a peer). Returns an unsubscribe function. */
  subscribeTasks(onChange: (t: TaskInfo) => void): () => void;
  publishTaskEvent(id: string, event: StreamEventContent): Promise<number>;
  /** Stored events from `fromSeq`, then live, ending once the task has ended and all are read. */
  taskEvents(id: string, fromSeq: number): AsyncIterable<StreamEvent> & { close(): void };
  // diag
  health(): Health;
  info(): Info;
  status(): Promise<Status>;
  config(): Record<string, unknown>;      // effective config (secrets removed)
  peers(): PeerInfo[];
  ping(target: string): Promise<{ latencyMs: number }>;   // target: DID, peer id or multiaddr
  connect(multiaddr: string): Promise<{ peerId: string; did: string }>;
  disconnect(target: string): Promise<void>;
  listStreams(prefix?: string): Promise<string[]>;
  replay(stream: string): AsyncIterable<ReplayStep>;
  shutdown(): void;                        // begins a graceful stop (the gRPC call returns first)
  /** Resolves when the daemon begins shutting down: server streams end with UNAVAILABLE. */
  onShutdown(cb: () => void): void;
}
