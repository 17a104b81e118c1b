// The thread chain: entries signed by their authors, grouped into hash-linked blocks that are the same bytes on
// every replica, whichever consensus backend (Raft or Tendermint) ordered them. Pure: no I/O, no clock; signing and
// signature checks come in as functions. docs/THREAD-CHAIN.md specifies the bytes for other languages.
//
//   entry      canonical-CBOR { v, thread, id, author, kind, contentType, payload, submittedAt, sig }
//              sig = Ed25519(author's key, "moltmesh/thread-entry/v1\n" ++ canonical-CBOR(the same map without sig))
//   genesis    sha256("moltmesh/thread-genesis/v1\n" ++ canonical-CBOR { v, thread, backend, replicas, creator, createdAt })
//   block      header { v, thread, height, parent, entriesRoot, count, proposer, time } + its entries (as bytes)
//              hash = sha256("moltmesh/thread-block/v1\n" ++ canonical-CBOR(header)); parent of height 1 = genesis
//   entriesRoot  RFC 6962 Merkle tree hash over the entries' bytes: leaf = sha256(0x00 ++ entry),
//              node = sha256(0x01 ++ left ++ right), split at the largest power of two below n; empty = sha256("")
import { createHash } from 'node:crypto';
import { decodeCanonical, encodeCanonical, equalBytes, type CborValue } from '../runtime/canonical-cbor.ts';

export const CHAIN_VERSION = 1;
export const ENTRY_LIMITS = { id: 128, kind: 64, contentType: 128, payloadBytes: 64 * 1024 };
export const BLOCK_MAX_ENTRIES = 4096;

const ENTRY_DOMAIN = new TextEncoder().encode('moltmesh/thread-entry/v1\n');
const BLOCK_DOMAIN = new TextEncoder().encode('moltmesh/thread-block/v1\n');
const GENESIS_DOMAIN = new TextEncoder().encode('moltmesh/thread-genesis/v1\n');
const ENTRY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const KIND = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type Verify = (did: string, bytes: Uint8Array, signature: Uint8Array) => boolean;
export type Sign = (bytes: Uint8Array) => Uint8Array;

export class ChainError extends Error {
  /** The field at fault ("entry.kind", "block.parent"). */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ChainError';
    this.field = field;
  }
}

// ── Entries ──────────────────────────────────────────────────────────────────────────────────────────────

export interface EntryContent {
  thread: string;
  /** Chosen by the client (or the daemon): appending the same id again never adds a second entry. */
  id: string;
  /** The author's DID: the daemon that appended it. */
  author: string;
  /** What kind of record this is ("decision", "observation"…): lowercase, digits, . _ -. */
  kind: string;
  /** What the payload is: "application/json" unless said otherwise. */
  contentType: string;
  payload: Uint8Array;
  submittedAt: number;
}

export interface SignedEntry extends EntryContent {
  signature: Uint8Array;
}

function entryMap(e: EntryContent): Record<string, CborValue> {
  return { v: CHAIN_VERSION, thread: e.thread, id: e.id, author: e.author, kind: e.kind, contentType: e.contentType, payload: e.payload, submittedAt: e.submittedAt };
}

export function entrySigningBytes(e: EntryContent): Uint8Array {
  return concat(ENTRY_DOMAIN, encodeCanonical(entryMap(e)));
}

/** An entry field of a ChainError ("entry.contentType") as the API and the CLI name it ("content_type"). */
export function apiFieldName(field: string): string {
  return field === 'entry.id' ? 'entry_id' : field.replace(/^entry\./, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Checks an entry's fields (not its signature); throws ChainError saying which is wrong. */
export function checkEntry(e: EntryContent): void {
  if (typeof e.id !== 'string' || !ENTRY_ID.test(e.id)) throw new ChainError('entry.id', `1-${ENTRY_LIMITS.id} characters of A-Z a-z 0-9 . _ : -`);
  if (typeof e.kind !== 'string' || !KIND.test(e.kind)) throw new ChainError('entry.kind', 'lowercase letters, digits, . _ - (at most 64), starting with a letter or digit');
  if (typeof e.contentType !== 'string' || e.contentType.length === 0 || e.contentType.length > ENTRY_LIMITS.contentType) {
    throw new ChainError('entry.contentType', `1-${ENTRY_LIMITS.contentType} characters`);
  }
  if (!Number.isSafeInteger(e.submittedAt) || e.submittedAt < 0) throw new ChainError('entry.submittedAt', 'not a time in ms');
  if (!(e.payload instanceof Uint8Array)) throw new ChainError('entry.payload', 'not bytes');
  if (e.payload.length > ENTRY_LIMITS.payloadBytes) throw new ChainError('entry.payload', `${e.payload.length} bytes, more than ${ENTRY_LIMITS.payloadBytes}`);
}

/** Sign an entry (its fields checked first); returns its bytes as they go into a block. */
export function signEntry(e: EntryContent, sign: Sign): Uint8Array {
  checkEntry(e);
  return encodeCanonical({ ...entryMap(e), sig: sign(entrySigningBytes(e)) });
}

/** The entry in `bytes` (canonical, well-formed); its signature is checked only with `verify`. */
export function decodeEntry(bytes: Uint8Array, verify?: Verify): SignedEntry {
  let m: CborValue;
  try {
    m = decodeCanonical(bytes);
  } catch (err) {
    throw new ChainError('entry', `not canonical CBOR (${(err as Error).message})`);
  }
  if (!isMap(m)) throw new ChainError('entry', 'not a map');
  exactKeys('entry', m, ['v', 'thread', 'id', 'author', 'kind', 'contentType', 'payload', 'submittedAt', 'sig']);
  if (m.v !== CHAIN_VERSION) throw new ChainError('entry.v', `unsupported version ${JSON.stringify(m.v)}`);
  if (!(m.sig instanceof Uint8Array) || m.sig.length !== 64) throw new ChainError('entry.sig', 'not a 64-byte signature');
  const entry: SignedEntry = {
    thread: str('entry.thread', m.thread), id: str('entry.id', m.id), author: str('entry.author', m.author), kind: str('entry.kind', m.kind),
    contentType: str('entry.contentType', m.contentType), payload: m.payload as Uint8Array, submittedAt: m.submittedAt as number, signature: m.sig,
  };
  checkEntry(entry);
  if (verify && !verify(entry.author, entrySigningBytes(entry), entry.signature)) throw new ChainError('entry.sig', `not signed by ${entry.author}`);
  return entry;
}

// ── Genesis and blocks ───────────────────────────────────────────────────────────────────────────────────

export interface Genesis {
  thread: string;
  backend: 'raft' | 'tendermint';
  /** The replicas' DIDs, in the order the thread was created with (Tendermint's proposer order). */
  replicas: string[];
  creator: string;
  createdAt: number;
}

export function genesisHash(g: Genesis): Uint8Array {
  return sha256(GENESIS_DOMAIN, encodeCanonical({
    v: CHAIN_VERSION, thread: g.thread, backend: g.backend, replicas: g.replicas, creator: g.creator, createdAt: g.createdAt,
  }));
}

export interface BlockHeader {
  thread: string;
  height: number;
  /** The previous block's hash (the genesis hash for height 1). */
  parent: Uint8Array;
  entriesRoot: Uint8Array;
  count: number;
  /** The DID of the replica that proposed it (Raft: the leader that appended the batch). */
  proposer: string;
  /** The proposer's clock when it proposed the block (ms). */
  time: number;
}

export interface Block extends BlockHeader {
  /** The signed entries' bytes, in order. */
  entries: Uint8Array[];
}

function headerMap(h: BlockHeader): Record<string, CborValue> {
  return { v: CHAIN_VERSION, thread: h.thread, height: h.height, parent: h.parent, entriesRoot: h.entriesRoot, count: h.count, proposer: h.proposer, time: h.time };
}

export function blockHash(h: BlockHeader): Uint8Array {
  return sha256(BLOCK_DOMAIN, encodeCanonical(headerMap(h)));
}

/** The block after `parent` (a block hash, or the genesis hash) holding `entries`. */
export function makeBlock(p: { thread: string; height: number; parent: Uint8Array; proposer: string; time: number; entries: Uint8Array[] }): Block {
  if (p.entries.length > BLOCK_MAX_ENTRIES) throw new ChainError('block.entries', `more than ${BLOCK_MAX_ENTRIES}`);
  return { thread: p.thread, height: p.height, parent: p.parent, entriesRoot: merkleRoot(p.entries), count: p.entries.length, proposer: p.proposer, time: p.time, entries: p.entries };
}

/**
 * Checks one block against the hash of the one before it: its header, its root recomputed from its entries, and
 * every entry (well-formed, of this thread, signed by its author with `verify`). Returns the block's hash.
 */
export function checkBlock(b: Block, expected: { thread: string; height: number; parent: Uint8Array }, verify: Verify): Uint8Array {
  if (b.thread !== expected.thread) throw new ChainError('block.thread', `is ${b.thread}, not ${expected.thread}`);
  if (b.height !== expected.height) throw new ChainError('block.height', `is ${b.height}, expected ${expected.height}`);
  if (!equalBytes(b.parent, expected.parent)) throw new ChainError('block.parent', 'does not match the previous block');
  if (b.count !== b.entries.length) throw new ChainError('block.count', `says ${b.count}, holds ${b.entries.length}`);
  if (!equalBytes(b.entriesRoot, merkleRoot(b.entries))) throw new ChainError('block.entriesRoot', 'does not match the entries');
  b.entries.forEach((bytes, i) => {
    let e: SignedEntry;
    try {
      e = decodeEntry(bytes, verify);
    } catch (err) {
      throw new ChainError(`block.entries[${i}]`, (err as Error).message);
    }
    if (e.thread !== b.thread) throw new ChainError(`block.entries[${i}].thread`, `is ${e.thread}`);
  });
  return blockHash(b);
}

export interface ChainReport {
  blocks: number;
  entries: number;
  /** The last good block's hash (the genesis hash when none). */
  head: Uint8Array;
  /** The first height that does not verify, and why. */
  bad?: { height: number; reason: string };
}

/** Recompute the whole chain from genesis: every hash, root and signature. Stops at the first bad height. */
export function verifyChain(genesis: Genesis, blocks: Iterable<Block>, verify: Verify): ChainReport {
  let head = genesisHash(genesis);
  let height = 0;
  let entries = 0;
  for (const b of blocks) {
    try {
      head = checkBlock(b, { thread: genesis.thread, height: height + 1, parent: head }, verify);
    } catch (err) {
      return { blocks: height, entries, head, bad: { height: height + 1, reason: (err as Error).message } };
    }
    height++;
    entries += b.count;
  }
  return { blocks: height, entries, head };
}

/** A block as stored and sent: canonical CBOR of the header and the entries. */
export function encodeBlock(b: Block): Uint8Array {
  return encodeCanonical({ ...headerMap(b), entries: b.entries });
}

export function decodeBlock(bytes: Uint8Array): Block {
  let m: CborValue;
  try {
    m = decodeCanonical(bytes);
  } catch (err) {
    throw new ChainError('block', `not canonical CBOR (${(err as Error).message})`);
  }
  if (!isMap(m)) throw new ChainError('block', 'not a map');
  exactKeys('block', m, ['v', 'thread', 'height', 'parent', 'entriesRoot', 'count', 'proposer', 'time', 'entries']);
  if (m.v !== CHAIN_VERSION) throw new ChainError('block.v', `unsupported version ${JSON.stringify(m.v)}`);
  const bytes32 = (f: string, v: unknown) => {
    if (!(v instanceof Uint8Array) || v.length !== 32) throw new ChainError(f, 'not 32 bytes');
    return v;
  };
  const uint = (f: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ChainError(f, 'not a non-negative integer');
    return v;
  };
  if (!Array.isArray(m.entries) || !m.entries.every((e) => e instanceof Uint8Array)) throw new ChainError('block.entries', 'not a list of byte strings');
  return {
    thread: str('block.thread', m.thread), height: uint('block.height', m.height), parent: bytes32('block.parent', m.parent),
    entriesRoot: bytes32('block.entriesRoot', m.entriesRoot), count: uint('block.count', m.count), proposer: str('block.proposer', m.proposer),
    time: uint('block.time', m.time), entries: m.entries as Uint8Array[],
  };
}

// ── Merkle root (RFC 6962 §2.1) ──────────────────────────────────────────────────────────────────────────

export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  return subtree(leaves.map((l) => sha256(LEAF, l)), 0, leaves.length);
}

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

function subtree(hashes: Uint8Array[], from: number, to: number): Uint8Array {
  const n = to - from;
  if (n === 1) return hashes[from]!;
  let k = 1;
  while (k * 2 < n) k *= 2;
  return sha256(NODE, subtree(hashes, from, from + k), subtree(hashes, from + k, to));
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────────────────

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function isMap(v: unknown): v is Record<string, CborValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function exactKeys(what: string, m: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(m)) if (!keys.includes(k)) throw new ChainError(what, `unknown field ${JSON.stringify(k.slice(0, 32))}`);
  for (const k of keys) if (!Object.hasOwn(m, k)) throw new ChainError(`${what}.${k}`, 'missing');
}

function str(field: string, v: unknown): string {
  if (typeof v !== 'string') throw new ChainError(field, 'not text');
  return v;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
