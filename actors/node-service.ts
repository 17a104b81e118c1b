// The daemon's NodeApi: what the gRPC services call. Thin: each call validates or delegates to one actor.
import type { AnyStateMachine } from 'xstate';
import type { Clock } from '../runtime/clock.ts';
import { invalid, notFound } from '../runtime/errors.ts';
import type { EventStore } from '../runtime/event-store.ts';
import { replayStream } from '../runtime/replay.ts';
import type { Supervisor } from '../runtime/supervisor.ts';
import { outboxDelivery } from '../machines/outbox-delivery.ts';
import type { DaemonConfig } from './daemon-config.ts';
import type { Identity } from './identity/key-file.ts';
import type { Messaging } from './messaging/messaging.ts';
import { OUTBOX_PREFIX } from './messaging/outbox.ts';
import { task } from '../machines/task.ts';
import { TASK_PREFIX, type Tasks } from './tasks/tasks.ts';
import type { Transport } from './transport/transport.ts';
import type { Cards } from './discovery/cards.ts';
import { NAME_PREFIX, type NameClaims } from './discovery/name-claims.ts';
import { nameMachine } from '../machines/name.ts';
import { threadMachine } from '../machines/thread.ts';
import { THREAD_OUTBOX_PREFIX, THREAD_PREFIX, type Threads } from './threads/threads.ts';
import type { NodeApi, ReplayStep } from './grpc/node-api.ts';
import { describeRaftEvent, describeTendermintEvent } from './threads/consensus-log.ts';
import { RAFT_PREFIX } from './threads/raft-replica.ts';
import { TM_PREFIX } from './threads/tendermint-validator.ts';

/** Which machine folds which streams, for `replay`. Streams without one are shown event by event. */
const MACHINES_BY_PREFIX: [string, AnyStateMachine][] = [
  [OUTBOX_PREFIX, outboxDelivery], ['task-outbox/', outboxDelivery], [TASK_PREFIX, task], [NAME_PREFIX, nameMachine],
  [THREAD_PREFIX, threadMachine], [THREAD_OUTBOX_PREFIX, outboxDelivery],
];

/** How `replay` shows events of streams no machine folds: the consensus logs of threads. */
const DESCRIBERS_BY_PREFIX: [string, (data: unknown, type: string) => unknown][] = [[RAFT_PREFIX, describeRaftEvent], [TM_PREFIX, describeTendermintEvent]];

export interface NodeServiceParts {
  config: DaemonConfig;
  configSource: string;
  identity: Identity;
  store: EventStore;
  transport: Transport;
  messaging: Messaging;
  tasks: Tasks;
  cards: Cards;
  names: NameClaims;
  threads: Threads;
  root: Supervisor;
  clock: Clock;
  version: string;
  shutdown(): void;
}

export function createNodeApi(p: NodeServiceParts): NodeApi {
  const startedAt = p.clock.now();
  const shutdownListeners = new Set<() => void>();
  const hex = Buffer.from(p.identity.publicKey).toString('hex');
  const identity = () => ({ did: p.identity.did, publicKeyHex: hex, peerId: p.identity.peerId.toString(), dataDir: p.config.daemon.data_dir });

  return {
    identity,
    publishCard: (overrides) => p.cards.publish(overrides),
    getAgentCard: (did, signal) => p.cards.get(did, signal),
    findAgents: (capability, options) => p.cards.find(capability, options),
    withdrawCard: () => p.cards.withdraw(),
    claimName: (name) => p.names.claim(name),
    resolveName: (name, signal) => p.names.resolve(name, signal),
    releaseName: (name) => p.names.release(name),
    listNames: () => p.names.list(),

    createThread: (req) => p.threads.create(req),
    getThread: (id) => p.threads.get(id),
    listThreads: (pageSize, after) => p.threads.list(pageSize, after),
    joinThread: (id) => p.threads.join(id),
    appendEntry: (id, req, signal) => p.threads.append(id, req, signal),
    appendEntryBatch: (id, items, returnOnAccept, signal) => p.threads.appendBatch(id, items, returnOnAccept, signal),
    threadEntries: (id, since, pageSize, after) => p.threads.entries(id, since, pageSize, after),
    followThread: (id, since, signal) => p.threads.follow(id, since, signal),
    verifyThread: (id) => p.threads.verify(id),

    sendMessage: (req) => p.messaging.send(req),
    getInbox: async (filter) => p.messaging.getInbox(filter),
    ackMessage: (id) => p.messaging.ack(id),
    subscribeInbox: (onMessage) => p.messaging.inbox.subscribe(onMessage),
    getOutbox: async (filter) => p.messaging.getOutbox(filter),

    createTask: (req) => p.tasks.create(req),
    getTask: (id) => p.tasks.get(id),
    listTasks: (filter) => p.tasks.list(filter),
    updateTask: (id, target, update) => p.tasks.update(id, target, update),
    cancelTask: (id, reason) => p.tasks.cancel(id, reason),
    waitTask: (id, timeoutMs, signal, options) => p.tasks.wait(id, timeoutMs, signal, options),
    subscribeTasks: (onChange) => p.tasks.subscribe(onChange),
    publishTaskEvent: (id, event) => p.tasks.publishEvent(id, event),
    taskEvents: (id, fromSeq) => p.tasks.events(id, fromSeq),

    health: () => ({
      version: p.version,
      did: p.identity.did,
      uptimeMs: p.clock.now() - startedAt,
      peers: p.transport.peers().length,
      tree: p.root.tree(),
      envelopes: p.transport.stats(),
    }),
    info: () => ({
      ...identity(),
      addresses: p.transport.addresses(),
      peers: p.transport.peers().length,
      uptimeMs: p.clock.now() - startedAt,
      grpcAddr: p.config.daemon.grpc_addr,
      version: p.version,
    }),
    status: async () => ({
      inbox: p.messaging.inbox.counts(),
      outbox: p.messaging.outbox.counts(),
      tasks: p.tasks.counts(),
      streams: p.store.listStreams().length,
    }),
    config: () => ({ ...p.config, source: p.configSource }),
    peers: () => p.transport.peers(),
    ping: async (target) => ({ latencyMs: await p.transport.ping(target) }),
    connect: (addr) => p.transport.connect(addr),
    disconnect: (target) => p.transport.disconnect(target),
    listStreams: async (prefix) => p.store.listStreams(prefix ?? ''),
    async *replay(stream): AsyncIterable<ReplayStep> {
      if (!stream) throw invalid('stream', 'is required (see `moltmesh-daemon streams`)');
      if (p.store.head(stream) === 0) throw notFound(`stream ${stream}`);
      const machine = MACHINES_BY_PREFIX.find(([prefix]) => stream.startsWith(prefix))?.[1];
      const describe = DESCRIBERS_BY_PREFIX.find(([prefix]) => stream.startsWith(prefix))?.[1];
      yield* replayStream(p.store, stream, machine, describe);
    },
    shutdown() {
      for (const l of shutdownListeners) l();
      // Let the Shutdown RPC answer before the server goes away.
      setTimeout(() => p.shutdown(), 50);
    },
    onShutdown(cb) {
      shutdownListeners.add(cb);
    },
  };
}
