// Signed records the mesh's DHT stores: Agent Cards (under the agent's DID) and names (under the name).
// Pure: no I/O, no clock — `now` is an argument, signing is the caller's Identity.
//
// ── Byte layout (so another implementation can make and check the same bytes) ────────────────────────────
//
// A record is an Ed25519 signature by the key of the record's `did` (did:key, see actors/identity/did.ts) over
//
//     signed bytes = DOMAIN ++ canonical-CBOR(content)
//
// where content is a CBOR map of the fields below, in the canonical encoding of runtime/canonical-cbor.ts (RFC 8949
// core deterministic: shortest heads, map keys sorted by their encoded bytes, i.e. shorter keys first) and DOMAIN is
// the ASCII text (ending in one newline, 0x0a) that keeps a signature made for one use of the key (an envelope, a
// name) from being valid for any other:
//
//     card:  "moltmesh/agent-card/v1\n"        name:  "moltmesh/name-record/v1\n"
//
// The DHT value is canonical-CBOR of the same map plus one more entry, "sig": the 64 signature bytes (a byte
// string), sorted like any key (after "seq"). So a verifier decodes the value (refusing any non-canonical bytes), takes "sig" out, encodes the rest
// again, prefixes DOMAIN and checks the signature. Times are integers, ms since the Unix epoch (UTC); `seq` is an
// integer that a newer record of the same signer has larger.
//
// Card content (keys in their canonical order):
//     "v"               1
//     "did"             text   did:key:z6Mk… of the agent; its key signs the card
//     "seq"             uint   sequence number: a newer card of the DID has a larger one
//     "name"            text   the agent's claimed name, "" when unnamed (checked against the name record on use)
//     "skills"          array of maps { "id": text (capability name, e.g. "text-generation"), "name": text,
//                                       "description": text, "inputSchema": JSON, "outputSchema": JSON }
//                       where a JSON Schema is an object or a boolean, as CBOR (integers in the safe range as
//                       integers, other numbers as the shortest exact float)
//     "issuedAt"        uint
//     "addresses"       array of text: listen multiaddrs
//     "expiresAt"       uint   after it the card is dead (at most CARD_MAX_TTL_MS after issuedAt)
//     "description"     text
//     "capabilities"    array of text, distinct: "a2a:v1:cap:<name>"
//     "protocolVersion" text   e.g. "moltmesh/1"
//
// Name content:
//     "v"               1
//     "did"             text   the owner; its key signs the record
//     "seq"             uint   renewals (and the release) increase it
//     "name"            text   the name, e.g. "swift-falcon" (see ./names.ts)
//     "issuedAt"        uint
//     "released"        bool   true: the owner gives the name up (a tombstone that outranks its older records)
//     "claimedAt"       uint   the owner's first claim; kept across renewals; ≤ issuedAt
//     "expiresAt"       uint   at most NAME_TTL_MS (24 h) after issuedAt
//
// A record is valid at `now` when its bytes are within the size limit and canonical, every field is well formed,
// it is the record asked for (the DID / name of the DHT key), issuedAt ≤ now + MAX_CLOCK_SKEW_MS, now < expiresAt,
// and the signature verifies. Checks run cheapest first; the signature is the last.
import { multiaddr } from '@multiformats/multiaddr';
import { publicKeyFromDid, isDid } from '../identity/did.ts';
import { verifySignature } from '../identity/ed25519.ts';
import { capabilityId, CAPABILITY_PREFIX } from '../capability.ts';
import type { NameRecordParams } from '../../machines/name.ts';
import type { JsonValue } from '../../machines/task.ts';
import { decodeCanonical, encodeCanonical, NotCanonical, type CborValue } from '../../runtime/canonical-cbor.ts';
import { nameProblem } from './names.ts';

// ── Limits ───────────────────────────────────────────────────────────────────────────────────────────────

export const CARD_MAX_BYTES = 32 * 1024;
export const NAME_MAX_BYTES = 512;
/** A card lives at most this long after it is issued (the DHT itself drops records after 48 h). */
export const CARD_MAX_TTL_MS = 48 * 3600_000;
/** What a daemon gives its card; it republishes well before. */
export const CARD_TTL_MS = 24 * 3600_000;
/** A name record lives at most (and normally exactly) this long after it is issued; renewals extend it. */
export const NAME_TTL_MS = 24 * 3600_000;
/** How far ahead of the verifier's clock a record's issuedAt may be (clocks differ; a record is not pre-dated). */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export const CARD_LIMITS = {
  text: 1024,
  name: 63,
  protocolVersion: 64,
  capabilities: 64,
  skills: 64,
  skillName: 128,
  addresses: 32,
  address: 256,
  /** Encoded bytes of one JSON Schema. */
  schemaBytes: 8 * 1024,
};

const CARD_DOMAIN = new TextEncoder().encode('moltmesh/agent-card/v1\n');
const NAME_DOMAIN = new TextEncoder().encode('moltmesh/name-record/v1\n');
const VERSION = 1;

// ── Types ────────────────────────────────────────────────────────────────────────────────────────────────

export interface Skill {
  /** Capability name, e.g. "text-generation" (its capability id is a2a:v1:cap:<id>). */
  id: string;
  name: string;
  description: string;
  inputSchema: JsonValue;
  outputSchema: JsonValue;
}

/** What a card says, before it is signed. */
export interface CardContent {
  did: string;
  /** The agent's name, '' when unnamed. */
  name: string;
  description: string;
  /** a2a:v1:cap:<name>, distinct. */
  capabilities: string[];
  skills: Skill[];
  /** Listen multiaddrs. */
  addresses: string[];
  protocolVersion: string;
  issuedAt: number;
  expiresAt: number;
  seq: number;
}

export interface SignedCard extends CardContent {
  signature: Uint8Array;
}

/** What a name record says, before it is signed (the name machine decides it: machines/name.ts). */
export type NameContent = NameRecordParams;

export interface SignedName extends NameContent {
  signature: Uint8Array;
}

/** Who signs: an Identity (actors/identity/ed25519.ts) is one. */
export interface Signer {
  did: string;
  sign(bytes: Uint8Array): Uint8Array;
}

// ── Errors ───────────────────────────────────────────────────────────────────────────────────────────────

export type RejectReason =
  | 'too-large'      // over the record's size limit
  | 'malformed'      // not canonical CBOR, unknown or missing field, a field out of its bounds
  | 'not-asked-for'  // a valid record, but of another DID / name than the DHT key asks for
  | 'from-future'    // issuedAt more than MAX_CLOCK_SKEW_MS ahead of now
  | 'expired'        // now ≥ expiresAt
  | 'bad-signature'; // the signature does not verify with the DID's key

export class RecordRejected extends Error {
  readonly reason: RejectReason;
  /** The field at fault, when there is one ("card.did", "name.expiresAt"). */
  readonly field: string | undefined;
  constructor(reason: RejectReason, message: string, field?: string) {
    super(field ? `${field}: ${message}` : message);
    this.name = 'RecordRejected';
    this.reason = reason;
    this.field = field;
  }
}

const malformed = (field: string, why: string) => new RecordRejected('malformed', why, field);

// ── Field checks ─────────────────────────────────────────────────────────────────────────────────────────

function isPlainMap(v: unknown): v is Record<string, CborValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function exactKeys(field: string, m: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(m)) if (!keys.includes(k)) throw malformed(field, `unknown field ${JSON.stringify(k.slice(0, 32))}`);
  for (const k of keys) if (!Object.hasOwn(m, k)) throw malformed(`${field}.${k}`, 'missing');
}

function text(field: string, v: unknown, max: number, min = 0): string {
  if (typeof v !== 'string') throw malformed(field, 'not text');
  if (v.length > max) throw malformed(field, `longer than ${max} characters`);
  if (v.length < min) throw malformed(field, 'empty');
  return v;
}

function uint(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw malformed(field, 'not a non-negative integer');
  return v;
}

function textList(field: string, v: unknown, maxItems: number, check: (f: string, s: unknown) => string): string[] {
  if (!Array.isArray(v)) throw malformed(field, 'not a list');
  if (v.length > maxItems) throw malformed(field, `more than ${maxItems} entries`);
  const out = v.map((s, i) => check(`${field}[${i}]`, s));
  const seen = new Set<string>();
  out.forEach((s, i) => {
    if (seen.has(s)) throw malformed(`${field}[${i}]`, `${JSON.stringify(s)} is listed twice`);
    seen.add(s);
  });
  return out;
}

function did(field: string, v: unknown): string {
  if (typeof v !== 'string' || !isDid(v)) throw malformed(field, 'not a did:key DID (did:key:z6Mk…)');
  return v;
}

function capability(field: string, v: unknown): string {
  const s = text(field, v, 128, 1);
  let id: string;
  try {
    id = capabilityId(field, s);
  } catch (e) {
    throw malformed(field, (e as Error).message.replace(`${field}: `, ''));
  }
  if (id !== s) throw malformed(field, `write the capability id in full: ${JSON.stringify(id)}`);
  return s;
}

function address(field: string, v: unknown): string {
  const s = text(field, v, CARD_LIMITS.address, 1);
  try {
    if (!s.startsWith('/')) throw new Error();
    multiaddr(s);
  } catch {
    throw malformed(field, `${JSON.stringify(s.slice(0, 64))} is not a multiaddr`);
  }
  return s;
}

function schema(field: string, v: unknown): JsonValue {
  if (typeof v !== 'boolean' && !isPlainMap(v)) throw malformed(field, 'a JSON Schema is an object or a boolean');
  let bytes: Uint8Array;
  try {
    bytes = encodeCanonical(v);
  } catch (e) {
    throw malformed(field, `not JSON: ${(e as Error).message}`);
  }
  if (bytes.length > CARD_LIMITS.schemaBytes) throw malformed(field, `larger than ${CARD_LIMITS.schemaBytes} bytes`);
  if (containsBytes(v)) throw malformed(field, 'not JSON: holds a byte string');
  return v as JsonValue;
}

function containsBytes(v: unknown): boolean {
  if (v instanceof Uint8Array) return true;
  if (Array.isArray(v)) return v.some(containsBytes);
  if (isPlainMap(v)) return Object.values(v).some(containsBytes);
  return false;
}

const SKILL_KEYS = ['id', 'name', 'description', 'inputSchema', 'outputSchema'] as const;

function skill(field: string, v: unknown): Skill {
  if (!isPlainMap(v)) throw malformed(field, 'not a skill');
  exactKeys(field, v, SKILL_KEYS);
  const id = text(`${field}.id`, v.id, 64, 1);
  if (capability(`${field}.id`, CAPABILITY_PREFIX + id) !== CAPABILITY_PREFIX + id || id.startsWith(CAPABILITY_PREFIX)) {
    throw malformed(`${field}.id`, 'not a capability name');
  }
  return {
    id,
    name: text(`${field}.name`, v.name, CARD_LIMITS.skillName),
    description: text(`${field}.description`, v.description, CARD_LIMITS.text),
    inputSchema: schema(`${field}.inputSchema`, v.inputSchema),
    outputSchema: schema(`${field}.outputSchema`, v.outputSchema),
  };
}

function times(what: string, issuedAt: number, expiresAt: number, maxTtl: number): void {
  if (expiresAt <= issuedAt) throw malformed(`${what}.expiresAt`, 'not after issuedAt');
  if (expiresAt - issuedAt > maxTtl) throw malformed(`${what}.expiresAt`, `more than ${maxTtl / 3600_000} h after issuedAt`);
}

const CARD_KEYS = ['v', 'did', 'name', 'description', 'capabilities', 'skills', 'addresses', 'protocolVersion', 'issuedAt', 'expiresAt', 'seq'] as const;
const NAME_KEYS = ['v', 'name', 'did', 'claimedAt', 'issuedAt', 'expiresAt', 'seq', 'released'] as const;

/** A card's content, every field checked (not the time against a clock, not the signature). */
function cardContent(v: unknown): CardContent {
  if (!isPlainMap(v)) throw malformed('card', 'not a map');
  exactKeys('card', v, CARD_KEYS);
  if (v.v !== VERSION) throw malformed('card.v', `unsupported version ${JSON.stringify(v.v)} (this daemon reads ${VERSION})`);
  const name = text('card.name', v.name, CARD_LIMITS.name);
  if (name !== '' && nameProblem(name)) throw malformed('card.name', `not a name: ${nameProblem(name)}`);
  if (!Array.isArray(v.skills)) throw malformed('card.skills', 'not a list');
  if (v.skills.length > CARD_LIMITS.skills) throw malformed('card.skills', `more than ${CARD_LIMITS.skills} skills`);
  const skills = v.skills.map((s, i) => skill(`card.skills[${i}]`, s));
  const ids = new Set<string>();
  skills.forEach((s, i) => {
    if (ids.has(s.id)) throw malformed(`card.skills[${i}].id`, `${JSON.stringify(s.id)} is listed twice`);
    ids.add(s.id);
  });
  const content: CardContent = {
    did: did('card.did', v.did),
    name,
    description: text('card.description', v.description, CARD_LIMITS.text),
    capabilities: textList('card.capabilities', v.capabilities, CARD_LIMITS.capabilities, capability),
    skills,
    addresses: textList('card.addresses', v.addresses, CARD_LIMITS.addresses, address),
    protocolVersion: text('card.protocolVersion', v.protocolVersion, CARD_LIMITS.protocolVersion, 1),
    issuedAt: uint('card.issuedAt', v.issuedAt),
    expiresAt: uint('card.expiresAt', v.expiresAt),
    seq: uint('card.seq', v.seq),
  };
  times('card', content.issuedAt, content.expiresAt, CARD_MAX_TTL_MS);
  return content;
}

function nameContent(v: unknown): NameContent {
  if (!isPlainMap(v)) throw malformed('name', 'not a map');
  exactKeys('name', v, NAME_KEYS);
  if (v.v !== VERSION) throw malformed('name.v', `unsupported version ${JSON.stringify(v.v)} (this daemon reads ${VERSION})`);
  const name = text('name.name', v.name, 64);
  const problem = nameProblem(name);
  if (problem) throw malformed('name.name', `not a name: ${problem}`);
  if (typeof v.released !== 'boolean') throw malformed('name.released', 'not a boolean');
  const content: NameContent = {
    name,
    did: did('name.did', v.did),
    claimedAt: uint('name.claimedAt', v.claimedAt),
    issuedAt: uint('name.issuedAt', v.issuedAt),
    expiresAt: uint('name.expiresAt', v.expiresAt),
    seq: uint('name.seq', v.seq),
    released: v.released,
  };
  if (content.claimedAt > content.issuedAt) throw malformed('name.claimedAt', 'after issuedAt');
  times('name', content.issuedAt, content.expiresAt, NAME_TTL_MS);
  return content;
}

// ── Encoding ─────────────────────────────────────────────────────────────────────────────────────────────

function cardMap(c: CardContent): Record<string, CborValue> {
  return {
    v: VERSION,
    did: c.did,
    name: c.name,
    description: c.description,
    capabilities: c.capabilities,
    skills: c.skills.map((s) => ({ id: s.id, name: s.name, description: s.description, inputSchema: s.inputSchema, outputSchema: s.outputSchema })),
    addresses: c.addresses,
    protocolVersion: c.protocolVersion,
    issuedAt: c.issuedAt,
    expiresAt: c.expiresAt,
    seq: c.seq,
  };
}

function nameMap(c: NameContent): Record<string, CborValue> {
  return { v: VERSION, name: c.name, did: c.did, claimedAt: c.claimedAt, issuedAt: c.issuedAt, expiresAt: c.expiresAt, seq: c.seq, released: c.released };
}

function prefixed(domain: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(domain.length + body.length);
  out.set(domain, 0);
  out.set(body, domain.length);
  return out;
}

/** The bytes a card's signature covers: DOMAIN ++ canonical-CBOR(content). */
export function cardSigningBytes(content: CardContent): Uint8Array {
  return prefixed(CARD_DOMAIN, encodeCanonical(cardMap(content)));
}

/** The bytes a name record's signature covers. */
export function nameSigningBytes(content: NameContent): Uint8Array {
  return prefixed(NAME_DOMAIN, encodeCanonical(nameMap(content)));
}

/** The DHT value of a signed card: canonical-CBOR(content + "sig"). */
export function encodeCard(card: SignedCard): Uint8Array {
  return encodeCanonical({ ...cardMap(card), sig: card.signature });
}

export function encodeName(record: SignedName): Uint8Array {
  return encodeCanonical({ ...nameMap(record), sig: record.signature });
}

/**
 * Sign a card with its DID's key; returns the DHT value. The content is checked as a verifier will check it
 * (so a daemon never publishes what others refuse); the signer must be the card's DID.
 */
export function signCard(content: CardContent, signer: Signer): Uint8Array {
  if (signer.did !== content.did) throw malformed('card.did', `is ${content.did}, but the signer is ${signer.did}`);
  const checked = cardContent(cardMap(content));
  const bytes = encodeCard({ ...checked, signature: signer.sign(cardSigningBytes(checked)) });
  if (bytes.length > CARD_MAX_BYTES) throw new RecordRejected('too-large', `${bytes.length} bytes, more than ${CARD_MAX_BYTES}`, 'card');
  return bytes;
}

export function signName(content: NameContent, signer: Signer): Uint8Array {
  if (signer.did !== content.did) throw malformed('name.did', `is ${content.did}, but the signer is ${signer.did}`);
  const checked = nameContent(nameMap(content));
  const bytes = encodeName({ ...checked, signature: signer.sign(nameSigningBytes(checked)) });
  if (bytes.length > NAME_MAX_BYTES) throw new RecordRejected('too-large', `${bytes.length} bytes, more than ${NAME_MAX_BYTES}`, 'name');
  return bytes;
}

// ── Verification ─────────────────────────────────────────────────────────────────────────────────────────

/** Size, canonical CBOR, a map with a 64-byte "sig": the common first steps. */
function openRecord(what: 'card' | 'name', bytes: Uint8Array, max: number): { body: Record<string, CborValue>; sig: Uint8Array } {
  if (!(bytes instanceof Uint8Array)) throw malformed(what, 'not bytes');
  if (bytes.length > max) throw new RecordRejected('too-large', `${bytes.length} bytes, more than ${max}`, what);
  let decoded: CborValue;
  try {
    decoded = decodeCanonical(bytes);
  } catch (e) {
    throw malformed(what, e instanceof NotCanonical ? `not canonical CBOR (${e.message})` : 'not CBOR');
  }
  if (!isPlainMap(decoded)) throw malformed(what, 'not a map');
  const { sig, ...body } = decoded;
  if (!(sig instanceof Uint8Array) || sig.length !== 64) throw malformed(`${what}.sig`, 'not a 64-byte Ed25519 signature');
  return { body, sig };
}

function checkTime(what: string, issuedAt: number, expiresAt: number, now: number): void {
  if (issuedAt > now + MAX_CLOCK_SKEW_MS) {
    throw new RecordRejected('from-future', `issued at ${new Date(issuedAt).toISOString()}, ahead of this clock (${new Date(now).toISOString()})`, `${what}.issuedAt`);
  }
  if (now >= expiresAt) throw new RecordRejected('expired', `expired at ${new Date(expiresAt).toISOString()}`, `${what}.expiresAt`);
}

function checkSignature(what: string, signer: string, signed: Uint8Array, sig: Uint8Array): void {
  if (!verifySignature(publicKeyFromDid(signer), signed, sig)) {
    throw new RecordRejected('bad-signature', `not signed by the key of ${signer}`, `${what}.sig`);
  }
}

export interface VerifyCardOptions {
  /** The DID the card was looked up under: a valid card of any other DID is refused. */
  expectedDid?: string;
  now: number;
}

/**
 * The card in `bytes` if it is valid at `now` and is the one asked for; else throws RecordRejected saying why.
 * Synchronous (node:crypto verifies synchronously), so DHT selectors can use it.
 */
export function verifyCard(bytes: Uint8Array, options: VerifyCardOptions): SignedCard {
  const { body, sig } = openRecord('card', bytes, CARD_MAX_BYTES);
  const content = cardContent(body);
  if (options.expectedDid !== undefined && content.did !== options.expectedDid) {
    throw new RecordRejected('not-asked-for', `is the card of ${content.did}, not of ${options.expectedDid}`, 'card.did');
  }
  checkTime('card', content.issuedAt, content.expiresAt, options.now);
  checkSignature('card', content.did, cardSigningBytes(content), sig);
  return { ...content, signature: sig };
}

export interface VerifyNameOptions {
  /** The name the record was looked up under: a valid record of any other name is refused. */
  expectedName?: string;
  now: number;
}

/** The name record in `bytes` if it is valid at `now` and is the one asked for; else throws RecordRejected. */
export function verifyName(bytes: Uint8Array, options: VerifyNameOptions): SignedName {
  const { body, sig } = openRecord('name', bytes, NAME_MAX_BYTES);
  const content = nameContent(body);
  if (options.expectedName !== undefined && content.name !== options.expectedName) {
    throw new RecordRejected('not-asked-for', `is a record of ${JSON.stringify(content.name)}, not of ${JSON.stringify(options.expectedName)}`, 'name.name');
  }
  checkTime('name', content.issuedAt, content.expiresAt, options.now);
  checkSignature('name', content.did, nameSigningBytes(content), sig);
  return { ...content, signature: sig };
}
