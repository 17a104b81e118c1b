// The raw baseline's far side for the tasks bench: a plain libp2p node with the stack the daemon uses for TCP
// (TCP + Noise + Yamux + Identify) and GossipSub configured as actors/transport/node.ts configures it, on
// 127.0.0.1, subscribed to GOSSIP_TOPIC. Run as a child process: prints one JSON line
// `{"addr": "/ip4/127.0.0.1/tcp/…/p2p/…"}` once listening and subscribed, then one line `<seq> <ns>` per message
// received: `seq` from the message's first 4 bytes (big-endian), `ns` the arrival time as process.hrtime.bigint()
// — CLOCK_MONOTONIC on Linux, the same clock in every process of the machine, so the publisher can subtract its
// own publish time. Lines are written once per event-loop turn, after the arrival times are taken. Exits when
// its stdin closes (so it never outlives the bench, even if the bench dies) or on SIGTERM.
import { identify } from '@libp2p/identify';
import { gossipsub } from '@libp2p/gossipsub';
import { plainNode, serveAsChild } from './raw-echo-peer.ts';

export const GOSSIP_TOPIC = 'moltmesh-bench/raw-gossip';

/** A plain node with the daemon's TCP stack and its GossipSub settings, and no other service. */
export function plainGossipNode(listen: string[]) {
  return plainNode(listen, {
    identify: identify(),
    pubsub: gossipsub({ scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1']) } }),
  });
}

if (import.meta.main) {
  const node = await plainGossipNode(['/ip4/127.0.0.1/tcp/0']);
  let lines: string[] = [];
  const flush = () => {
    process.stdout.write(lines.join(''));
    lines = [];
  };
  node.services.pubsub.addEventListener('message', (evt) => {
    const ns = process.hrtime.bigint();
    const { topic, data } = evt.detail;
    if (topic !== GOSSIP_TOPIC || data.byteLength < 4) return;
    const seq = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
    if (lines.push(`${seq} ${ns}\n`) === 1) setImmediate(flush);
  });
  node.services.pubsub.subscribe(GOSSIP_TOPIC);
  serveAsChild(node);
}
