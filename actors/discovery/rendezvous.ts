// How daemons find each other on the internet with no server of our own. The mesh's DHT speaks its own protocol
// (/moltmesh/kad/1.0.0), so the public IPFS bootstrap peers, which a fresh daemon reaches first, are not in it. But
// the public IPFS DHT is: every daemon provides one well-known CID there (the rendezvous record) and looks up who
// else provides it, then dials a few of them. Once connected, identify tells both sides they speak the mesh's
// protocols, and the mesh's own DHT fills its routing table from there.
//
// Runs at start until the record reaches a peer of the public DHT (retrying as the Spreader does), then again every
// `intervalMs` to meet daemons that came up since. Only Ed25519 peers (did:key DIDs) are dialled.
import type { Libp2p } from '@libp2p/interface';
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import { didFromPeerId } from '../identity/did.ts';
import { textCid } from './dht.ts';
import type { MeshDht, Spreader } from './mesh-dht.ts';

/** The rendezvous record's CID: CIDv1(raw, sha2-256(UTF-8 "/moltmesh/rendezvous/1")). */
export const RENDEZVOUS_CID = textCid('/moltmesh/rendezvous/1');

export interface RendezvousOptions {
  /** The public DHT. */
  publicDht: MeshDht;
  libp2p: Libp2p;
  spreader: Spreader;
  clock: Clock;
  log: Logger;
  intervalMs?: number;
  /** New daemons dialled per round at most: the mesh DHT finds the rest. */
  maxDials?: number;
}

export class Rendezvous {
  readonly #o: RendezvousOptions;
  #timer: unknown;
  #stopped = false;

  constructor(options: RendezvousOptions) {
    this.#o = options;
  }

  start(): void {
    this.#o.spreader.spread('rendezvous', () => this.#round());
  }

  stop(): void {
    this.#stopped = true;
    this.#o.clock.clearTimeout(this.#timer);
  }

  /** Provide the record, then meet who else does. Resolves with how many public-DHT peers took our record. */
  async #round(): Promise<number> {
    const reached = await this.#o.publicDht.provide(RENDEZVOUS_CID, AbortSignal.timeout(60_000));
    const met = await this.#meet();
    this.#o.log('debug', 'rendezvous round', { providedTo: reached, dialled: met });
    if (reached > 0 && !this.#stopped) {
      this.#o.clock.clearTimeout(this.#timer);
      this.#timer = this.#o.clock.setTimeout(() => this.start(), this.#o.intervalMs ?? 10 * 60_000);
    }
    return reached;
  }

  async #meet(): Promise<number> {
    const { libp2p } = this.#o;
    const max = this.#o.maxDials ?? 8;
    let dialled = 0;
    const signal = AbortSignal.timeout(60_000);
    for await (const p of this.#o.publicDht.providers(RENDEZVOUS_CID, signal)) {
      if (p.id.equals(libp2p.peerId) || libp2p.getConnections(p.id).length > 0) continue;
      try {
        didFromPeerId(p.id); // a daemon's peer id is its Ed25519 key
      } catch {
        continue;
      }
      if (p.multiaddrs.length > 0) await libp2p.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => undefined);
      await libp2p.dial(p.id, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) }).then(
        () => dialled++,
        (err) => this.#o.log('debug', 'rendezvous dial failed', { peer: p.id.toString(), error: String(err) }),
      );
      if (dialled >= max) break;
    }
    return dialled;
  }
}
