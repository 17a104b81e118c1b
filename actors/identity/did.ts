// did:key for Ed25519, and its 1:1 mapping to libp2p peer ids. Pure: no I/O, no clock.
//
// A did:key is 'did:key:' + multibase(base58btc, varint(0xed) ++ 32-byte public key), so it always starts
// 'did:key:z6Mk'. A libp2p Ed25519 peer id is an identity multihash of the protobuf-wrapped public key, so
// it embeds the key too: DID → peer id needs no lookup, and either can be checked against the other.
//
// The conversions are memoised: every envelope sent or received checks its DIDs and maps them to keys and peer
// ids several times, and base58 decoding cost ~12 µs a time (~70 µs per message before). Peers are few and
// repeat, so small bounded caches hit almost always. Only successful conversions are cached: a bad input throws
// the same error naming its field every time.
import { base58btc } from 'multiformats/bases/base58';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { invalid } from '../../runtime/errors.ts';
import { BoundedCache } from '../../runtime/bounded-cache.ts';

const DID_PREFIX = 'did:key:';
// Multicodec ed25519-pub (0xed) as an unsigned varint: 0xed 0x01.
const ED25519_PUB = Uint8Array.of(0xed, 0x01);
const KEY_BYTES = 32;
// base58btc of 34 bytes is at most 47 chars; bound the input before decoding it.
const MAX_DID_LENGTH = DID_PREFIX.length + 1 + 48;

// DID conversions repeat for the same few peers on every envelope: memoise them (successes only).
const MAX_CACHED = 10_000;

const keyByDid = new BoundedCache<Uint8Array>(MAX_CACHED);
const peerIdByDid = new BoundedCache<PeerId>(MAX_CACHED);
const didByPeerId = new BoundedCache<string>(MAX_CACHED);

export function didFromPublicKey(pub: Uint8Array): string {
  if (!(pub instanceof Uint8Array) || pub.length !== KEY_BYTES) {
    throw new TypeError(`Ed25519 public key must be ${KEY_BYTES} bytes`);
  }
  const bytes = new Uint8Array(ED25519_PUB.length + KEY_BYTES);
  bytes.set(ED25519_PUB, 0);
  bytes.set(pub, ED25519_PUB.length);
  return DID_PREFIX + base58btc.encode(bytes);
}

/** The raw 32-byte Ed25519 key in a did:key; throws INVALID_ARGUMENT naming `field` on anything else. */
export function publicKeyFromDid(did: string, field = 'did'): Uint8Array {
  const cached = typeof did === 'string' ? keyByDid.get(did) : undefined;
  // A copy, so a caller that writes into the result cannot corrupt the cache.
  if (cached !== undefined) return cached.slice();
  return keyByDid.set(did, decodeDid(did, field)).slice();
}

function decodeDid(did: string, field: string): Uint8Array {
  if (typeof did !== 'string' || did.length === 0) throw invalid(field, 'a DID is required (did:key:z6Mk…)');
  if (did.length > MAX_DID_LENGTH) throw invalid(field, 'too long for an Ed25519 did:key');
  if (!did.startsWith(DID_PREFIX)) throw invalid(field, `not a did:key DID: ${JSON.stringify(did)} (expected did:key:z6Mk…)`);
  const mb = did.slice(DID_PREFIX.length);
  if (!mb.startsWith('z')) throw invalid(field, 'did:key must be base58btc (start with did:key:z)');
  let bytes: Uint8Array;
  try {
    bytes = base58btc.decode(mb);
  } catch {
    throw invalid(field, 'did:key is not valid base58btc');
  }
  if (bytes.length < 2 || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) {
    throw invalid(field, 'did:key is not an Ed25519 key (expected multicodec ed25519-pub, did:key:z6Mk…)');
  }
  if (bytes.length !== ED25519_PUB.length + KEY_BYTES) {
    throw invalid(field, `did:key holds ${bytes.length - 2} key bytes, Ed25519 needs ${KEY_BYTES}`);
  }
  return bytes.slice(ED25519_PUB.length);
}

export function isDid(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  if (keyByDid.get(s) !== undefined) return true;
  try {
    publicKeyFromDid(s);
    return true;
  } catch {
    return false;
  }
}

export function peerIdFromDid(did: string, field = 'did'): PeerId {
  // PeerId objects are immutable, so one instance can be shared.
  return peerIdByDid.get(did) ?? peerIdByDid.set(did, peerIdFromPublicKey(publicKeyFromRaw(publicKeyFromDid(did, field))));
}

/** Accepts a PeerId or its string form; only Ed25519 peer ids have a did:key. */
export function didFromPeerId(peerId: PeerId | string, field = 'peer_id'): string {
  // A PeerId keeps its string form once computed, so this key costs nothing after the first call.
  const cached = didByPeerId.get(String(peerId));
  if (cached !== undefined) return cached;
  let id: PeerId;
  try {
    id = typeof peerId === 'string' ? peerIdFromString(peerId) : peerId;
  } catch {
    throw invalid(field, `not a libp2p peer id: ${JSON.stringify(String(peerId))}`);
  }
  if (id.type !== 'Ed25519' || id.publicKey == null) {
    throw invalid(field, `peer ${id.toString()} has a ${id.type} key; only Ed25519 peers have a did:key`);
  }
  return didByPeerId.set(String(peerId), didFromPublicKey(id.publicKey.raw));
}
