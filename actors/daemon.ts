// The composition root: the one place where the daemon's actors are built and wired together.
//
//   daemon (supervisor)
//   ├── transport   libp2p node; routes signed envelopes to the handlers below
//   ├── messaging   inbox + outbox (one outbox-delivery machine per undelivered message)
//   ├── tasks       one task machine per unfinished task + the task outbox; task event streams on GossipSub
//   ├── threads     one thread machine per thread; its consensus (Raft) under threads/consensus; the thread outbox
//   ├── names       one name machine per name we claim (cards: our Agent Card, and finding others', beside it)
//   └── grpc        A2ANode · Diag · Ext on the unix socket (and TCP with a token)
//
// Everything else receives what it needs from here: the event store, the clock, the transport.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../runtime/clock.ts';
import { ApiError } from '../runtime/errors.ts';
import { EventStore } from '../runtime/event-store.ts';
import { jsonLogger, type Logger } from '../runtime/log.ts';
import { Supervisor } from '../runtime/supervisor.ts';
import { loadDaemonConfig, type DaemonConfig, type DaemonFlags } from './daemon-config.ts';
import { loadOrCreateIdentity } from './identity/key-file.ts';
import { defaultListen } from './transport/node.ts';
import { Transport } from './transport/transport.ts';
import { Messaging } from './messaging/messaging.ts';
import { Tasks } from './tasks/tasks.ts';
import { Topics } from './transport/topics.ts';
import { Cards } from './discovery/cards.ts';
import { discoverySelectors, discoveryValidators } from './discovery/dht.ts';
import { guardRecords } from './discovery/record-guard.ts';
import { MeshDht, Spreader } from './discovery/mesh-dht.ts';
import { NameClaims } from './discovery/name-claims.ts';
import { Rendezvous } from './discovery/rendezvous.ts';
import { Threads } from './threads/threads.ts';
import { startGrpcServer } from './grpc/server.ts';
import { createNodeApi } from './node-service.ts';
import { createFileOnce } from '../runtime/create-file-once.ts';
import { task } from '../machines/task.ts';

export const VERSION = '0.1.0';

export interface RunningDaemon {
  did: string;
  grpc: string[];
  addresses: string[];
  stop(): Promise<void>;
  /** Resolves when the daemon has stopped (by `stop()`, the Shutdown RPC, or a fatal error). */
  stopped: Promise<void>;
}

export async function startDaemon(flags: DaemonFlags, options: { log?: Logger; clock?: Clock } = {}): Promise<RunningDaemon> {
  const { config, source } = await loadDaemonConfig(flags);
  const log = options.log ?? jsonLogger({ verbose: config.daemon.verbose });
  const clock = options.clock ?? systemClock;
  const dataDir = config.daemon.data_dir;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700); // an existing dir is tightened too: it holds the key and the socket
  const releaseLock = lockDataDir(dataDir);
  const cleanups: (() => Promise<void> | void)[] = [releaseLock];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch((e) => log('warn', 'shutdown step failed', { error: String(e) }));
  };

  // Actors report their own failures to their supervisor; anything that still escapes (a library callback
  // throwing) is logged, not allowed to take down the daemon and every sibling with it.
  const onEscaped = (err: unknown) => log('error', 'unhandled error; the daemon keeps running', { error: err instanceof Error ? err.stack : String(err) });
  process.on('unhandledRejection', onEscaped);
  process.on('uncaughtException', onEscaped);
  cleanups.push(() => {
    process.off('unhandledRejection', onEscaped);
    process.off('uncaughtException', onEscaped);
  });

  try {
    const identity = await loadOrCreateIdentity(dataDir);
    const store = new EventStore(join(dataDir, 'store'));
    cleanups.push(() => store.close());
    const root = new Supervisor('daemon', { clock, log: (level, msg, fields) => log(level, msg, fields) });
    cleanups.push(() => root.stop());

    const transport = await Transport.create({
      identity,
      listen: config.network.listen_addresses.length ? config.network.listen_addresses : defaultListen(config.network.port),
      ipfsBootstrap: config.network.ipfs_bootstrap,
      bootstrapPeers: config.network.bootstrap_peers,
      mdns: config.network.mdns,
      rendezvous: config.network.rendezvous,
      lan: !config.network.ipfs_bootstrap,
      datastorePath: join(dataDir, 'libp2p'),
      // Cards and names: forged, altered, expired and rolled-back records never win (actors/discovery/dht.ts).
      dhtRecords: { validators: discoveryValidators(() => clock.now()), selectors: discoverySelectors(() => clock.now()) },
      // …and a storing peer keeps a newer card, or a live name, against any put that would replace it.
      wrapDatastore: (datastore) => guardRecords(datastore, () => clock.now()),
      logger: { debug: (msg, fields) => log('debug', msg, fields) },
    });
    const messaging = Messaging.create({
      did: identity.did,
      store,
      clock,
      random: Math.random,
      transport,
      supervisor: root,
      limits: {
        messageTtlMs: config.messaging.message_ttl,
        retryInitialMs: config.messaging.retry_initial,
        retryMaxMs: config.messaging.retry_max,
        maxMessageBytes: config.messaging.max_message_bytes,
      },
    });
    const retry = { initialMs: config.messaging.retry_initial, maxMs: config.messaging.retry_max };
    const topics = new Topics(transport.libp2p.services.pubsub);
    const tasks = Tasks.create({ did: identity.did, store, clock, random: Math.random, transport, supervisor: root, retry, topics });
    const dht = new MeshDht(transport.libp2p.services.dht);
    const spreader = new Spreader(clock, (key, error) => log('debug', 'could not reach the mesh yet; retrying', { key, error: String(error) }));
    let cards: Cards | undefined;
    const names = new NameClaims({ identity, store, clock, dht, spreader, supervisor: root, log, onChange: () => void cards?.refresh() });
    cards = new Cards({ identity, store, clock, transport, dht, spreader, agent: config.agent, heldNames: () => names.held(), log });
    const threads = Threads.create({ identity, store, clock, random: Math.random, transport, supervisor: root, log, retry, autoJoin: config.threads.auto_join });
    await root.startChild({ id: 'transport', start: async () => (await transport.start(), { stop: () => transport.stop() }) });
    transport.onPeerConnected((did) => {
      messaging.peerConnected(did);
      tasks.peerConnected(did);
      threads.peerConnected(did);
      spreader.peerConnected();
    });
    await messaging.start();
    await tasks.start();
    await threads.start();
    await names.start();
    await cards.start();
    const amino = transport.libp2p.services.amino;
    const rendezvous = amino && new Rendezvous({ publicDht: new MeshDht(amino), libp2p: transport.libp2p, spreader, clock, log });
    rendezvous?.start();
    cleanups.push(() => {
      rendezvous?.stop();
      spreader.stop();
      cards.stop();
      names.stop();
    });
    if (config.agent.name) {
      // The configured name is claimed like any other (nobody else's live name is taken); the card shows it once held.
      names.claim(config.agent.name).catch((err) => log('warn', `could not claim the configured name ${config.agent.name}`, { error: String((err as Error).message ?? err) }));
    }

    let resolveStopped!: () => void;
    const stopped = new Promise<void>((r) => (resolveStopped = r));
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        log('info', 'daemon stopping');
        await cleanup();
        log('info', 'daemon stopped');
        resolveStopped();
      })());

    const api = createNodeApi({ config, configSource: source, identity, store, transport, messaging, tasks, cards, names, threads, root, clock, version: VERSION, shutdown: () => void stop() });
    const { tcpAddr, socketPath } = grpcListen(config);
    const token = tcpAddr ? await ensureToken(dataDir) : undefined;
    let grpcAddresses: string[] = [];
    await root.startChild({
      id: 'grpc',
      start: async () => {
        const server = await startGrpcServer({ api, socketPath, tcpAddr, token, logger: log });
        grpcAddresses = server.addresses;
        return { stop: () => server.stop() };
      },
    });
    if (root.status('grpc')?.status !== 'running') throw new Error(`gRPC server failed to start: ${root.status('grpc')?.lastError}`);

    if (flags.inspectPort !== undefined) {
      const { startInspector } = await import('./inspector.ts');
      const inspector = await startInspector(tasks, task, { port: flags.inspectPort });
      cleanups.push(() => inspector.stop());
      log('info', 'inspector: open this URL in a browser (the inspector UI itself loads from stately.ai)', { url: inspector.url });
    }

    const addresses = transport.addresses();
    log('info', 'daemon started', { did: identity.did, grpc: grpcAddresses.join(','), addresses, peers: transport.peers().length, config: source });
    return { did: identity.did, grpc: grpcAddresses, addresses, stop, stopped };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function grpcListen(config: DaemonConfig): { socketPath?: string; tcpAddr?: string } {
  const addr = config.daemon.grpc_addr;
  if (addr.startsWith('unix:')) return { socketPath: addr.slice('unix:'.length) };
  // A TCP listener still gets the unix socket, so local tools work without the token.
  return { tcpAddr: addr, socketPath: join(config.daemon.data_dir, 'a2a.sock') };
}

/**
 * The bearer token TCP clients must present: generated once (created whole, never overwritten, see
 * createFileOnce), readable by the owner only.
 */
async function ensureToken(dataDir: string): Promise<string> {
  const path = join(dataDir, 'grpc-token');
  await createFileOnce(path, randomBytes(32).toString('base64url') + '\n');
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw new ApiError('FAILED_PRECONDITION', `${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 32) throw new ApiError('FAILED_PRECONDITION', `${path} holds no valid token; delete it and restart to make a new one`);
  return token;
}

/** One daemon per data dir: two would share a key and an event store. A lock left by a dead process is taken over. */
function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'daemon.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new ApiError('FAILED_PRECONDITION', `another daemon (pid ${pid}) is already running with data dir ${dataDir}`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new ApiError('FAILED_PRECONDITION', `cannot lock data dir ${dataDir}`);
}

/** Whether `pid` is a live daemon: alive (not a zombie) and, where /proc tells, running `start`. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // A pid reused by an unrelated process, or a killed daemon not yet reaped, does not hold the data dir.
    if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('start');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self'); // no /proc: trust the signal
  }
}
