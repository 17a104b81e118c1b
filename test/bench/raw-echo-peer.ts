// The raw baseline's far side for the messaging bench: a plain libp2p node (TCP + Noise + Yamux, nothing else)
// on 127.0.0.1 that echoes every length-prefixed frame back on the same stream. Run as a child process:
// prints one JSON line `{"addr": "/ip4/127.0.0.1/tcp/…/p2p/…"}` once listening, and exits when its stdin
// closes (so it never outlives the bench, even if the bench dies) or on SIGTERM.
import { createLibp2p, type ServiceFactoryMap } from 'libp2p';
import type { ServiceMap } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { readFrames, writeFrame } from '../../actors/transport/frame.ts';

export const ECHO_PROTOCOL = '/moltmesh-bench/echo/1.0.0';
export const MAX_FRAME = 1024 * 1024;

/** A plain node with exactly the transport stack the daemon uses for TCP, and only the services given. */
export function plainNode<S extends ServiceMap = ServiceMap>(listen: string[], services?: ServiceFactoryMap<S>) {
  return createLibp2p<S>({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] },
    services,
  });
}

/**
 * The child-process protocol of a raw peer: announce its address as one JSON line on stdout, and stop when the
 * parent's stdin closes (so it never outlives the bench, even if the bench dies) or on SIGTERM.
 */
export function serveAsChild(node: { stop(): unknown; getMultiaddrs(): { toString(): string }[] }): void {
  const stop = async () => {
    await Promise.resolve(node.stop()).catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop).on('close', stop).resume();
  console.log(JSON.stringify({ addr: node.getMultiaddrs()[0]!.toString() }));
}

if (import.meta.main) {
  const node = await plainNode(['/ip4/127.0.0.1/tcp/0']);
  await node.handle(ECHO_PROTOCOL, async (stream) => {
    try {
      for await (const frame of readFrames(stream, MAX_FRAME)) await writeFrame(stream, frame);
      await stream.close();
    } catch (err) {
      stream.abort(err as Error);
    }
  });
  serveAsChild(node);
}
