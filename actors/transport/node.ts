// Assembles the one libp2p node of a daemon. Settings here are the ones measured to matter (see STACK-NOTES.md).
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { quic } from '@chainsafe/libp2p-quic';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import { ping, type Ping } from '@libp2p/ping';
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT, type SelectFn, type ValidateFn } from '@libp2p/kad-dht';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { bootstrap } from '@libp2p/bootstrap';
import { mdns } from '@libp2p/mdns';
import type { PeerDiscovery } from '@libp2p/interface';
import type { Identity } from '../identity/ed25519.ts';
import { LevelDatastore } from 'datastore-level';
import { CachedLevelDatastore } from './cached-datastore.ts';
import { circuitRelayAddressesLast, loopbackAddressLast, publicAddressesFirst, reliableTransportsFirst } from '@libp2p/utils';
import type { Address } from '@libp2p/interface';
import { mkdirSync } from 'node:fs';

// A type alias (not an interface) so it satisfies libp2p's Record-based ServiceMap.
export type NodeServices = {
  identify: Identify;
  // kad-dht finds its ping component under exactly this name.
  ping: Ping;
  dht: KadDHT;
  pubsub: GossipSub;
  /** The public IPFS DHT, as a client, when `rendezvous` is on: where daemons find each other (discovery/rendezvous.ts). */
  amino?: KadDHT;
};

export type MeshNode = Libp2p<NodeServices>;

export interface NodeOptions {
  identity: Identity;
  /** Multiaddrs to listen on; see defaultListen(). */
  listen: string[];
  /** Join the public IPFS network through its well-known bootstrap peers. */
  ipfsBootstrap: boolean;
  bootstrapPeers: string[];
  mdns: boolean;
  /**
   * Keep private/loopback addresses in the DHT. Needed on a LAN or loopback (else routing tables stay empty and
   * queries hang), harmful on the public network. Default: true unless ipfsBootstrap is on.
   */
  lan?: boolean;
  /**
   * Where libp2p keeps its peer store (and DHT records) across restarts, so a restarted daemon still knows the
   * addresses of the peers its outbox must reach. In memory when absent (tests of the transport alone).
   */
  datastorePath?: string;
  /**
   * Also join the public IPFS DHT (as a client: we ask and provide, we serve nothing there), where daemons meet
   * through a rendezvous provider record before their own DHT (its own protocol) has any peer.
   */
  rendezvous?: boolean;
  /** Wraps the datastore before libp2p gets it (the daemon's record guard: discovery/record-guard.ts). */
  wrapDatastore?: <D extends LevelDatastore>(datastore: D) => D;
  /** kad-dht validators and selectors by key namespace (merged with kad-dht's own for /pk/ and /ipns/). */
  dhtRecords?: { validators: Record<string, ValidateFn>; selectors: Record<string, SelectFn> };
}

/** The mesh's own DHT, apart from the public IPFS one (our records mean nothing to IPFS peers and vice versa). */
export const DHT_PROTOCOL = '/moltmesh/kad/1.0.0';
/** Concurrent requests of a mesh DHT lookup (see createTransportNode). */
export const DHT_ALPHA = Number(process.env.MOLTMESH_DHT_ALPHA ?? 3);
/** The public IPFS DHT (Amino). */
export const AMINO_DHT_PROTOCOL = '/ipfs/kad/1.0.0';

// The public IPFS (Amino DHT) bootstrap peers, as kubo and helia ship them.
export const IPFS_BOOTSTRAP_PEERS = [
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt',
  '/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ',
  '/ip4/104.131.131.82/udp/4001/quic-v1/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ',
];

/** TCP and QUIC on the same port number (0 = any free port, chosen separately for each). */
export function defaultListen(port: number): string[] {
  return [`/ip4/0.0.0.0/tcp/${port}`, `/ip4/0.0.0.0/udp/${port}/quic-v1`];
}

/** Creates the node without starting it, so protocol handlers can be registered first. */
export async function createTransportNode(opts: NodeOptions): Promise<MeshNode> {
  const lan = opts.lan ?? !opts.ipfsBootstrap;
  const bootstrapList = [...(opts.ipfsBootstrap ? IPFS_BOOTSTRAP_PEERS : []), ...opts.bootstrapPeers];
  // Only add discovery that has work to do: with neither, start/stop touch no network beyond our own sockets.
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = [];
  if (bootstrapList.length > 0) peerDiscovery.push(bootstrap({ list: bootstrapList }));
  if (opts.mdns) peerDiscovery.push(mdns());

  let datastore: LevelDatastore | undefined;
  if (opts.datastorePath) {
    mkdirSync(opts.datastorePath, { recursive: true, mode: 0o700 }); // LevelDB would create it world-readable
    // LevelDB on disk, its reads served from memory once seen (cached-datastore.ts: the peer store reads it constantly).
    datastore = new CachedLevelDatastore(opts.datastorePath);
    await datastore.open();
    if (opts.wrapDatastore) datastore = opts.wrapDatastore(datastore);
  }
  const node = await createLibp2p({
    start: false,
    ...(datastore ? { datastore } : {}),
    privateKey: opts.identity.privateKey, // peer id == the DID's key
    addresses: { listen: opts.listen },
    // A dial to a QUIC address nobody answers fails only when the connection idles out (UDP has no reset) and
    // cannot be aborted before: a short idle timeout (kept alive by pings) stops a peer's stale QUIC addresses
    // from stalling a dial for 10 s each.
    transports: [quic({ handshakeTimeout: 2_000, maxIdleTimeout: 4_000, keepAliveInterval: 1_500 }), tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: {
      // Several daemons on one host (tests, demos) exceed the 5 inbound connections/s per-IP limit otherwise.
      allow: ['/ip4/127.0.0.0/ipcidr/8'],
      addressSorter: tcpFirst,
      // Addresses are tried one after another; a dead one must not eat the whole dial budget.
      addressDialTimeout: 3_000,
    },
    services: {
      identify: identify(),
      // kad-dht pings new contacts through this same service; the default of one outbound ping stream per
      // connection makes a user's `ping` fail with TooManyOutboundProtocolStreams while the DHT is pinging.
      ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 8 }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        // Server mode from the start: in auto mode a node without a public address stays a client and a
        // LAN/loopback mesh never forms a routing table.
        clientMode: false,
        peerInfoMapper: lan ? passthroughMapper : removePrivateAddressesMapper,
        // kad-dht 16 asks 10 peers at a time on 10 disjoint paths — about 20 requests per lookup, every peer of a
        // small mesh. 3 (the Kademlia paper's α) halves the requests and the CPU a lookup costs the mesh.
        alpha: DHT_ALPHA,
        ...(opts.dhtRecords ?? {}),
      }),
      pubsub: gossipsub({
        // Many peers behind one IP (tests, one host) would otherwise be scored as a Sybil attack.
        scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1']) },
      }),
      ...(opts.rendezvous ? {
        amino: kadDHT({
          protocol: AMINO_DHT_PROTOCOL,
          clientMode: true,
          peerInfoMapper: lan ? passthroughMapper : removePrivateAddressesMapper,
          // Apart from the mesh DHT's own records, logs and metrics.
          logPrefix: 'libp2p:dht-amino', datastorePrefix: '/dht-amino', metricsPrefix: 'libp2p_dht_amino',
        }),
      } : {}),
    },
  });
  // The datastore is ours to close: libp2p does not, and LevelDB holds a lock until it is closed.
  if (datastore) node.addEventListener('stop', () => void datastore.close().catch(() => undefined), { once: true });
  return node;
}

/**
 * Dial TCP addresses before QUIC ones, then libp2p's usual order. A stale TCP address fails at once (the port
 * answers with a reset), a stale QUIC address only after the handshake timeout: a peer that came back on a
 * new UDP port would otherwise cost ~5 s per old QUIC address before a live TCP one is tried.
 */
function tcpFirst(a: Address, b: Address): -1 | 0 | 1 {
  return reliableTransportsFirst(a.multiaddr, b.multiaddr) ||
    loopbackAddressLast(a.multiaddr, b.multiaddr) ||
    publicAddressesFirst(a.multiaddr, b.multiaddr) ||
    circuitRelayAddressesLast(a.multiaddr, b.multiaddr) ||
    (Math.sign(Number(b.isCertified ?? false) - Number(a.isCertified ?? false)) as -1 | 0 | 1);
}
