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
// Encoding is written here (cborg's generic encoder, with its token pass and key sorting per call, cost ~35 µs for a
// thread entry, and entries, blocks and Raft batches are encoded on every append); the bytes are the same as cborg's
// `encode(v, rfc8949EncodeOptions)`, which the unit tests check value by value. Floats, rare here, still go through cborg.
import { decode, encode, rfc8949EncodeOptions } from 'cborg';

export type CborValue = null | boolean | number | string | Uint8Array | CborValue[] | { [key: string]: CborValue };

export class NotCanonical extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotCanonical';
  }
}

const MAX_DEPTH = 32;

/** A growing output buffer, reused between calls (encodeCanonical hands out a copy). */
let out = Buffer.allocUnsafe(4096);
let at = 0;

function room(n: number): void {
  if (at + n <= out.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, at + n));
  out.copy(bigger, 0, 0, at);
  out = bigger;
}

/** A head: major type and argument, in the shortest form (RFC 8949 §4.2.1). */
function head(major: number, n: number): void {
  const m = major << 5;
  room(9);
  if (n < 24) out[at++] = m | n;
  else if (n < 0x100) {
    out[at++] = m | 24;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = m | 25;
    out.writeUInt16BE(n, at);
    at += 2;
  } else if (n < 0x100000000) {
    out[at++] = m | 26;
    out.writeUInt32BE(n, at);
    at += 4;
  } else {
    out[at++] = m | 27;
    out.writeUInt32BE(Math.floor(n / 0x100000000), at);
    out.writeUInt32BE(n >>> 0, at + 4);
    at += 8;
  }
}

function text(v: string): void {
  // A lone surrogate has no UTF-8 form (an encoder would substitute U+FFFD: another value).
  if (!v.isWellFormed()) throw new NotCanonical('text with a lone surrogate is not UTF-8');
  const n = Buffer.byteLength(v, 'utf8');
  head(3, n);
  room(n);
  at += out.write(v, at, n, 'utf8');
}

/** Encoded map keys, by key: the sort order is the bytewise order of these (RFC 8949 §4.2.1). */
const keyBytes = new Map<string, Buffer>();

function encodedKey(k: string): Buffer {
  let b = keyBytes.get(k);
  if (b === undefined) {
    // Encoded as text past the end of the output so far, copied out, and the output left as it was.
    const start = at;
    text(k);
    b = Buffer.from(out.subarray(start, at));
    at = start;
    if (keyBytes.size < 1024) keyBytes.set(k, b); // field names repeat; arbitrary user keys must not pile up
  }
  return b;
}

function value(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new NotCanonical(`nested deeper than ${MAX_DEPTH}`);
  if (v === null) {
    room(1);
    out[at++] = 0xf6;
    return;
  }
  switch (typeof v) {
    case 'boolean':
      room(1);
      out[at++] = v ? 0xf5 : 0xf4;
      return;
    case 'number':
      // Every safe integer is an integer (-0 is 0: a JSON number has no sign of zero worth keeping).
      if (Number.isSafeInteger(v)) {
        if (v >= 0) head(0, v);
        else head(1, -v - 1);
        return;
      }
      if (!Number.isFinite(v)) throw new NotCanonical(`${v} is not a JSON number`);
      {
        // The shortest float that holds it exactly: cborg's float16/32/64 choice.
        const f = encode(v, rfc8949EncodeOptions);
        room(f.length);
        out.set(f, at);
        at += f.length;
      }
      return;
    case 'string':
      text(v);
      return;
    case 'object':
      break;
    default:
      throw new NotCanonical(`${typeof v} is not in the data model`);
  }
  if (v instanceof Uint8Array) {
    head(2, v.length);
    room(v.length);
    out.set(v, at);
    at += v.length;
    return;
  }
  if (Array.isArray(v)) {
    head(4, v.length);
    for (const x of v) value(x, depth + 1);
    return;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) throw new NotCanonical(`${typeof v} is not in the data model`);
  if (Object.getOwnPropertySymbols(v).length > 0) throw new NotCanonical('symbol keys are not in the data model');
  const keys = Object.keys(v).map((k) => ({ k, b: encodedKey(k) }));
  keys.sort((x, y) => Buffer.compare(x.b, y.b));
  head(5, keys.length);
  for (const { k, b } of keys) {
    room(b.length);
    out.set(b, at);
    at += b.length;
    value((v as Record<string, unknown>)[k], depth + 1);
  }
}

export function encodeCanonical(v: CborValue): Uint8Array {
  at = 0;
  try {
    value(v, 0);
  } catch (err) {
    if (err instanceof NotCanonical) throw err;
    throw new NotCanonical(`cannot encode: ${(err as Error).message}`);
  }
  // A plain Uint8Array of our own: the buffer is reused by the next call (and not kept large after a rare big value).
  const bytes = new Uint8Array(out.subarray(0, at));
  if (out.length > 1 << 20) out = Buffer.allocUnsafe(4096);
  return bytes;
}

/** Decodes bytes that are the canonical encoding of a value; refuses anything else (see the top of this file). */
export function decodeCanonical(bytes: Uint8Array): CborValue {
  let value: CborValue;
  try {
    value = decode(bytes, { strict: true, allowIndefinite: false, allowUndefined: false, allowInfinity: false, allowNaN: false, rejectDuplicateMapKeys: true, useMaps: false, tags: [] }) as CborValue;
  } catch (err) {
    throw new NotCanonical((err as Error).message);
  }
  // Shortest heads, sorted keys, shortest floats, integers as integers: one test covers them all (and encoding
  // refuses what the data model leaves out).
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
