import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { base58btc } from 'multiformats/bases/base58';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { ApiError } from '../../runtime/errors.ts';
import { didFromPeerId, didFromPublicKey, isDid, peerIdFromDid, publicKeyFromDid } from '../../actors/identity/did.ts';
import { identityFromSeed, verifySignature } from '../../actors/identity/ed25519.ts';
import { loadOrCreateIdentity, readIdentity } from '../../actors/identity/key-file.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b58 = (s: string) => base58btc.baseDecode(s);

describe('did:key vectors', () => {
  // W3C did:key test suite: the Ed25519 key of the all-zero seed.
  const W3C_DID = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
  const W3C_PUB = '3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29';

  it('maps the W3C vector both ways', async () => {
    expect(hex(publicKeyFromDid(W3C_DID))).toBe(W3C_PUB);
    expect(didFromPublicKey(Buffer.from(W3C_PUB, 'hex'))).toBe(W3C_DID);
    // …and the key really is the one of seed 0x00…00.
    expect((await identityFromSeed(new Uint8Array(32))).did).toBe(W3C_DID);
  });

  it('maps other published vectors (publicKeyBase58 form)', () => {
    const vectors: Array<[string, string]> = [
      ['did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp', '4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS'],
      ['did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th', '8HH5gYEeNc3z7PYXmd54d4x6qAfCNrqQqEB3nS7Zfu7K'],
      ['did:key:z6MkwJSaEMnE4u6LiqrZV1BJHSkc9x8S4mTm3ArNL1m19BZR', 'HrBXe7XnjMbscM1roSDTSMCcLNraetDQM9wSVjnzDxn3'],
    ];
    for (const [did, pub] of vectors) {
      expect(hex(publicKeyFromDid(did))).toBe(hex(b58(pub)));
      expect(didFromPublicKey(b58(pub))).toBe(did);
    }
  });
});

describe('did:key parsing errors', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /required/],
    ['did:web:example.com', /not a did:key/],
    ['did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp', /base58btc/],
    ['did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0', /not valid base58btc/], // '0' is not base58
    ['did:key:zTjsVPtY', /holds 3 key bytes/], // the did:key test suite's 'too small for ed keys'
    ['did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169', /not an Ed25519 key/], // a P-256 did:key
    ['did:key:' + base58btc.encode(Uint8Array.of(0xed, 0x01, ...new Uint8Array(33))), /holds 33 key bytes/],
    ['did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDoo', /not an Ed25519 key/], // base58 is positional: truncating changes the prefix
  ];
  it.each(bad)('rejects %j with an INVALID_ARGUMENT naming the field', (did, message) => {
    let err: unknown;
    try {
      publicKeyFromDid(did, 'to');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('INVALID_ARGUMENT');
    expect((err as ApiError).field).toBe('to');
    expect((err as ApiError).message).toMatch(/^to: /);
    expect((err as ApiError).message).toMatch(message);
    expect(isDid(did)).toBe(false);
  });

  it('refuses peer ids without a did:key', async () => {
    const rsaLike = '12D3KooW'; // truncated: not a peer id at all
    expect(() => didFromPeerId(rsaLike)).toThrow(/not a libp2p peer id/);
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1'));
    expect(() => didFromPeerId(secp)).toThrow(/only Ed25519/);
  });
});

describe('did:key properties', () => {
  const key = fc.uint8Array({ minLength: 32, maxLength: 32 });

  it('public key → DID → public key is the identity, and every DID starts z6Mk', () => {
    fc.assert(fc.property(key, (pub) => {
      const did = didFromPublicKey(pub);
      expect(did.startsWith('did:key:z6Mk')).toBe(true);
      expect(isDid(did)).toBe(true);
      expect(hex(publicKeyFromDid(did))).toBe(hex(pub));
    }));
  });

  it('DID ↔ peer id is a bijection that needs no lookup', async () => {
    await fc.assert(fc.asyncProperty(key, async (seed) => {
      const id = await identityFromSeed(seed);
      expect(peerIdFromDid(id.did).equals(id.peerId)).toBe(true);
      expect(didFromPeerId(id.peerId)).toBe(id.did);
      expect(didFromPeerId(id.peerId.toString())).toBe(id.did);
    }), { numRuns: 30 });
  });

  it('signatures verify under the DID key and fail for any other message', async () => {
    await fc.assert(fc.asyncProperty(key, fc.uint8Array({ maxLength: 256 }), async (seed, msg) => {
      const id = await identityFromSeed(seed);
      const sig = id.sign(msg);
      expect(verifySignature(publicKeyFromDid(id.did), msg, sig)).toBe(true);
      expect(verifySignature(publicKeyFromDid(id.did), Uint8Array.of(...msg, 0), sig)).toBe(false);
      // The libp2p key of the same identity agrees.
      expect(await id.privateKey.publicKey.verify(msg, sig)).toBe(true);
    }), { numRuns: 30 });
  });
});

describe('identity key file', () => {
  const tmpDir = () => fs.mkdtemp(path.join(os.tmpdir(), 'moltmesh-id-'));

  it('creates a 0600 key in a 0700 dir on first start, then loads the same identity', async () => {
    const dataDir = path.join(await tmpDir(), 'nested', 'data');
    const first = await loadOrCreateIdentity(dataDir);
    expect((await fs.stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await fs.stat(path.join(dataDir, 'identity.key'))).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateIdentity(dataDir);
    expect(again.did).toBe(first.did);
    expect(again.peerId.equals(first.peerId)).toBe(true);
    const pub = await readIdentity(dataDir);
    expect(pub).toMatchObject({ did: first.did, created: false });
    // No temp files left behind.
    expect(await fs.readdir(dataDir)).toEqual(['identity.key']);
  });

  it('readIdentity creates the key when missing and says so', async () => {
    const dataDir = await tmpDir();
    const created = await readIdentity(dataDir);
    expect(created.created).toBe(true);
    expect((await loadOrCreateIdentity(dataDir)).did).toBe(created.did);
  });

  it('concurrent first starts agree on one identity', async () => {
    const dataDir = await tmpDir();
    const ids = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(dataDir)));
    expect(new Set(ids.map((i) => i.did)).size).toBe(1);
  });

  it('refuses a key readable by group/other, telling the user to chmod 600', async () => {
    const dataDir = await tmpDir();
    await loadOrCreateIdentity(dataDir);
    const keyPath = path.join(dataDir, 'identity.key');
    await fs.chmod(keyPath, 0o644);
    await expect(loadOrCreateIdentity(dataDir)).rejects.toThrow(/mode 644.*chmod 600/);
    await fs.chmod(keyPath, 0o600);
    await expect(loadOrCreateIdentity(dataDir)).resolves.toBeTruthy();
  });

  it('refuses a corrupt key instead of replacing it', async () => {
    const dataDir = await tmpDir();
    const keyPath = path.join(dataDir, 'identity.key');
    await fs.writeFile(keyPath, 'not json', { mode: 0o600 });
    await expect(loadOrCreateIdentity(dataDir)).rejects.toThrow(/corrupt/);
    expect(await fs.readFile(keyPath, 'utf8')).toBe('not json');
  });
});
