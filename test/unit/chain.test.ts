// The thread chain's bytes: entries signed by their authors, blocks hash-linked from the genesis, a Merkle root per
// block — recomputed by verifyChain, which names the first height that does not verify.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { identityFromSeed, verifySignature, type Identity } from '../../actors/identity/ed25519.ts';
import { publicKeyFromDid } from '../../actors/identity/did.ts';
import {
  blockHash, ChainError, decodeBlock, decodeEntry, encodeBlock, genesisHash, makeBlock, merkleRoot, signEntry, toHex, verifyChain,
  type Block, type Genesis, type Verify,
} from '../../machines/chain.ts';

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const verify: Verify = (did, bytes, sig) => verifySignature(publicKeyFromDid(did), bytes, sig);
const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  parts.forEach((p) => h.update(p));
  return new Uint8Array(h.digest());
};

let alice: Identity;
let bob: Identity;
let genesis: Genesis;

beforeAll(async () => {
  alice = await identityFromSeed(new Uint8Array(32).fill(1));
  bob = await identityFromSeed(new Uint8Array(32).fill(2));
  genesis = { thread: 'thr_01JZ0000000000000000000000', backend: 'raft', replicas: [alice.did, bob.did], creator: alice.did, createdAt: 1_780_000_000_000 };
});

function chainOf(heights: number, perBlock = 3): Block[] {
  const blocks: Block[] = [];
  let parent = genesisHash(genesis);
  for (let h = 1; h <= heights; h++) {
    const entries = Array.from({ length: perBlock }, (_, i) => {
      const author = i % 2 ? bob : alice;
      return signEntry({ thread: genesis.thread, id: `e-${h}-${i}`, author: author.did, kind: 'decision', contentType: 'application/json', payload: json({ vote: i % 2 ? 'no' : 'yes', h }), submittedAt: 1_780_000_000_000 + h }, author.sign);
    });
    const b = makeBlock({ thread: genesis.thread, height: h, parent, proposer: alice.did, time: 1_780_000_000_100 + h, entries });
    blocks.push(b);
    parent = blockHash(b);
  }
  return blocks;
}

describe('merkle root (RFC 6962)', () => {
  it('follows the RFC: empty, one leaf, and the split at the largest power of two below n', () => {
    const L = (s: string) => new TextEncoder().encode(s);
    const leaf = (s: string) => sha(new Uint8Array([0]), L(s));
    const node = (a: Uint8Array, b: Uint8Array) => sha(new Uint8Array([1]), a, b);
    expect(merkleRoot([])).toEqual(sha());
    expect(merkleRoot([L('a')])).toEqual(leaf('a'));
    expect(merkleRoot([L('a'), L('b'), L('c')])).toEqual(node(node(leaf('a'), leaf('b')), leaf('c')));
    expect(merkleRoot([L('a'), L('b'), L('c'), L('d'), L('e')])).toEqual(node(node(node(leaf('a'), leaf('b')), node(leaf('c'), leaf('d'))), leaf('e')));
  });
});

describe('entries and blocks', () => {
  it('an entry round-trips and its signature binds every field', () => {
    const bytes = signEntry({ thread: genesis.thread, id: 'ent-1', author: alice.did, kind: 'decision', contentType: 'application/json', payload: json({ vote: 'approve' }), submittedAt: 5 }, alice.sign);
    expect(decodeEntry(bytes, verify)).toMatchObject({ id: 'ent-1', author: alice.did, payload: json({ vote: 'approve' }) });
    // Claiming another author, or changing the payload, breaks the signature.
    const forged = signEntry({ thread: genesis.thread, id: 'ent-1', author: bob.did, kind: 'decision', contentType: 'application/json', payload: json({ vote: 'approve' }), submittedAt: 5 }, alice.sign);
    expect(() => decodeEntry(forged, verify)).toThrow(/not signed by/);
  });

  it('bad fields are refused with the field named', () => {
    const base = { thread: genesis.thread, id: 'x', author: alice.did, kind: 'decision', contentType: 'text/plain', payload: new Uint8Array(0), submittedAt: 1 };
    expect(() => signEntry({ ...base, kind: 'Decision' }, alice.sign)).toThrow(ChainError);
    expect(() => signEntry({ ...base, id: 'has space' }, alice.sign)).toThrow(/entry.id/);
    expect(() => signEntry({ ...base, payload: new Uint8Array(70_000) }, alice.sign)).toThrow(/entry.payload/);
  });

  it('the block hash is pinned (another implementation must produce these bytes)', () => {
    const b = makeBlock({ thread: genesis.thread, height: 1, parent: genesisHash(genesis), proposer: alice.did, time: 1_780_000_000_000, entries: [] });
    expect(toHex(genesisHash(genesis))).toMatchInlineSnapshot(`"aed2043f9fb9df784b6a428909cd9b7e54ee9492a0afe1b58f253171931eb3c4"`);
    expect(toHex(blockHash(b))).toMatchInlineSnapshot(`"ccaeb5a1bb5dddeba35458d02b4199112a08d37ad5bd5ba9c3e6e204fb598222"`);
  });

  it('a block round-trips through its bytes', () => {
    for (const b of chainOf(3)) expect(decodeBlock(encodeBlock(b))).toEqual(b);
  });
});

describe('verifyChain', () => {
  it('verifies a good chain: blocks, entries, head', () => {
    const blocks = chainOf(5);
    expect(verifyChain(genesis, blocks, verify)).toEqual({ blocks: 5, entries: 15, head: blockHash(blocks[4]!) });
  });

  it('a changed byte anywhere is caught: at its height, at the next (its parent link), or as another head (property)', () => {
    const blocks = chainOf(4, 2);
    const encoded = blocks.map(encodeBlock);
    const head = blockHash(blocks[3]!);
    fc.assert(
      fc.property(fc.nat({ max: 3 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, at, xor) => {
        const bytes = encoded[which]!.slice();
        bytes[at % bytes.length]! ^= xor;
        let changed: Block;
        try {
          changed = decodeBlock(bytes);
        } catch {
          return; // no longer a block at all: refused before any hash is computed
        }
        const report = verifyChain(genesis, blocks.map((b, i) => (i === which ? changed : b)), verify);
        // A changed entry or root fails at its own height. A header field only the hash covers (time, proposer)
        // fails at the next block's parent link — or, in the last block, shows as a head that differs from the one
        // the replicas agreed on (what a commit certificate signs).
        if (report.bad) expect([which + 1, which + 2]).toContain(report.bad.height);
        else expect(toHex(report.head)).not.toBe(toHex(head));
      }),
      { numRuns: 300 },
    );
  });

  it('an entry re-signed by another key, or moved to another thread, is caught at its height', () => {
    const blocks = chainOf(3);
    const stolen = signEntry({ thread: genesis.thread, id: 'x', author: alice.did, kind: 'decision', contentType: 'text/plain', payload: json(1), submittedAt: 1 }, bob.sign);
    const b2 = makeBlock({ ...blocks[1]!, entries: [...blocks[1]!.entries, stolen] });
    const report = verifyChain(genesis, [blocks[0]!, b2], verify);
    expect(report.bad).toEqual({ height: 2, reason: expect.stringMatching(/entries\[3\].*not signed by/) });
  });
});
