// The daemon's moltbook.toml: its schema and how start-up flags map onto it.
// Every key is documented in moltbook.toml.example (kept in step by test/unit/config.test.ts).
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { loadConfig, type ConfigOf, type Loaded, type Schema } from '../runtime/config.ts';
import { invalid } from '../runtime/errors.ts';
import { capabilityProblem } from './capability.ts';
import { nameProblem } from './discovery/names.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const DAY = 24 * 3600_000;

export const daemonSchema = {
  agent: {
    name: {
      type: 'string', default: '', doc: 'A name to claim at start and show on the card, e.g. "swift-falcon" (empty: unnamed).',
      check: (n: string) => (n === '' ? undefined : nameProblem(n) ?? undefined),
    },
    description: {
      type: 'string', default: '', doc: 'One line about what this agent does (shown on its card).',
      check: (d: string) => (d.length > 1024 ? 'at most 1024 characters' : undefined),
    },
    capabilities: {
      type: 'string[]', default: [], doc: 'Capabilities advertised on the DHT, e.g. ["text-generation"].',
      // The same rule as a task's skill and a card's capabilities (actors/capability.ts).
      check: (caps: string[]) => caps.map(capabilityProblem).find((p) => p !== undefined),
    },
  },
  network: {
    port: { type: 'int', default: 4001, min: 0, max: 65535, doc: 'libp2p port for TCP and QUIC (0: any free port).' },
    listen_addresses: {
      type: 'string[]', default: [], doc: 'Multiaddrs to listen on; empty means TCP and QUIC on 0.0.0.0:<port>.',
      check: (addrs: string[]) => addrs.find((a) => !a.startsWith('/')) !== undefined ? 'each address is a multiaddr starting with "/"' : undefined,
    },
    ipfs_bootstrap: { type: 'bool', default: true, doc: 'Dial the public IPFS bootstrap peers to join the global DHT.' },
    bootstrap_peers: {
      type: 'string[]', default: [], doc: 'Extra bootstrap peers: multiaddrs ending in /p2p/<peer id>.',
      check: (addrs: string[]) => addrs.find((a) => !a.startsWith('/') || !a.includes('/p2p/')) !== undefined
        ? 'each peer is a multiaddr with a peer id, like /ip4/1.2.3.4/tcp/4001/p2p/12D3KooW…' : undefined,
    },
    rendezvous: {
      type: 'bool', default: (r) => r.network!.ipfs_bootstrap as boolean,
      doc: 'Meet other daemons through a rendezvous record on the public IPFS DHT (default: as ipfs_bootstrap).',
    },
    mdns: { type: 'bool', default: true, doc: 'Discover peers on the local network with mDNS.' },
  },
  daemon: {
    data_dir: {
      type: 'string', default: () => process.env.MOLTMESH_DATA_DIR || '~/.moltmesh',
      doc: 'Keys, event store and socket live here ($MOLTMESH_DATA_DIR, else ~/.moltmesh).',
      check: (d: string) => (d === '' ? 'must not be empty' : undefined),
      transform: (d: string) => resolve(expandHome(d)),
    },
    grpc_addr: {
      type: 'string', default: (r) => `unix:${r.daemon.data_dir}/a2a.sock`,
      doc: 'gRPC endpoint: unix:<path> (default unix:<data_dir>/a2a.sock) or host:port for TCP (needs the bearer token in <data_dir>).',
      check: checkGrpcAddr,
      transform: (a: string) => (a.startsWith('unix:') ? `unix:${resolve(expandHome(a.slice(5)))}` : a),
    },
    verbose: { type: 'bool', default: false, doc: 'Log debug lines (one JSON object per line).' },
  },
  threads: {
    auto_join: { type: 'bool', default: true, doc: 'Join threads other daemons invite us to without asking (false: run join-thread).' },
  },
  messaging: {
    message_ttl: { type: 'duration', default: '24h', min: 1_000, max: 30 * DAY, doc: 'An undelivered message expires after this long (at most 30d).' },
    retry_initial: { type: 'duration', default: '1s', min: 10, max: DAY, doc: 'First retry delay; doubles (with jitter) after each failure.' },
    retry_max: { type: 'duration', default: '5m', min: 10, max: DAY, doc: 'Cap on the retry delay (at most 1d).' },
    max_message_bytes: { type: 'int', default: 256 * KiB, min: 1, max: MiB, doc: 'Largest message body accepted, in bytes (at most 1 MiB).' },
  },
} satisfies Schema;

export type DaemonConfig = ConfigOf<typeof daemonSchema>;

/** Start-up flags, as `moltmesh-daemon start` parses them. Each set flag overrides its key in the file. */
export interface DaemonFlags {
  config?: string;
  dataDir?: string;
  grpcAddr?: string;
  port?: number;
  listen?: string[];
  ipfsBootstrap?: boolean;
  bootstrap?: string[];
  mdns?: boolean;
  verbose?: boolean;
  /** Serve live task machines to the Stately inspector on this 127.0.0.1 port (0 = any free port). */
  inspectPort?: number;
  /** Where ./moltbook.toml is looked for; defaults to process.cwd(). */
  cwd?: string;
}

export function flagsToOverrides(f: DaemonFlags): Record<string, unknown> {
  return {
    'daemon.data_dir': f.dataDir,
    'daemon.grpc_addr': f.grpcAddr,
    'daemon.verbose': f.verbose || undefined,   // a bare boolean flag only ever turns it on
    'network.port': f.port,
    'network.listen_addresses': f.listen?.length ? f.listen : undefined,
    'network.ipfs_bootstrap': f.ipfsBootstrap,
    'network.bootstrap_peers': f.bootstrap?.length ? f.bootstrap : undefined,
    'network.mdns': f.mdns,
  };
}

/**
 * Resolves the effective config. The chicken-and-egg of data_dir: the file may live in the data dir, so the
 * directory searched is the flag's, else $MOLTMESH_DATA_DIR, else ~/.moltmesh; a data_dir set inside that file
 * then decides where state lives (a flag still beats it).
 */
export async function loadDaemonConfig(flags: DaemonFlags = {}): Promise<Loaded<typeof daemonSchema>> {
  const loaded = loadDaemonConfigSync(flags);
  const { messaging, network } = loaded.config;
  const where = loaded.source === 'defaults' ? '' : ` (in ${loaded.source})`;
  if (messaging.retry_max < messaging.retry_initial) {
    throw invalid('messaging.retry_max', `must be at least messaging.retry_initial${where}`);
  }
  // Full multiaddr parsing only when there is something to parse: the module costs ~70 ms to import.
  if (network.listen_addresses.length || network.bootstrap_peers.length) {
    const [{ multiaddr }, { peerIdFromString }] = await Promise.all([import('@multiformats/multiaddr'), import('@libp2p/peer-id')]);
    for (const key of ['listen_addresses', 'bootstrap_peers'] as const) {
      for (const a of network[key]) {
        let problem: string | undefined;
        try {
          const p2p = multiaddr(a).getComponents().find((c) => c.name === 'p2p');
          // multiaddr accepts any text after /p2p/; a bootstrap peer is useless without a real peer id.
          try { if (p2p?.value) peerIdFromString(p2p.value); } catch { problem = `invalid peer id ${JSON.stringify(p2p?.value)}`; }
        } catch (e) {
          problem = (e as Error).message;
        }
        if (problem) throw invalid(`network.${key}`, `${JSON.stringify(a)} is not a valid multiaddr: ${problem}${where}`);
      }
    }
  }
  return loaded;
}

/** The config without the multiaddr parsing: what a CLI client needs to find the daemon, without a 70 ms import. */
export function loadDaemonConfigSync(flags: DaemonFlags = {}): Loaded<typeof daemonSchema> {
  return loadConfig(daemonSchema, {
    configPath: flags.config, cwd: flags.cwd ?? process.cwd(), dataDir: defaultDataDir(flags.dataDir), overrides: flagsToOverrides(flags),
  });
}

/** The data dir before any file is read: the flag, else $MOLTMESH_DATA_DIR, else ~/.moltmesh (absolute). */
export function defaultDataDir(flag?: string): string {
  return resolve(expandHome(flag || process.env.MOLTMESH_DATA_DIR || '~/.moltmesh'));
}

export function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? `${homedir()}${p.slice(1)}` : p;
}

function checkGrpcAddr(a: string): string | undefined {
  if (a.startsWith('unix:')) {
    const path = resolve(expandHome(a.slice(5)));
    if (a.length === 5) return 'expected unix:<path> or host:port';
    // sun_path holds 108 bytes including the terminating NUL; longer paths fail only at bind time, obscurely.
    if (Buffer.byteLength(path) > 107) return `socket path is ${Buffer.byteLength(path)} bytes; unix sockets allow at most 107 (use a shorter data_dir or host:port)`;
    return undefined;
  }
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(a);
  if (!m || Number(m[2]) > 65535) return `expected unix:<path> or host:port, got ${JSON.stringify(a)}`;
  return undefined;
}
