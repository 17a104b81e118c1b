// Canonical CBOR for signed records (Agent Cards, name records, thread entries and blocks): one byte string per
// value, so a signature can be checked by anyone who holds the fields (a gRPC client, another language) by
// encoding them again.
//
// The encoding is RFC 8949 §4.2.1 "core deterministic encoding" over a JSON-like data model, as cborg (the CBOR
// codec of the IPLD/libp2p world) writes it with `rfc8949EncodeOptions`:
//   - integers: every safe integer is a CBOR integer (major type 0 for n ≥ 0, 1 for n < 0), argument in the
//     shortest form; other finite numbers: a float in the shortest of float16 / float32 / float64 that holds it
//     exactly (NaN and ±Infinity are refused: they are not JSON);
//   - text: major type 3, UTF-8; bytes: major type 2; arrays: major type 4;
//   - objects: major type 5 with text keys only, entries sorted by the bytewise order of their encoded keys (so
//     shorter keys first, then by UTF-8 bytes), no duplicates;
//   - false 0xf4, true 0xf5, null 0xf6; lengths always definite; no tags, no undefined, no other simple values.
//
// Decoding is strict: anything another encoder could have written differently (a longer head, an unsorted map,
// a float holding an integer, trailing bytes, indefinite lengths) is refused — the decoded value must encode back
// to exactly the same bytes — so a record has one encoding, and equal records are equal bytes.
import { decode, encode, rfc8949EncodeOptions } from 'cborg';

export type CborValue = null | boolean | number | string | Uint8Array | CborValue[] | { [key: string]: CborValue };

export class NotCanonical extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotCanonical';
  }
}

const MAX_DEPTH = 32;

/** Refuses what the data model leaves out before cborg sees it (cborg would encode some of it). */
function check(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new NotCanonical(`nested deeper than ${MAX_DEPTH}`);
  if (v === null || typeof v === 'boolean' || v instanceof Uint8Array) return;
  if (typeof v === 'string') {
    // A lone surrogate has no UTF-8 form (an encoder would substitute U+FFFD: another value).
    if (!v.isWellFormed()) throw new NotCanonical('text with a lone surrogate is not UTF-8');
    return;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new NotCanonical(`${v} is not a JSON number`);
    return;
  }
  if (Array.isArray(v)) return v.forEach((x) => check(x, depth + 1));
  const proto = typeof v === 'object' ? Object.getPrototypeOf(v) : undefined;
  if (proto === Object.prototype || proto === null) {
    for (const x of Object.values(v as object)) check(x, depth + 1);
    if (Object.getOwnPropertySymbols(v).length > 0) throw new NotCanonical('symbol keys are not in the data model');
    return;
  }
  throw new NotCanonical(`${typeof v} is not in the data model`);
}

/** -0 is the integer 0 (a JSON number has no sign of zero worth keeping). */
const noNegativeZero = (v: CborValue): CborValue =>
  Object.is(v, -0) ? 0 : Array.isArray(v) ? v.map(noNegativeZero)
    : v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, noNegativeZero(x)])) : v;

export function encodeCanonical(v: CborValue): Uint8Array {
  check(v, 0);
  try {
    // A plain Uint8Array of our own: cborg may hand back a Buffer (whose slice() is a view, not a copy) over memory it reuses.
    return new Uint8Array(encode(noNegativeZero(v), rfc8949EncodeOptions));
  } catch (err) {
    throw new NotCanonical(`cannot encode: ${(err as Error).message}`);
  }
}

/** Decodes bytes that are the canonical encoding of a value; refuses anything else (see the top of this file). */
export function decodeCanonical(bytes: Uint8Array): CborValue {
  let value: CborValue;
  try {
    value = decode(bytes, { strict: true, allowIndefinite: false, allowUndefined: false, allowInfinity: false, allowNaN: false, rejectDuplicateMapKeys: true, useMaps: false, tags: [] }) as CborValue;
  } catch (err) {
    throw new NotCanonical((err as Error).message);
  }
  check(value, 0);
  // Shortest heads, sorted keys, shortest floats, integers as integers: one test covers them all.
  if (compareBytes(encodeCanonical(value), bytes) !== 0) throw new NotCanonical('not the canonical encoding');
  return value;
}

/** Bytewise order (shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}
