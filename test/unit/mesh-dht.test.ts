// MeshDht's quorum read (actors/discovery/mesh-dht.ts) on five real kad-dht nodes on loopback, all connected: the
// closest peers are asked directly with our own GET_VALUE (kad-dht's handlers answer it), our stored copy counts,
// a record the validator refuses is no answer, and only when too few peers hold a valid record does the
// iterative lookup run. Also pins the kad-dht internals the direct read needs (a kad-dht upgrade that moves them
// would silently fall back to the slower walk).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Libp2p } from 'libp2p';
import { Record as Libp2pRecord, type KadDHT } from '@libp2p/kad-dht';
import { Key } from 'interface-datastore';
import { MemoryDatastore } from 'datastore-core/memory';
import { base32 } from 'multiformats/bases/base32';
import { encodeGetValue, kadInternals, MeshDht, protoField } from '../../actors/discovery/mesh-dht.ts';
import { dhtNode } from '../support/dht-node.ts';
import { until } from '../support/temp-dir.ts';

const PROTOCOL = '/moltmesh-test/kad/1.0.0';
const utf8 = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const validators = { 'mm-test': async (_key: Uint8Array, value: Uint8Array) => { if (text(value).startsWith('bad')) throw new Error('refused'); } };
const selectors = { 'mm-test': () => 0 };

type Node = Libp2p<{ dht: KadDHT }>;
const nodes: Node[] = [];
const stores: MemoryDatastore[] = [];

/** Stores `value` under `key` at node i only, as a PUT_VALUE would (no validation: a bad peer's store). */
async function storeAt(i: number, key: Uint8Array, value: Uint8Array): Promise<void> {
  const rec = new Libp2pRecord(key, value, new Date());
  await stores[i]!.put(new Key(`/dht/record/${base32.baseEncode(key)}`), rec.serialize());
}

/** MeshDht over node i, counting iterative lookups. */
function meshAt(i: number): { mesh: MeshDht; walks: () => number } {
  const dht = nodes[i]!.services.dht;
  let walks = 0;
  const get = dht.get.bind(dht);
  const counting = Object.create(dht) as KadDHT;
  counting.get = (...args: Parameters<KadDHT['get']>) => (walks++, get(...args));
  return { mesh: new MeshDht(counting), walks: () => walks };
}

beforeAll(async () => {
  for (let i = 0; i < 5; i++) {
    const datastore = new MemoryDatastore();
    stores.push(datastore);
    nodes.push((await dhtNode({ protocol: PROTOCOL, validators, selectors, datastore })) as unknown as Node);
  }
  for (const a of nodes) for (const b of nodes) if (a !== b) await a.dial(b.getMultiaddrs()[0]!);
  await until(() => nodes.every((n) => (kadInternals(n.services.dht)!.routingTable as unknown as { size: number }).size === 4), 15_000, 'full routing tables');
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

describe('MeshDht quorum read', () => {
  it('finds the kad-dht internals it uses', () => {
    expect(kadInternals(nodes[0]!.services.dht)).toBeDefined();
  });

  it('encodes GET_VALUE as kad-dht does and reads a record field out of a reply', () => {
    const key = utf8.encode('/mm-test/k');
    const msg = encodeGetValue(key);
    expect(Array.from(msg.subarray(0, 4))).toEqual([0x08, 0x01, 0x12, key.length]);
    expect(text(protoField(msg, 2)!)).toBe('/mm-test/k');
    expect(protoField(msg, 3)).toBeUndefined();
    expect(() => protoField(Uint8Array.from([0x1a, 0x05, 0x01]), 3)).toThrow(/truncated/);
  });

  it('asks the closest peers directly and counts our own copy: no iterative lookup', async () => {
    const key = utf8.encode('/mm-test/everywhere');
    for (let i = 0; i < 5; i++) await storeAt(i, key, utf8.encode('good'));
    const { mesh, walks } = meshAt(0);
    const found = await mesh.records(key, { quorum: 3, signal: AbortSignal.timeout(10_000) });
    expect(found.map(text)).toEqual(['good']);
    expect(walks()).toBe(0);
  });

  it('a record the validator refuses is no answer: with too few valid holders the lookup walks on', async () => {
    const key = utf8.encode('/mm-test/mostly-bad');
    await storeAt(1, key, utf8.encode('good-1'));
    for (const i of [2, 3, 4]) await storeAt(i, key, utf8.encode(`bad-${i}`));
    const { mesh, walks } = meshAt(0);
    const found = await mesh.records(key, { quorum: 3, signal: AbortSignal.timeout(10_000) });
    expect(found.map(text)).toEqual(['good-1']);
    expect(walks()).toBe(1);
  });

  it('a key nobody holds: nothing, after the walk', async () => {
    const { mesh, walks } = meshAt(2);
    expect(await mesh.records(utf8.encode('/mm-test/nobody'), { quorum: 3, signal: AbortSignal.timeout(10_000) })).toEqual([]);
    expect(walks()).toBe(1);
  });
});
