// Thread RPCs of A2ANode: CreateThread, GetThread, ListThreads, JoinThread, AppendEntry, AppendEntryBatch,
// GetThreadEntries, SubscribeThread, VerifyThread — protobuf in, domain calls out (actors/threads), and back.
import type { A2ANodeServer } from '../../proto/gen/moltmesh/v1/a2a_node.ts';
import {
  ThreadBackend as PbBackend,
  ThreadState as PbState,
  type AppendEntryResponse as PbAppendResult,
  type CommitSig as PbCommitSig,
  type SubscribeThreadResponse,
  type Thread as PbThread,
  type ThreadBlock as PbBlock,
  type ThreadEntry as PbEntry,
} from '../../proto/gen/moltmesh/v1/threads.ts';
import { invalid } from '../../runtime/errors.ts';
import { decodeEntry, toHex } from '../../machines/chain.ts';
import type { ThreadState } from '../../machines/thread.ts';
import type { AppendInput, AppendResult, CommittedBlock, NodeApi, ThreadEntryAt, ThreadInfo } from './node-api.ts';
import { callSignal, serverStream, unary, type HandlerContext } from './rpc.ts';
import { limit, nonNegative, requireDid } from './validate.ts';

type ThreadHandlers = Pick<A2ANodeServer,
  'createThread' | 'getThread' | 'listThreads' | 'joinThread' | 'appendEntry' | 'appendEntryBatch' | 'getThreadEntries' | 'subscribeThread'
  | 'verifyThread'>;

/** AppendEntry without a deadline of its own waits this long for the commit. */
const APPEND_TIMEOUT_MS = 30_000;
const PAGE_TOKEN = /^(\d{1,15})\.(\d{1,6})$/;

export function threadHandlers(api: NodeApi, ctx: HandlerContext): ThreadHandlers {
  return {
    createThread: unary(ctx, 'CreateThread', async (req) => {
      const backend = req.backend === PbBackend.THREAD_BACKEND_TENDERMINT ? 'tendermint' : req.backend === PbBackend.THREAD_BACKEND_RAFT || req.backend === PbBackend.THREAD_BACKEND_UNSPECIFIED ? 'raft' : undefined;
      if (!backend) throw invalid('backend', 'raft or tendermint');
      const thread = await api.createThread({
        replicas: req.replicas.map((r, i) => requireDid(`replicas[${i}]`, r)),
        backend,
        ...(req.faultTolerance ? { f: req.faultTolerance } : {}),
      });
      return { thread: toPbThread(thread) };
    }),

    getThread: unary(ctx, 'GetThread', (req) => ({ thread: toPbThread(api.getThread(req.threadId)) })),

    listThreads: unary(ctx, 'ListThreads', (req) => {
      const { threads, next } = api.listThreads(limit('page_size', req.pageSize, 50), req.pageToken || undefined);
      return { threads: threads.map(toPbThread), nextPageToken: next ?? '' };
    }),

    joinThread: unary(ctx, 'JoinThread', async (req) => ({ thread: toPbThread(await api.joinThread(req.threadId)) })),

    appendEntry: unary(ctx, 'AppendEntry', async (req, call) => {
      const entry = appendInput(req, 'kind');
      return toPbAppendResult(await api.appendEntry(req.threadId, { ...entry, returnOnAccept: req.returnOnAccept }, callSignal(call, APPEND_TIMEOUT_MS)));
    }),

    appendEntryBatch: unary(ctx, 'AppendEntryBatch', async (req, call) => {
      const entries = req.entries.map((item, i) => appendInput(item, `entries[${i}].kind`));
      const results = await api.appendEntryBatch(req.threadId, entries, req.returnOnAccept, callSignal(call, APPEND_TIMEOUT_MS));
      return { results: results.map(toPbAppendResult) };
    }),

    getThreadEntries: unary(ctx, 'GetThreadEntries', (req) => {
      let after: { height: number; index: number } | undefined;
      if (req.pageToken) {
        const m = PAGE_TOKEN.exec(req.pageToken);
        if (!m) throw invalid('page_token', 'not a token from a previous GetThreadEntries page');
        after = { height: Number(m[1]), index: Number(m[2]) };
      }
      const { entries, next } = api.threadEntries(req.threadId, nonNegative('since_height', req.sinceHeight), limit('page_size', req.pageSize, 100), after);
      return { entries: entries.map(toPbEntry), nextPageToken: next ?? '' };
    }),

    subscribeThread: serverStream<{ threadId: string; sinceHeight: number }, SubscribeThreadResponse>(ctx, 'SubscribeThread', async (req, sink) => {
      api.getThread(req.threadId); // NOT_FOUND / INVALID_ARGUMENT before the stream starts
      const closed = new AbortController();
      sink.onClose(() => closed.abort());
      for await (const b of api.followThread(req.threadId, nonNegative('since_height', req.sinceHeight), closed.signal)) {
        if (!(await sink.write({ block: toPbBlock(b) }, 1024))) return;
      }
    }),

    verifyThread: unary(ctx, 'VerifyThread', (req) => {
      const r = api.verifyThread(req.threadId);
      return {
        ok: !r.bad, blocks: r.blocks, entries: r.entries, headHash: toHex(r.head),
        ...(r.bad ? { firstBadHeight: r.bad.height, error: r.bad.reason } : { error: '' }),
      };
    }),
  };
}

const STATES: Record<ThreadState, PbState> = {
  inviting: PbState.THREAD_STATE_INVITING,
  invited: PbState.THREAD_STATE_INVITED,
  active: PbState.THREAD_STATE_ACTIVE,
  declined: PbState.THREAD_STATE_DECLINED,
  failed: PbState.THREAD_STATE_FAILED,
};

function toPbThread(t: ThreadInfo): PbThread {
  return {
    id: t.id,
    backend: t.backend === 'raft' ? PbBackend.THREAD_BACKEND_RAFT : PbBackend.THREAD_BACKEND_TENDERMINT,
    creator: t.creator,
    replicas: t.replicas,
    faultTolerance: t.f,
    state: STATES[t.state] ?? PbState.THREAD_STATE_UNSPECIFIED,
    failureReason: t.failureReason,
    height: t.height,
    headHash: t.headHash,
    leader: t.leader,
    evidence: t.evidence.map((e) => ({
      validator: e.validator, height: e.height, round: e.round, kind: e.kind, detailJson: e.detail, observedAtMs: e.observedAt,
    })),
    createdAtMs: t.createdAt,
    joined: t.joined,
  };
}

/** One entry of AppendEntry or AppendEntryBatch (`kindField`: where a missing kind is reported). */
function appendInput(req: { kind: string; payload: Uint8Array; contentType: string; entryId: string }, kindField: string): AppendInput {
  if (!req.kind) throw invalid(kindField, 'is required, e.g. decision');
  return {
    kind: req.kind,
    payload: new Uint8Array(req.payload),
    contentType: req.contentType || 'application/json',
    ...(req.entryId ? { entryId: req.entryId } : {}),
  };
}

function toPbAppendResult(r: AppendResult): PbAppendResult {
  return { entryId: r.entryId, committed: r.committed, height: r.height ?? 0, index: r.index ?? 0, blockHash: r.blockHash ?? '' };
}

function toPbEntry(e: ThreadEntryAt): PbEntry {
  const d = decodeEntry(e.bytes);
  return {
    entryId: d.id, author: d.author, kind: d.kind, payload: Buffer.from(d.payload), contentType: d.contentType,
    submittedAtMs: d.submittedAt, signature: Buffer.from(d.signature), height: e.height, index: e.index,
  };
}

function toPbBlock(c: CommittedBlock): PbBlock {
  const b = c.block;
  return {
    height: b.height, hash: toHex(c.hash), parentHash: toHex(b.parent), entriesRoot: toHex(b.entriesRoot), proposer: b.proposer, timeMs: b.time,
    entries: b.entries.map((bytes, index) => toPbEntry({ height: b.height, index, bytes })),
    commit: commitSigs(c.certificate),
  };
}

/** A Tendermint commit certificate's precommits (Raft blocks have none). */
function commitSigs(certificate: unknown): PbCommitSig[] {
  const precommits = (certificate as { precommits?: unknown } | undefined)?.precommits;
  if (!Array.isArray(precommits)) return [];
  return precommits.map((v: { validator: string; round: number; signature: Uint8Array }) => ({
    validator: v.validator, round: v.round, signature: Buffer.from(v.signature),
  }));
}
