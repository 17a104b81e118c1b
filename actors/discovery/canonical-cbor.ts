// Canonical CBOR for signed DHT records: one byte string per value, so a signature can be checked by anyone who
// holds the fields (a gRPC client with an AgentCard message, another language) by encoding them again.
//
// The encoding is RFC 8949 §4.2.1 "core deterministic encoding" over a JSON-like data model:
//   - integers: every safe integer (|n| ≤ 2^53 - 1, -0 counts as 0) is a CBOR integer (major type 0 for n ≥ 0,
//     1 for n < 0, argument -1 - n), its argument in the shortest form (< 24 in the head byte, else 1, 2, 4 or 8 bytes);
//   - other finite numbers: a float in the shortest of float16 / float32 / float64 that holds it exactly
//     (NaN and ±Infinity are refused: they are not JSON);
//   - text: major type 3, UTF-8 (a string with lone surrogates is refused); bytes: major type 2;
//   - arrays: major type 4; objects: major type 5 with text keys only, entries sorted by the bytewise order of their
//     encoded keys (so shorter keys first, then by UTF-8 bytes), no duplicates;
//   - false 0xf4, true 0xf5, null 0xf6; lengths always definite; no tags, no undefined, no other simple values.
//
// Decoding is strict: anything another encoder could have written differently (a longer head, an unsorted map,
// a float holding an integer, trailing bytes, indefinite lengths) is refused, so bytes that decode are exactly the
// bytes `encodeCanonical` makes of the result — a record has one encoding, and equal records are equal bytes.
export type CborValue = null | boolean | number | string | Uint8Array | CborValue[] | { [key: string]: CborValue };

export class NotCanonical extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotCanonical';
  }
}

const MAX_DEPTH = 32;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// Node 24 has float16 (Math.f16round, DataView#{get,set}Float16); the TypeScript lib here may not declare them.
const f16round = (Math as unknown as { f16round(x: number): number }).f16round;
type F16View = DataView & { setFloat16(o: number, v: number): void; getFloat16(o: number): number };

// ── Encoding ─────────────────────────────────────────────────────────────────────────────────────────────

class Writer {
  #buf = new Uint8Array(256);
  #len = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  byte(b: number): void {
    this.#room(1);
    this.#buf[this.#len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** A head: major type and argument in the shortest form. */
  head(major: number, arg: number): void {
    const m = major << 5;
    if (arg < 24) this.byte(m | arg);
    else if (arg < 0x100) this.bytes(Uint8Array.of(m | 24, arg));
    else if (arg < 0x10000) this.bytes(Uint8Array.of(m | 25, arg >>> 8, arg & 0xff));
    else if (arg < 0x1_0000_0000) {
      this.byte(m | 26);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, arg);
      this.bytes(b);
    } else {
      this.byte(m | 27);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, BigInt(arg));
      this.bytes(b);
    }
  }

  result(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function isPlainObject(v: object): v is Record<string, CborValue> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function encodeNumber(w: Writer, n: number): void {
  if (Number.isSafeInteger(n)) {
    if (n >= 0) w.head(0, n);
    else w.head(1, -1 - n);
    return;
  }
  if (!Number.isFinite(n)) throw new NotCanonical(`${n} is not a JSON number`);
  if (f16round(n) === n) {
    const b = new Uint8Array(2);
    (new DataView(b.buffer) as F16View).setFloat16(0, n);
    w.byte(0xf9);
    w.bytes(b);
  } else if (Math.fround(n) === n) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, n);
    w.byte(0xfa);
    w.bytes(b);
  } else {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, n);
    w.byte(0xfb);
    w.bytes(b);
  }
}

function encodeText(w: Writer, s: string): void {
  if (!s.isWellFormed()) throw new NotCanonical('a string with a lone surrogate has no UTF-8 form');
  const b = utf8.encode(s);
  w.head(3, b.length);
  w.bytes(b);
}

function encodeValue(w: Writer, v: CborValue, depth: number): void {
  if (depth > MAX_DEPTH) throw new NotCanonical(`nested deeper than ${MAX_DEPTH}`);
  if (v === null) return w.byte(0xf6);
  if (v === false) return w.byte(0xf4);
  if (v === true) return w.byte(0xf5);
  if (typeof v === 'number') return encodeNumber(w, v);
  if (typeof v === 'string') return encodeText(w, v);
  if (v instanceof Uint8Array) {
    w.head(2, v.length);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    w.head(4, v.length);
    for (const item of v) encodeValue(w, item, depth + 1);
    return;
  }
  if (typeof v === 'object' && isPlainObject(v)) {
    const entries = Object.keys(v).map((k) => {
      const kw = new Writer();
      encodeText(kw, k);
      return { key: kw.result(), value: v[k]! };
    });
    entries.sort((a, b) => compareBytes(a.key, b.key));
    w.head(5, entries.length);
    for (const e of entries) {
      w.bytes(e.key);
      encodeValue(w, e.value, depth + 1);
    }
    return;
  }
  throw new NotCanonical(`cannot encode a ${typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v}`);
}

/** The one canonical encoding of `v` (see the top of this file). Throws NotCanonical for what has none. */
export function encodeCanonical(v: CborValue): Uint8Array {
  const w = new Writer();
  encodeValue(w, v, 0);
  return w.result();
}

// ── Decoding ─────────────────────────────────────────────────────────────────────────────────────────────

class Reader {
  readonly #b: Uint8Array;
  readonly #view: DataView;
  pos = 0;

  constructor(b: Uint8Array) {
    this.#b = b;
    this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  get left(): number {
    return this.#b.length - this.pos;
  }

  need(n: number): void {
    if (n > this.left) throw new NotCanonical('truncated');
  }

  u8(): number {
    this.need(1);
    return this.#b[this.pos++]!;
  }

  take(n: number): Uint8Array {
    this.need(n);
    const out = this.#b.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** The argument of a head whose additional information is `info`. */
  arg(info: number): number {
    if (info < 24) return info;
    const v = this.#view;
    switch (info) {
      case 24: return this.u8();
      case 25: this.need(2); this.pos += 2; return v.getUint16(this.pos - 2);
      case 26: this.need(4); this.pos += 4; return v.getUint32(this.pos - 4);
      case 27: {
        this.need(8);
        this.pos += 8;
        const big = v.getBigUint64(this.pos - 8);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new NotCanonical('integer beyond 2^53 - 1');
        return Number(big);
      }
      case 31: throw new NotCanonical('indefinite length');
      default: throw new NotCanonical(`reserved additional information ${info}`);
    }
  }

  float(size: 2 | 4 | 8): number {
    this.need(size);
    this.pos += size;
    const o = this.pos - size;
    return size === 2 ? (this.#view as F16View).getFloat16(o) : size === 4 ? this.#view.getFloat32(o) : this.#view.getFloat64(o);
  }
}

function decodeValue(r: Reader, depth: number): CborValue {
  if (depth > MAX_DEPTH) throw new NotCanonical(`nested deeper than ${MAX_DEPTH}`);
  const initial = r.u8();
  const major = initial >> 5;
  const info = initial & 0x1f;
  switch (major) {
    case 0:
      return r.arg(info);
    case 1:
      return -1 - r.arg(info);
    case 2:
      return r.take(r.arg(info));
    case 3:
      try {
        return utf8Strict.decode(r.take(r.arg(info)));
      } catch (e) {
        if (e instanceof NotCanonical) throw e;
        throw new NotCanonical('text is not UTF-8');
      }
    case 4: {
      const n = r.arg(info);
      r.need(n); // every item is at least one byte: bound the length before allocating
      const out: CborValue[] = [];
      for (let i = 0; i < n; i++) out.push(decodeValue(r, depth + 1));
      return out;
    }
    case 5: {
      const n = r.arg(info);
      r.need(2 * n);
      const out: Record<string, CborValue> = {};
      for (let i = 0; i < n; i++) {
        const key = decodeValue(r, depth + 1);
        if (typeof key !== 'string') throw new NotCanonical('a map key is not text');
        if (Object.hasOwn(out, key)) throw new NotCanonical(`duplicate key ${JSON.stringify(key.slice(0, 32))}`);
        // defineProperty, not assignment: a "__proto__" key stays a plain key.
        Object.defineProperty(out, key, { value: decodeValue(r, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case 6:
      throw new NotCanonical('tags are not used');
    default:
      switch (info) {
        case 20: return false;
        case 21: return true;
        case 22: return null;
        case 25: return r.float(2);
        case 26: return r.float(4);
        case 27: return r.float(8);
        default: throw new NotCanonical(`simple value ${info} is not used`);
      }
  }
}

/** Decodes bytes that are the canonical encoding of a value; refuses anything else (see the top of this file). */
export function decodeCanonical(bytes: Uint8Array): CborValue {
  const r = new Reader(bytes);
  const value = decodeValue(r, 0);
  if (r.left !== 0) throw new NotCanonical('trailing bytes');
  // Shortest heads, sorted keys, shortest floats, integers as integers: one test covers them all.
  if (compareBytes(encodeCanonical(value), bytes) !== 0) throw new NotCanonical('not the canonical encoding');
  return value;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

export { compareBytes };
