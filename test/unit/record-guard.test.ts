// Storing peers keep the better record (actors/discovery/record-guard.ts): real kad-dht nodes on loopback, their
// datastores guarded, refuse another DID's put over a live name, a replayed older card and invalid records, take
// renewals, releases and newer cards, and leave every other key alone. A fourth node, unguarded, plays the
// attacker: its puts reach the others as plain PUT_VALUEs (and show what an unguarded store does with them).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Libp2p } from 'libp2p';
import { Record as Libp2pRecord, type KadDHT, type SingleKadDHT } from '@libp2p/kad-dht';
import { LevelDatastore } from 'datastore-level';
import { MemoryDatastore } from 'datastore-core/memory';
import { Key } from 'interface-datastore';
import { base32 } from 'multiformats/bases/base32';
import { CID } from 'multiformats/cid';
import { identityFromSeed, type Identity } from '../../actors/identity/ed25519.ts';
import { encodeCard, encodeName, signCard, signName, verifyCard, verifyName, type CardContent, type NameContent } from '../../actors/discovery/records.ts';
import { cardKey, discoverySelectors, discoveryValidators, nameKey } from '../../actors/discovery/dht.ts';
import { guardRecords, type Datastore } from '../../actors/discovery/record-guard.ts';
import { DHT_PROTOCOL } from '../../actors/transport/node.ts';
import { dhtNode } from '../support/dht-node.ts';

const NOW = Date.now();
const now = () => NOW;
const MIN = 60_000;
const HOUR = 60 * MIN;
const utf8 = new TextEncoder();
const hex = (b: Uint8Array | undefined) => (b === undefined ? 'nothing' : Buffer.from(b).toString('hex'));

type Node = Libp2p<{ identify: unknown; ping: unknown; dht: KadDHT }>;
interface Peer {
  label: string;
  node: Node;
  datastore: Datastore;
}

let X: Identity;
let Y: Identity;
let Z: Identity;
let W: Identity;
let peers: Peer[] = [];
let guarded: Peer[] = []; // A, B (LevelDB), C
let M: Peer; // unguarded
let levelDir: string;

function nameRecord(who: Identity, name: string, over: Partial<NameContent> = {}): Uint8Array {
  return signName({ name, did: who.did, claimedAt: NOW - 3 * HOUR, issuedAt: NOW - HOUR, expiresAt: NOW + 23 * HOUR, seq: 1, released: false, ...over }, who);
}

function card(who: Identity, seq: number): Uint8Array {
  const content: CardContent = {
    did: who.did,
    name: '',
    description: `card ${seq}`,
    capabilities: ['a2a:v1:cap:text-generation'],
    skills: [],
    addresses: ['/ip4/127.0.0.1/tcp/4001'],
    protocolVersion: 'moltmesh/1',
    issuedAt: NOW - HOUR + seq,
    expiresAt: NOW + 23 * HOUR,
    seq,
  };
  return signCard(content, who);
}

function badSignature(signature: Uint8Array): Uint8Array {
  const s = new Uint8Array(signature);
  s[10] ^= 0x01;
  return s;
}

const dsKey = (key: Uint8Array) => new Key(`/dht/record/${base32.baseEncode(key)}`);

/** The value `peer` holds in its own datastore under DHT key `key`. */
async function held(peer: Peer, key: Uint8Array): Promise<Uint8Array | undefined> {
  try {
    return Libp2pRecord.deserialize(await peer.datastore.get(dsKey(key))).value;
  } catch (err) {
    if ((err as Error).name === 'NotFoundError') return undefined;
    throw err;
  }
}

async function expectHeld(who: Peer[], key: Uint8Array, value: Uint8Array | undefined): Promise<void> {
  const got = await Promise.all(who.map(async (p) => `${p.label}: ${hex(await held(p, key))}`));
  expect(got).toEqual(who.map((p) => `${p.label}: ${hex(value)}`));
}

/** dht.put, drained; the peers whose PUT_VALUE response echoed the record ("confirmed" it). */
async function put(peer: Peer, key: Uint8Array, value: Uint8Array): Promise<string[]> {
  const confirmed = new Set<string>();
  for await (const e of peer.node.services.dht.put(key, value)) {
    if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE' && e.record && hex(e.record.value) === hex(value)) {
      confirmed.add(labelOf(e.from.toString()));
    }
  }
  return [...confirmed].sort();
}

/** dht.get's answer (the selector's pick among every peer's record, after its corrections). */
async function get(peer: Peer, key: Uint8Array): Promise<Uint8Array> {
  let value: Uint8Array | undefined;
  for await (const e of peer.node.services.dht.get(key)) if (e.name === 'VALUE') value = e.value;
  if (value === undefined) throw new Error('no value');
  return value;
}

function labelOf(peerId: string): string {
  return peers.find((p) => p.node.peerId.toString() === peerId)?.label ?? peerId;
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function makePeer(label: string, datastore: Datastore): Promise<Peer> {
  const node = await dhtNode({
    protocol: DHT_PROTOCOL,
    datastore,
    validators: { ...discoveryValidators(now), other: async () => undefined },
    selectors: { ...discoverySelectors(now), other: () => 0 },
  });
  return { label, node: node as unknown as Node, datastore };
}

beforeAll(async () => {
  [X, Y, Z, W] = await Promise.all([1, 2, 3, 4].map((n) => identityFromSeed(new Uint8Array(32).fill(n))));
  levelDir = mkdtempSync(join(tmpdir(), 'record-guard-'));
  const level = new LevelDatastore(levelDir);
  await level.open();
  peers = await Promise.all([
    makePeer('A', guardRecords(new MemoryDatastore(), now)),
    makePeer('B', guardRecords(level, now)),
    makePeer('C', guardRecords(new MemoryDatastore(), now)),
    makePeer('M', new MemoryDatastore()),
  ]);
  guarded = peers.slice(0, 3);
  M = peers[3]!;
  for (let i = 0; i < peers.length; i++) {
    for (let j = i + 1; j < peers.length; j++) await peers[i]!.node.dial(peers[j]!.node.getMultiaddrs()[0]!);
  }
  await until('full routing tables', () => peers.every((p) => (p.node.services.dht as SingleKadDHT).routingTable.size === peers.length - 1));
});

afterAll(async () => {
  await Promise.all(peers.map((p) => p.node.stop()));
  await (peers[1]?.datastore as LevelDatastore | undefined)?.close();
  if (levelDir) rmSync(levelDir, { recursive: true, force: true });
});

describe('guarded storing peers (real kad-dht on loopback)', () => {
  it('keep a live name record against another DID\'s put; get() agrees; the attacker\'s own store does not', async () => {
    const key = nameKey('swift-falcon');
    const x = nameRecord(X, 'swift-falcon');
    expect(await put(peers[0]!, key, x)).toEqual(['B', 'C', 'M']);
    await expectHeld(peers, key, x);

    // Y claims later, straight from an unguarded node: every PUT_VALUE is "confirmed" (the handler echoes it)…
    const yLater = nameRecord(Y, 'swift-falcon', { claimedAt: NOW - 30 * MIN, issuedAt: NOW - 10 * MIN });
    expect(await put(M, key, yLater)).toEqual(['A', 'B', 'C']);
    // …yet no guarded peer took it; the unguarded one did (kad-dht alone would have everywhere).
    await expectHeld(guarded, key, x);
    expect(hex(await held(M, key))).toBe(hex(yLater));
    for (const p of guarded) expect(verifyName(await get(p, key), { now: NOW }).did).toBe(X.did);
    // get()'s correction pushed X's record back to M.
    expect(hex(await held(M, key))).toBe(hex(x));
  });

  it('keep a live name even against a backdated claim, through get()\'s corrections too', async () => {
    const key = nameKey('amber-heron');
    const x = nameRecord(X, 'amber-heron');
    await put(peers[0]!, key, x);
    const yBackdated = nameRecord(Y, 'amber-heron', { claimedAt: NOW - 5 * HOUR });
    await put(M, key, yBackdated);
    await expectHeld(guarded, key, x);
    // The selector prefers the earlier claimedAt, so a get() that meets M's copy returns it and sends it as a
    // correction to A, B and C (and to itself): the guards refuse it silently and get() still succeeds.
    expect(hex(await get(peers[0]!, key))).toBe(hex(yBackdated));
    await expectHeld(guarded, key, x);
  });

  it('take the owner\'s renewal and release, then another DID\'s claim', async () => {
    const key = nameKey('quiet-otter');
    const first = nameRecord(X, 'quiet-otter');
    const renewal = nameRecord(X, 'quiet-otter', { seq: 2, issuedAt: NOW - 30 * MIN });
    const release = nameRecord(X, 'quiet-otter', { seq: 3, issuedAt: NOW - 20 * MIN, released: true });
    const yClaim = nameRecord(Y, 'quiet-otter', { claimedAt: NOW - 10 * MIN, issuedAt: NOW - 10 * MIN });
    await put(peers[1]!, key, first);
    await put(peers[1]!, key, renewal);
    await expectHeld(peers, key, renewal);
    await put(peers[2]!, key, release);
    await expectHeld(peers, key, release);
    await put(M, key, yClaim);
    await expectHeld(peers, key, yClaim);
  });

  it('take a newer card and keep it against a replayed older one, from the network and from a local put', async () => {
    const key = cardKey(Z.did);
    const seq1 = card(Z, 1);
    const seq2 = card(Z, 2);
    await put(peers[0]!, key, seq1);
    await expectHeld(peers, key, seq1);
    await put(peers[0]!, key, seq2);
    await expectHeld(peers, key, seq2);

    await put(M, key, seq1); // the replay
    await expectHeld(guarded, key, seq2);
    expect(hex(await held(M, key))).toBe(hex(seq1));
    await put(peers[2]!, key, seq1); // a local put (kad-dht does not validate those) is guarded too
    await expectHeld(guarded, key, seq2);
    for (const p of guarded) expect(verifyCard(await get(p, key), { now: NOW }).seq).toBe(2);
  });

  it('do not store a record with a bad signature, whoever puts it', async () => {
    // Over a held card: kad-dht's validator refuses the PUT_VALUE (no confirmation); the guard refuses a local put.
    const key = cardKey(Z.did);
    const held2 = await held(peers[0]!, key);
    const forged = encodeCard({ ...verifyCard(card(Z, 9), { now: NOW }), signature: badSignature(verifyCard(card(Z, 9), { now: NOW }).signature) });
    expect(() => verifyCard(forged, { now: NOW })).toThrow(/not signed/);
    expect(await put(M, key, forged)).toEqual([]);
    await put(peers[0]!, key, forged);
    await expectHeld(guarded, key, held2);

    // Where nothing is held: the unguarded node keeps its own forged record (kad-dht's local put does not
    // validate), no guarded node stores it.
    const wKey = nameKey('forged-name');
    const signed = verifyName(nameRecord(W, 'forged-name'), { now: NOW });
    const forgedName = encodeName({ ...signed, signature: badSignature(signed.signature) });
    await put(M, wKey, forgedName);
    await put(peers[1]!, wKey, forgedName);
    await expectHeld(guarded, wKey, undefined);
    expect(hex(await held(M, wKey))).toBe(hex(forgedName));
  });

  it('pass every other key straight through', async () => {
    const key = utf8.encode('/other/thing');
    const v2 = utf8.encode('version 2');
    const v1 = utf8.encode('version 1');
    await put(peers[0]!, key, v2);
    await expectHeld(peers, key, v2);
    await put(M, key, v1); // last write wins, as in plain kad-dht
    await expectHeld(peers, key, v1);
  });
});

describe('guardRecords on a bare datastore', () => {
  const rec = (key: Uint8Array, value: Uint8Array) => new Libp2pRecord(key, value, new Date()).serialize();

  it('serialises concurrent puts of one key: the first live claim stays', async () => {
    const ds = guardRecords(new MemoryDatastore(), now);
    const key = nameKey('twin-comet');
    const x = nameRecord(X, 'twin-comet');
    const y = nameRecord(Y, 'twin-comet', { claimedAt: NOW - 5 * HOUR }); // would win the selector
    await Promise.all([ds.put(dsKey(key), rec(key, x)), ds.put(dsKey(key), rec(key, y))]);
    expect(hex(Libp2pRecord.deserialize(await ds.get(dsKey(key))).value)).toBe(hex(x));
  });

  it('refuses a record filed under another key than it names, and junk', async () => {
    const ds = guardRecords(new MemoryDatastore(), now);
    const key = cardKey(Z.did);
    await ds.put(dsKey(key), rec(cardKey(W.did), card(W, 1)));
    await ds.put(dsKey(key), utf8.encode('not a record'));
    expect(await ds.has(dsKey(key))).toBe(false);
  });

  it('leaves other keys, putMany, batch, the object and its class alone', async () => {
    const inner = new MemoryDatastore();
    const ds = guardRecords(inner, now);
    expect(ds).toBe(inner);
    expect(ds).toBeInstanceOf(MemoryDatastore);
    const provider = new Key(`/dht/provider/${CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').toString()}/somepeer`);
    const otherRecord = dsKey(utf8.encode('/other/x'));
    const peerKey = new Key('/peers/abc');
    await ds.put(provider, utf8.encode('p'));
    await ds.put(otherRecord, utf8.encode('anything at all'));
    for await (const _ of ds.putMany([{ key: peerKey, value: utf8.encode('1') }])) void _;
    const b = ds.batch();
    b.put(new Key('/peers/def'), utf8.encode('2'));
    await b.commit();
    expect(Buffer.from(await ds.get(provider)).toString()).toBe('p');
    expect(Buffer.from(await ds.get(otherRecord)).toString()).toBe('anything at all');
    expect(Buffer.from(await ds.get(peerKey)).toString()).toBe('1');
    expect(Buffer.from(await ds.get(new Key('/peers/def'))).toString()).toBe('2');
    // putMany reaches put(), so it is guarded on a MemoryDatastore too.
    const key = cardKey(Z.did);
    for await (const _ of ds.putMany([{ key: dsKey(key), value: rec(key, card(Z, 2)) }, { key: dsKey(key), value: rec(key, card(Z, 1)) }])) void _;
    expect(verifyCard(Libp2pRecord.deserialize(await ds.get(dsKey(key))).value, { now: NOW }).seq).toBe(2);
  });
});
