// The threads actor: replicated, hash-chained logs shared by a fixed set of replicas.
//
//   thread/<id>          the thread machine (machines/thread.ts): invites, joins, failure — one supervised actor each
//   thread-chain/<id>    the committed chain (chain-store.ts)
//   thread-raft/<id>     the Raft log (raft-replica.ts), while the thread runs here
//   thread-tm/<id>       the Tendermint consensus log (tendermint-validator.ts), for a tendermint thread
//   thread-outbox/…      invites and join notices, delivered through the outbox across restarts and offline peers
//
// Consensus runs for a thread once this replica has joined it (the creator from the start), as a child of the
// `threads/consensus` supervisor: restarted alone when it crashes, and past its crash budget the thread is marked
// failed here, with the reason, while other threads carry on. Consensus messages travel in signed envelopes on the
// direct sessions between replicas (actors/transport); anything from a non-member is dropped and counted.
import type { AnyEventObject, AnyMachineSnapshot } from 'xstate';
import type { Clock, Random } from '../../runtime/clock.ts';
import { ApiError, invalid, notFound } from '../../runtime/errors.ts';
import type { EventStore } from '../../runtime/event-store.ts';
import { newId } from '../../runtime/ids.ts';
import type { Logger } from '../../runtime/log.ts';
import { foldStream } from '../../runtime/persisted-actor.ts';
import { SupervisedActors } from '../../runtime/supervised-actors.ts';
import { Supervisor } from '../../runtime/supervisor.ts';
import type { Effect } from '../../runtime/transitions.ts';
import { apiFieldName, ChainError, checkEntry, signEntry, toHex, type ChainReport, type Genesis, type Verify } from '../../machines/chain.ts';
import type { Message } from '../../machines/raft/index.ts';
import { faultRule, maxFaults, threadMachine, threadStateOf, type ThreadBackend, type ThreadContext, type ThreadInput, type ThreadState } from '../../machines/thread.ts';
import { isDid, publicKeyFromDid } from '../identity/did.ts';
import { verifySignature, type Identity } from '../identity/ed25519.ts';
import { MAX_TTL_MS } from '../messaging/protocol.ts';
import { Outbox, type DeliveryKind } from '../messaging/outbox.ts';
import type { Transport } from '../transport/transport.ts';
import { ChainStore, type CommittedBlock } from './chain-store.ts';
import { RaftReplica } from './raft-replica.ts';
import type { ReplicaOptions } from './replica-options.ts';
import { readEvidence, TendermintValidator, type RecordedEvidence, type TmPayload } from './tendermint-validator.ts';

export const THREAD_PREFIX = 'thread/';
export const THREAD_OUTBOX_PREFIX = 'thread-outbox/';
const THREAD_ENVELOPE = 'thread';
const RAFT_ENVELOPE = 'thread.raft';
const TM_ENVELOPE = 'thread.tm';
const THREAD_ID = /^thr_[0-9A-HJKMNP-TV-Z]{26}$/;
export const MAX_REPLICAS = 64;

export interface ThreadInfo {
  id: string;
  backend: ThreadBackend;
  creator: string;
  replicas: string[];
  f: number;
  state: ThreadState;
  failureReason: string;
  height: number;
  headHash: string;
  leader: string;
  /** Tendermint: validators caught signing two conflicting messages (what this replica saw). */
  evidence: RecordedEvidence[];
  joined: string[];
  createdAt: number;
}

/** One entry to append (AppendEntry, or an item of AppendEntryBatch). */
export interface AppendInput {
  kind: string;
  payload: Uint8Array;
  contentType: string;
  entryId?: string;
}

/** Most entries in one AppendEntryBatch call (a call's entries may span several blocks). */
export const MAX_BATCH_APPEND = 1_000;

/** The abort reason once an append is answered: one shared Error, not a DOMException per call. */
const ANSWERED = new Error('the append was answered');

export interface AppendResult {
  entryId: string;
  committed: boolean;
  height?: number;
  index?: number;
  blockHash?: string;
}

export interface ThreadsOptions {
  identity: Identity;
  store: EventStore;
  clock: Clock;
  random: Random;
  transport: Transport;
  supervisor: Supervisor;
  log: Logger;
  retry: { initialMs: number; maxMs: number };
  /** Join threads we are invited to without asking (config `threads.auto_join`). */
  autoJoin: boolean;
}

type ThreadEnvelope =
  | { kind: 'invite'; genesis: Genesis; f: number }
  | { kind: 'joined'; thread: string };

const THREAD_DELIVERY: DeliveryKind = {
  prefix: THREAD_OUTBOX_PREFIX,
  request: (p) => ({ type: THREAD_ENVELOPE, payload: p.content }),
  reply: (payload) => {
    const ack = payload as { applied?: unknown; error?: unknown; permanent?: unknown } | undefined;
    if (ack?.applied === true) return true;
    return { error: typeof ack?.error === 'string' ? ack.error.slice(0, 500) : 'peer did not acknowledge', permanent: ack?.permanent === true };
  },
};

export const verifyEntrySignature: Verify = (did, bytes, sig) => {
  try {
    return verifySignature(publicKeyFromDid(did), bytes, sig);
  } catch {
    return false;
  }
};

export class Threads {
  readonly #o: ThreadsOptions;
  readonly #machines: SupervisedActors;
  readonly #tree: Supervisor;
  readonly #consensus: Supervisor;
  readonly #replicas = new Map<string, RaftReplica | TendermintValidator>();
  readonly #chains = new Map<string, ChainStore>();
  readonly outbox: Outbox;
  /** Envelopes dropped because their sender is not a replica of the thread, by thread. */
  readonly dropped = new Map<string, number>();

  private constructor(o: ThreadsOptions) {
    this.#o = o;
    this.#tree = new Supervisor(`${o.supervisor.path}/threads`, { clock: o.clock });
    this.#consensus = new Supervisor(`${o.supervisor.path}/threads/consensus`, { clock: o.clock });
    this.#machines = new SupervisedActors({
      supervisor: this.#tree,
      actorOptions: (id, onCrash) => ({
        store: o.store, stream: THREAD_PREFIX + id, machine: threadMachine, clock: o.clock, onCrash,
        perform: (effect: Effect) => this.#perform(id, effect),
      }),
      onFailed: (id, reason) => o.log('error', 'thread machine failed past its crash budget', { thread: id, reason }),
      onTransition: (id, actor) => void this.#runIfJoined(id, actor.snapshot),
    });
    this.outbox = new Outbox({
      store: o.store, clock: o.clock, random: o.random, transport: o.transport, supervisor: new Supervisor(`${o.supervisor.path}/threads/outbox`, { clock: o.clock }),
      kind: THREAD_DELIVERY,
    });
  }

  /** Registers the envelope handlers: call before the transport starts; then `start()` once it runs. */
  static create(o: ThreadsOptions): Threads {
    const threads = new Threads(o);
    o.transport.handle(THREAD_ENVELOPE, (env) => threads.#onThreadEnvelope(env.from, env.payload));
    o.transport.handle(RAFT_ENVELOPE, async (env) => {
      threads.#onRaft(env.from, env.payload);
      return { type: 'ok', payload: null };
    });
    o.transport.handle(TM_ENVELOPE, async (env) => ({ type: 'thread.tm.reply', payload: threads.#onTendermint(env.from, env.payload) ?? null }));
    return threads;
  }

  async start(): Promise<void> {
    const tree = this.#tree;
    const consensus = this.#consensus;
    await this.#o.supervisor.startChild({
      id: 'threads',
      start: () => ({
        stop: async () => {
          await consensus.stop();
          await tree.stop();
        },
        tree: () => ({ ...tree.tree(), children: [...tree.tree().children, consensus.tree()] }),
      }),
    });
    for (const stream of [...this.#o.store.liveStreams(THREAD_PREFIX)]) await this.#machines.resume(stream.slice(THREAD_PREFIX.length));
    for (const [id, actor] of this.#machines.entries()) await this.#runIfJoined(id, actor.snapshot);
    await this.outbox.start();
  }

  peerConnected(did: string): void {
    this.outbox.peerConnected(did);
    for (const replica of this.#replicas.values()) if (replica instanceof TendermintValidator) replica.peerConnected(did);
  }

  // ── API ────────────────────────────────────────────────────────────────────────────────────────────────

  async create(req: { replicas: string[]; backend: ThreadBackend; f?: number }): Promise<ThreadInfo> {
    const self = this.#o.identity.did;
    req.replicas.forEach((r, i) => {
      if (!isDid(r)) throw invalid(`replicas[${i}]`, `${JSON.stringify(String(r).slice(0, 80))} is not a did:key DID`);
    });
    const replicas = [...new Set([self, ...req.replicas])];
    if (replicas.length > MAX_REPLICAS) throw invalid('replicas', `at most ${MAX_REPLICAS}`);
    const f = req.f ?? maxFaults(req.backend, replicas.length);
    const problem = faultRule(req.backend, replicas.length, f);
    if (problem) throw new ApiError('FAILED_PRECONDITION', `fault_tolerance: ${problem}`, 'fault_tolerance');
    const input: ThreadInput = { id: newId('thr'), backend: req.backend, replicas, creator: self, self, f, createdAt: this.#o.clock.now() };
    const actor = await this.#machines.create(input.id, input);
    await this.#runIfJoined(input.id, actor.snapshot);
    return this.get(input.id);
  }

  async join(id: string): Promise<ThreadInfo> {
    const state = threadStateOf(this.#snapshot(id).value);
    if (state === 'invited') await this.#machines.get(id)?.send({ type: 'JOIN' });
    else if (state === 'declined' || state === 'failed') throw new ApiError('FAILED_PRECONDITION', `thread ${id} is ${state} here`);
    return this.get(id);
  }

  get(id: string): ThreadInfo {
    const snapshot = this.#snapshot(id);
    const c = snapshot.context as ThreadContext;
    const chain = this.#chain(c);
    return {
      id: c.id, backend: c.backend, creator: c.creator, replicas: c.replicas, f: c.f, state: threadStateOf(snapshot.value),
      failureReason: c.failureReason, height: chain.height, headHash: toHex(chain.head), leader: this.#replicas.get(id)?.leader ?? '',
      evidence: c.backend === 'tendermint' ? readEvidence(this.#o.store, id) : [], joined: c.joined, createdAt: c.createdAt,
    };
  }

  list(pageSize: number, after?: string): { threads: ThreadInfo[]; next?: string } {
    const ids = this.#o.store.listStreams(THREAD_PREFIX).map((s) => s.slice(THREAD_PREFIX.length)).filter((id) => !after || id > after);
    const page = ids.slice(0, pageSize);
    return { threads: page.map((id) => this.get(id)), ...(ids.length > pageSize ? { next: page[page.length - 1]! } : {}) };
  }

  /**
   * Sign and append an entry. Resolves once it is committed (with where it landed), or once it is durably
   * accepted here with `returnOnAccept`. The same entry id again never adds a second entry.
   */
  async append(id: string, req: AppendInput & { returnOnAccept: boolean }, signal: AbortSignal): Promise<AppendResult> {
    return (await this.#appendAll(id, [req], req.returnOnAccept, signal, (_, name) => name))[0]!;
  }

  /**
   * Sign and append many entries at once (MAX_BATCH_APPEND at most): every one is checked before any is accepted,
   * so one bad entry refuses the call and appends nothing; accepted in one turn, they share blocks. Resolves, in
   * request order, once all are committed (or all accepted, with `returnOnAccept`).
   */
  async appendBatch(id: string, items: readonly AppendInput[], returnOnAccept: boolean, signal: AbortSignal): Promise<AppendResult[]> {
    if (items.length === 0) throw invalid('entries', 'is empty: give at least one entry');
    if (items.length > MAX_BATCH_APPEND) throw invalid('entries', `has ${items.length} entries; at most ${MAX_BATCH_APPEND} per call (send the rest in another)`);
    return this.#appendAll(id, items, returnOnAccept, signal, (i, name) => `entries[${i}].${name}`);
  }

  async #appendAll(id: string, items: readonly AppendInput[], returnOnAccept: boolean, signal: AbortSignal, field: (i: number, name: string) => string): Promise<AppendResult[]> {
    // A daemon knows only the threads it was invited to: one it does not know, it does not replicate, and only
    // replicas may append (a non-member cannot tell a thread it is not in from one that does not exist).
    const snapshot = this.#find(id);
    if (!snapshot) {
      throw new ApiError('PERMISSION_DENIED', `this daemon is not a replica of ${id} (no invite for it arrived here); only a thread's replicas may append`);
    }
    const c = snapshot.context as ThreadContext;
    const state = threadStateOf(snapshot.value);
    if (state === 'declined') throw new ApiError('PERMISSION_DENIED', `this daemon declined to replicate ${id}; only replicas may append`);
    if (state === 'failed') throw new ApiError('FAILED_PRECONDITION', `thread ${id} failed here: ${c.failureReason}`);
    if (state === 'invited') throw new ApiError('FAILED_PRECONDITION', `this daemon has not joined ${id} yet (moltmesh-daemon join-thread --id ${id})`);
    const chain = this.#chain(c);
    const landedAt = (entryId: string, at: { height: number; index: number; hash: Uint8Array }): AppendResult =>
      ({ entryId, committed: true, height: at.height, index: at.index, blockHash: toHex(at.hash) });
    // Check every entry first; one already in the chain (a retry) is answered from there.
    const ids = new Set<string>();
    const entries = items.map((req, i) => {
      const entryId = req.entryId ?? newId('ent');
      if (ids.has(entryId)) throw invalid(field(i, 'entry_id'), `repeats another entry's id in this call (${entryId})`);
      ids.add(entryId);
      const at = chain.locate(entryId);
      if (at) return { entryId, done: landedAt(entryId, { ...at, hash: chain.block(at.height)!.hash }) };
      const content = { thread: id, id: entryId, author: this.#o.identity.did, kind: req.kind, contentType: req.contentType, payload: req.payload, submittedAt: this.#o.clock.now() };
      try {
        checkEntry(content);
      } catch (err) {
        if (!(err instanceof ChainError)) throw err;
        throw invalid(field(i, apiFieldName(err.field)), err.message.replace(`${err.field}: `, ''));
      }
      return { entryId, content };
    });
    const replica = this.#replicas.get(id);
    if (!replica) throw new ApiError('UNAVAILABLE', `consensus for ${id} is not running here (restarting or failed); try again`);
    const answered = new AbortController();
    const stopWaiting = AbortSignal.any([signal, answered.signal]);
    // Each entry is accepted in this turn (so they share a batch) after its wait starts (so no commit is missed).
    const results = entries.map(async (e): Promise<AppendResult> => {
      if (e.done) return e.done;
      const landing = chain.landed(e.entryId, stopWaiting).then((at) => landedAt(e.entryId, at), () => {
        throw new ApiError('DEADLINE_EXCEEDED', `entry ${e.entryId} is accepted but not committed yet (is a quorum of replicas reachable?); appending the same entry id again never duplicates it`);
      });
      landing.catch(() => undefined);
      await replica.accept(e.entryId, signEntry(e.content, this.#o.identity.sign), returnOnAccept);
      if (!returnOnAccept) return landing;
      const now = chain.locate(e.entryId);
      return now ? landedAt(e.entryId, { ...now, hash: chain.block(now.height)!.hash }) : { entryId: e.entryId, committed: false };
    });
    try {
      return await Promise.all(results);
    } catch (err) {
      // Part of a batch may be committed already: a retry is safe only with the same ids.
      if (items.length > 1 && err instanceof ApiError && err.code === 'DEADLINE_EXCEEDED') {
        throw new ApiError('DEADLINE_EXCEEDED', `the entries are accepted but not all committed yet (is a quorum of replicas reachable?); retrying the call with the same entry_id on every entry never duplicates one (an entry without one got a new id here, so give each an entry_id to retry safely)`);
      }
      throw err;
    } finally {
      answered.abort(ANSWERED); // with returnOnAccept, or after a failure: nobody waits for the rest
    }
  }

  /** Entries from `sinceHeight`, in chain order, a page at a time (`after`: "height.index" of the last one seen). */
  entries(id: string, sinceHeight: number, pageSize: number, after?: { height: number; index: number }): { entries: { height: number; index: number; bytes: Uint8Array }[]; next?: string } {
    const chain = this.#chain(this.#snapshot(id).context as ThreadContext);
    const out: { height: number; index: number; bytes: Uint8Array }[] = [];
    for (const b of chain.blocks(Math.max(sinceHeight, after?.height ?? 0))) {
      for (let i = 0; i < b.block.entries.length; i++) {
        if (after && (b.block.height < after.height || (b.block.height === after.height && i <= after.index))) continue;
        if (out.length === pageSize) return { entries: out, next: `${out[out.length - 1]!.height}.${out[out.length - 1]!.index}` };
        out.push({ height: b.block.height, index: i, bytes: b.block.entries[i]! });
      }
    }
    return { entries: out };
  }

  /** Committed blocks from `sinceHeight`: the stored ones, then each new one, read from the store as the reader
   *  asks (a slow reader is never dropped, it reads on from where it is). */
  async *follow(id: string, sinceHeight: number, signal: AbortSignal): AsyncGenerator<CommittedBlock> {
    const chain = this.#chain(this.#snapshot(id).context as ThreadContext);
    let next = Math.max(1, sinceHeight);
    while (!signal.aborted) {
      while (next <= chain.height && !signal.aborted) yield chain.block(next++)!;
      await new Promise<void>((resolve) => {
        const off = chain.subscribe(() => (off(), resolve()));
        signal.addEventListener('abort', () => (off(), resolve()), { once: true });
        if (next <= chain.height) (off(), resolve());
      });
    }
  }

  verify(id: string): ChainReport {
    return this.#chain(this.#snapshot(id).context as ThreadContext).verify(verifyEntrySignature);
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────────

  /** The thread's state (see #find); NOT_FOUND when this daemon has none. */
  #snapshot(id: string): AnyMachineSnapshot {
    const snapshot = this.#find(id);
    if (!snapshot) throw notFound(`thread ${id}`);
    return snapshot;
  }

  /** The thread's state: its live machine's, or for a thread that ended here (declined, failed), folded from its log. */
  #find(id: string): AnyMachineSnapshot | undefined {
    if (!THREAD_ID.test(id)) throw invalid('thread_id', `${JSON.stringify(id.slice(0, 40))} is not a thread id (thr_…)`);
    return this.#machines.get(id)?.snapshot ?? foldStream(this.#o.store, THREAD_PREFIX + id, threadMachine).snapshot;
  }

  #chain(c: ThreadContext): ChainStore {
    let chain = this.#chains.get(c.id);
    if (!chain) {
      chain = new ChainStore(this.#o.store, { thread: c.id, backend: c.backend, replicas: c.replicas, creator: c.creator, createdAt: c.createdAt });
      this.#chains.set(c.id, chain);
    }
    return chain;
  }

  /** Consensus runs once we take part: the creator at once, an invited replica after it joins. */
  async #runIfJoined(id: string, snapshot: AnyMachineSnapshot): Promise<void> {
    const state = threadStateOf(snapshot.value);
    if (state !== 'active' && state !== 'inviting') return;
    if (this.#consensus.status(id)) return;
    const c = snapshot.context as ThreadContext;
    await this.#consensus.startChild({
      id,
      onFailed: async (reason) => {
        this.#replicas.delete(id);
        await this.#machines.get(id)?.send({ type: "FAIL", reason: `consensus failed: ${reason}` } as AnyEventObject);
      },
      start: (crash) => {
        try {
          return this.#startReplica(id, c, crash);
        } catch (err) {
          // A replica that cannot even start (a consensus log it cannot read) is a crash like any other: counted
          // against this thread's budget, never thrown at the daemon's start, where it would stop every thread.
          queueMicrotask(() => crash(err));
          return { stop: () => undefined };
        }
      },
    });
  }

  /** This thread's consensus actor on this replica (Raft or Tendermint), sending over the transport. */
  #startReplica(id: string, c: ThreadContext, crash: (err: unknown) => void): { stop(): Promise<void> | void } {
    const common: ReplicaOptions = {
      thread: id, self: this.#o.identity.did, replicas: c.replicas, store: this.#o.store, chain: this.#chain(c), clock: this.#o.clock,
      log: this.#o.log, onCrash: crash,
    };
    const replica = c.backend === 'tendermint' ? new TendermintValidator({
      ...common, verify: verifyEntrySignature, sign: this.#o.identity.sign,
      send: async (to, payload) => (await this.#o.transport.request(to, TM_ENVELOPE, payload, { timeoutMs: 5_000 })).payload,
      tell: (to, payload) => void this.#o.transport.tell(to, TM_ENVELOPE, payload),
    }) : new RaftReplica({
      ...common, random: this.#o.random,
      campaign: c.creator === c.self,
      send: (to, m) => void this.#o.transport.tell(to, RAFT_ENVELOPE, { thread: id, m }),
    });
    this.#replicas.set(id, replica);
    return {
      stop: () => {
        if (this.#replicas.get(id) === replica) this.#replicas.delete(id);
        // The supervisor starts the next one once this resolves: after the write in flight, so it reads all of it.
        return replica.stop();
      },
    };
  }

  async #perform(id: string, effect: Effect): Promise<AnyEventObject[]> {
    const c = this.#machines.get(id)?.snapshot.context as ThreadContext | undefined;
    if (!c) throw new Error(`thread ${id} is not running`);
    const { to } = effect.params as { to: string };
    const deliveryId = `${id}.${effect.type}.${to.slice(-16)}`;
    if (this.#o.store.head(THREAD_OUTBOX_PREFIX + deliveryId) > 0) return []; // performed before a crash
    const content: ThreadEnvelope = effect.type === 'invite'
      ? { kind: 'invite', genesis: { thread: c.id, backend: c.backend, replicas: c.replicas, creator: c.creator, createdAt: c.createdAt }, f: c.f }
      : { kind: 'joined', thread: c.id };
    await this.outbox.enqueue({
      id: deliveryId, from: this.#o.identity.did, to, content, ttlMs: MAX_TTL_MS,
      retryInitialMs: this.#o.retry.initialMs, retryMaxMs: this.#o.retry.maxMs,
    });
    return [];
  }

  async #onThreadEnvelope(from: string, payload: unknown): Promise<{ type: string; payload: unknown }> {
    const reply = (p: unknown) => ({ type: 'thread.ack', payload: p });
    const refuse = (error: string) => reply({ error, permanent: true });
    const p = payload as ThreadEnvelope;
    if (p?.kind === 'joined') {
      const actor = typeof p.thread === 'string' ? this.#machines.get(p.thread) : undefined;
      if (!actor) return refuse('unknown thread');
      const joinedBefore = (actor.snapshot.context as ThreadContext).joined.length;
      await actor.send({ type: 'JOINED', did: from } as AnyEventObject);
      // Only a replica's first 'joined' counts (the outbox may deliver one again; the machine ignores others).
      if ((actor.snapshot.context as ThreadContext).joined.length > joinedBefore) {
        this.#o.log('info', 'a replica joined the thread', { thread: p.thread, replica: from });
        const replica = this.#replicas.get(p.thread);
        if (replica instanceof RaftReplica) replica.peerJoined();
      }
      return reply({ applied: true });
    }
    if (p?.kind !== 'invite') return refuse('unknown thread message');
    const g = p.genesis;
    const problem = inviteProblem(p, from, this.#o.identity.did);
    if (problem) return refuse(problem);
    if (!this.#machines.get(g.thread) && this.#o.store.head(THREAD_PREFIX + g.thread) === 0) {
      const input: ThreadInput = { id: g.thread, backend: g.backend, replicas: g.replicas, creator: g.creator, self: this.#o.identity.did, f: p.f, createdAt: g.createdAt };
      const actor = await this.#machines.create(g.thread, input, this.#o.autoJoin ? [{ type: 'JOIN' }] : []);
      await this.#runIfJoined(g.thread, actor.snapshot);
      this.#o.log('info', this.#o.autoJoin ? 'joined a thread' : 'invited to a thread (join-thread to join)', { thread: g.thread, creator: from });
    }
    return reply({ applied: true });
  }

  /** A Tendermint request: only a validator of the thread reaches its consensus; the reply goes back to it. */
  #onTendermint(from: string, payload: unknown): unknown {
    const p = payload as Partial<TmPayload> | null;
    const thread = typeof p?.thread === 'string' ? p.thread : '';
    const validator = this.#replicas.get(thread);
    const c = this.#machines.get(thread)?.snapshot.context as ThreadContext | undefined;
    if (!(validator instanceof TendermintValidator) || !c || !c.replicas.includes(from)) {
      this.dropped.set(thread, (this.dropped.get(thread) ?? 0) + 1);
      return { error: 'not running here, or not a validator of this thread' };
    }
    return validator.receive(from, payload);
  }

  #onRaft(from: string, payload: unknown): void {
    const p = payload as { thread?: unknown; m?: Message };
    const thread = typeof p?.thread === 'string' ? p.thread : '';
    const replica = this.#replicas.get(thread);
    const c = this.#machines.get(thread)?.snapshot.context as ThreadContext | undefined;
    // Only a replica of the thread, speaking for itself, reaches its consensus.
    if (!(replica instanceof RaftReplica) || !c || !c.replicas.includes(from) || p.m?.from !== from || p.m?.to !== this.#o.identity.did) {
      this.dropped.set(thread, (this.dropped.get(thread) ?? 0) + 1);
      return;
    }
    replica.receive(p.m);
  }
}

function inviteProblem(p: { genesis: Genesis; f: number }, from: string, self: string): string | null {
  const g = p.genesis;
  if (typeof g !== 'object' || g === null) return 'no genesis';
  if (typeof g.thread !== 'string' || !THREAD_ID.test(g.thread)) return 'bad thread id';
  if (g.backend !== 'raft' && g.backend !== 'tendermint') return 'unknown backend';
  if (!Array.isArray(g.replicas) || g.replicas.length > MAX_REPLICAS || !g.replicas.every(isDid) || new Set(g.replicas).size !== g.replicas.length) return 'bad replica list';
  if (g.creator !== from || !g.replicas.includes(from)) return 'an invite comes from the thread\'s creator';
  if (!g.replicas.includes(self)) return 'we are not a replica of this thread';
  if (!Number.isSafeInteger(g.createdAt) || !Number.isSafeInteger(p.f) || p.f < 0) return 'bad fields';
  return faultRule(g.backend, g.replicas.length, p.f);
}
