// A bare libp2p node with kad-dht on 127.0.0.1, for tests and benches that play another peer of a DHT (a raw
// attacker, an observer, a stand-in for the public IPFS DHT, the raw baseline): the daemon's TCP stack (TCP + Noise
// + Yamux), identify and ping, and kad-dht with the settings loopback needs (STACK-NOTES: server mode and the
// passthrough mapper). Validators and selectors: kad-dht's own unless given — so, for our record namespaces, none.
import { createLibp2p, type Libp2pOptions } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { kadDHT, passthroughMapper, type KadDHTInit } from '@libp2p/kad-dht';

export interface DhtNodeOptions extends Pick<KadDHTInit, 'validators' | 'selectors'> {
  protocol: string;
  /** Listen on a loopback TCP port (default true); false: dial only. */
  listen?: boolean;
  clientMode?: boolean;
  privateKey?: Libp2pOptions['privateKey'];
  datastore?: Libp2pOptions['datastore'];
}

export function dhtNode(o: DhtNodeOptions) {
  return createLibp2p({
    ...(o.privateKey ? { privateKey: o.privateKey } : {}),
    ...(o.datastore ? { datastore: o.datastore } : {}),
    addresses: { listen: o.listen === false ? [] : ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: o.protocol,
        clientMode: o.clientMode ?? false,
        peerInfoMapper: passthroughMapper,
        ...(o.validators ? { validators: o.validators } : {}),
        ...(o.selectors ? { selectors: o.selectors } : {}),
      }),
    },
  });
}
