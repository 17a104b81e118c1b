// Request checks at the gRPC edge: each throws INVALID_ARGUMENT naming the proto field, so a client learns
// what to fix without reading logs. Deeper checks (is the peer known, is the id ours) stay in the daemon.
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { invalid } from '../../runtime/errors.ts';
import { isDid } from '../identity/did.ts';
import { MAX_TTL_MS, MESSAGE_ID } from '../messaging/protocol.ts';

export { MAX_TTL_MS };
export const MAX_LIMIT = 1000;

export function isPeerId(s: string): boolean {
  try {
    peerIdFromString(s);
    return true;
  } catch {
    return false;
  }
}

export function isMultiaddr(s: string): boolean {
  if (!s.startsWith('/')) return false;
  try {
    multiaddr(s);
    return true;
  } catch {
    return false;
  }
}


/** `v`, or INVALID_ARGUMENT naming `field` when it is longer than `max` characters. */
export function boundedText(field: string, v: string, max: number): string {
  if (v.length > max) throw invalid(field, `longer than ${max} characters`);
  return v;
}

export function requireDid(field: string, v: string): string {
  if (!v) throw invalid(field, 'required (a did:key DID)');
  if (!isDid(v)) throw invalid(field, 'not a did:key DID');
  return v;
}

export function optionalDid(field: string, v: string): string | undefined {
  return v ? requireDid(field, v) : undefined;
}

export function requireMessageId(field: string, v: string): string {
  if (!v) throw invalid(field, 'required (msg_<ULID>)');
  if (!MESSAGE_ID.test(v)) throw invalid(field, 'not a message id (msg_<ULID>)');
  return v;
}

export function requireNonEmpty(field: string, v: string, what: string): string {
  if (!v.trim()) throw invalid(field, `required (${what})`);
  return v;
}

/** A page size: 0 means the default, otherwise 1..max. */
export function limit(field: string, v: number, def: number, max = MAX_LIMIT): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw invalid(field, `must be between 1 and ${max} (0 = ${def})`);
  return v === 0 ? def : v;
}

export function nonNegative(field: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw invalid(field, 'must not be negative');
  return v;
}

export function contentType(field: string, v: string): string | undefined {
  if (!v) return undefined;
  if (v.length > 255 || !/^[\x21-\x7e][\x20-\x7e]*$/.test(v)) throw invalid(field, 'not a MIME type');
  return v;
}
