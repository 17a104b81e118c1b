// Envelopes: the only thing daemons say to each other. Pure: no I/O; the clock comes in as `now`.
//
// Wire form: cbor({ body, sig }) where body = cbor(envelope) and sig = Ed25519(sender, DOMAIN ++ body).
// Signing the exact body bytes (not a re-encoding) means no canonical CBOR is needed; the domain prefix keeps a
// signature made for an envelope from ever being valid for any other use of the same key.
import { Encoder, Decoder } from 'cbor-x';
import { newId } from '../../runtime/ids.ts';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { isDid, publicKeyFromDid } from '../identity/did.ts';
import { verifySignature, type Identity } from '../identity/ed25519.ts';
import type { ReplayGuard } from './replay-guard.ts';

export interface Envelope {
  v: 1;
  /** Routes the envelope to a handler, e.g. "message.deliver". */
  type: string;
  /** env_<ULID>, unique per envelope (retries of the same message get a new envelope id). */
  id: string;
  from: string;
  to: string;
  /** Sender's clock, ms since epoch. */
  ts: number;
  payload: unknown;
  /** The id of the envelope this one replies to. */
  re?: string;
}

export type RejectReason =
  | 'too-large' | 'malformed' | 'bad-signature' | 'sender-mismatch' | 'not-for-us'
  | 'stale' | 'from-future' | 'duplicate';

export class EnvelopeRejected extends Error {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, detail?: string) {
    super(detail ? `envelope rejected: ${reason} (${detail})` : `envelope rejected: ${reason}`);
    this.name = 'EnvelopeRejected';
    this.reason = reason;
  }
}

/**
 * The protocol's envelope size limit, the same on every daemon so that what one sends (a 1 MiB message, a batch)
 * another can read; each primitive checks its own, smaller limits in its handler, where a refusal can be answered.
 */
export const DEFAULT_MAX_ENVELOPE_BYTES = 1024 * 1024 + 64 * 1024;
export const DEFAULT_FRESHNESS_MS = 5 * 60_000;
/** How far ahead of our clock a sender's ts may be. Small: a wide future margin only helps someone pre-stamping
 * envelopes to keep them valid for longer (and an honest clock is not minutes ahead). */
export const DEFAULT_MAX_FUTURE_MS = 30_000;

const DOMAIN = new TextEncoder().encode('moltmesh/envelope/v1\n');
const ID_RE = /^env_[0-9A-HJKMNP-TV-Z]{26}$/;
const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const BODY_KEYS = new Set(['v', 'type', 'id', 'from', 'to', 'ts', 'payload', 're']);

// useRecords:false keeps the bytes plain CBOR that any tool (and any other implementation) can read.
// Payload fidelity: cbor-x decodes -0 as 0 and renames a "__proto__" key to "__proto_" (prototype-pollution guard).
const encoder = new Encoder({ useRecords: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

// cbor-x returns views into a reused buffer; copy before keeping the bytes.
const encode = (value: unknown): Uint8Array => new Uint8Array(encoder.encode(value));

export const newEnvelopeId = (): string => newId('env');
export const isEnvelopeId = (x: unknown): x is string => typeof x === 'string' && ID_RE.test(x);
export const isEnvelopeType = (x: unknown): x is string => typeof x === 'string' && TYPE_RE.test(x);

export interface SealFields { type: string; to: string; payload: unknown; re?: string; id?: string; ts?: number }

export function sealEnvelope(identity: Pick<Identity, 'did' | 'sign'>, fields: SealFields): { envelope: Envelope; bytes: Uint8Array } {
  const envelope: Envelope = {
    v: 1,
    type: fields.type,
    id: fields.id ?? newEnvelopeId(),
    from: identity.did,
    to: fields.to,
    ts: fields.ts ?? Date.now(),
    payload: fields.payload ?? null,
  };
  if (fields.re !== undefined) envelope.re = fields.re;
  // Refuse to send what a receiver would call malformed: fail here, with a clear error, not over there.
  const problem = bodyProblem(envelope);
  if (problem) throw new TypeError(`cannot seal envelope: ${problem}`);
  const body = encode(envelope);
  return { envelope, bytes: encode({ body, sig: identity.sign(signedBytes(body)) }) };
}

export interface OpenOptions {
  /** Our DID; an envelope addressed to anyone else is refused. */
  ourDid: string;
  /** The authenticated peer on the other end of the connection (from Noise); must be the `from` key. */
  remotePeerId: PeerId | string;
  now?: number;
  maxBytes?: number;
  /** How old an envelope may be (default 5 min). */
  freshnessMs?: number;
  /** How far ahead of `now` its ts may be (default 30 s). */
  maxFutureMs?: number;
  /** When given, duplicates are refused and accepted ids recorded. */
  replay?: ReplayGuard;
}

/** Verifies wire bytes and returns the envelope, or throws EnvelopeRejected with a machine reason. */
export function openEnvelope(bytes: Uint8Array, opts: OpenOptions): Envelope {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
  const freshnessMs = opts.freshnessMs ?? DEFAULT_FRESHNESS_MS;
  const maxFutureMs = opts.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  const now = opts.now ?? Date.now();
  if (bytes.length > maxBytes) throw new EnvelopeRejected('too-large', `${bytes.length} > ${maxBytes} bytes`);

  // Cheap checks first; the signature (the costly one) only for envelopes that would otherwise be accepted.
  const { body, sig } = decodeOuter(bytes);
  const env = decodeBody(body);
  const fromKey = publicKeyFromDid(env.from, 'from');
  if (!equalBytes(fromKey, remoteKey(opts.remotePeerId))) throw new EnvelopeRejected('sender-mismatch');
  if (env.to !== opts.ourDid) throw new EnvelopeRejected('not-for-us');
  if (now - env.ts > freshnessMs || (opts.replay && env.ts <= opts.replay.floorFor(env.from))) {
    throw new EnvelopeRejected('stale', `${now - env.ts} ms old`);
  }
  if (env.ts - now > maxFutureMs) throw new EnvelopeRejected('from-future', `${env.ts - now} ms ahead`);
  // Per sender, so one peer can neither burn ids another peer will use nor move another peer's floor.
  if (opts.replay?.has(env.from, env.id)) throw new EnvelopeRejected('duplicate', env.id);
  if (!verifySignature(fromKey, signedBytes(body), sig)) throw new EnvelopeRejected('bad-signature');
  opts.replay?.add(env.from, env.id, env.ts, now);
  return env;
}

/**
 * The envelope's id, sender and `re`, when the bytes at least decode, without checking anything else. Lets a receiver
 * address an error reply to a request it refused (`re` = that id) and match a reply to its request; never trust the result for anything more.
 */
export function peekEnvelope(bytes: Uint8Array): { id: string; from: string; re?: string } | null {
  try {
    const env = decodeBody(decodeOuter(bytes).body);
    return { id: env.id, from: env.from, re: env.re };
  } catch {
    return null;
  }
}

function signedBytes(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(DOMAIN.length + body.length);
  out.set(DOMAIN, 0);
  out.set(body, DOMAIN.length);
  return out;
}

function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new EnvelopeRejected('malformed', `${what} is not CBOR`);
  }
}

function decodeOuter(bytes: Uint8Array): { body: Uint8Array; sig: Uint8Array } {
  const outer = decodeCbor(bytes, 'wire') as Record<string, unknown> | null;
  if (!isPlainObject(outer) || Object.keys(outer).length !== 2) throw new EnvelopeRejected('malformed', 'wire shape');
  const { body, sig } = outer;
  if (!(body instanceof Uint8Array) || !(sig instanceof Uint8Array) || sig.length !== 64) {
    throw new EnvelopeRejected('malformed', 'wire shape');
  }
  // Only our exact encoding is accepted, so the wire bytes are not malleable (e.g. a text-string key
  // re-typed as a byte string decodes to the same object).
  if (!equalBytes(bytes, encode({ body, sig }))) throw new EnvelopeRejected('malformed', 'non-canonical wire form');
  return { body, sig };
}

function decodeBody(body: Uint8Array): Envelope {
  const raw = decodeCbor(body, 'body');
  const problem = bodyProblem(raw);
  if (problem) throw new EnvelopeRejected('malformed', problem);
  return raw as Envelope;
}

/** Why `x` is not a well-formed envelope, or null if it is. */
function bodyProblem(x: unknown): string | null {
  if (!isPlainObject(x)) return 'body is not a map';
  for (const k of Object.keys(x)) if (!BODY_KEYS.has(k)) return `unknown field ${JSON.stringify(k.slice(0, 32))}`;
  if (x.v !== 1) return 'unsupported version';
  if (!isEnvelopeType(x.type)) return 'bad type';
  if (!isEnvelopeId(x.id)) return 'bad id';
  if (!isDid(x.from)) return 'bad from';
  if (!isDid(x.to)) return 'bad to';
  if (typeof x.ts !== 'number' || !Number.isSafeInteger(x.ts) || x.ts < 0) return 'bad ts';
  if (!('payload' in x)) return 'missing payload';
  if (x.re !== undefined && !isEnvelopeId(x.re)) return 'bad re';
  return null;
}

function remoteKey(peer: PeerId | string): Uint8Array | undefined {
  try {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : peer;
    return id.type === 'Ed25519' ? id.publicKey?.raw : undefined;
  } catch {
    return undefined;
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === Object.prototype;
}

function equalBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
