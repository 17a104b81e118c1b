// The hand-written canonical encoder (runtime/canonical-cbor.ts) writes exactly what cborg writes with
// rfc8949EncodeOptions, value by value — so every signed record keeps its bytes — and refuses what is outside the
// data model. (The encoding's own rules and refusals are tested with the discovery records.)
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode, rfc8949EncodeOptions } from 'cborg';
import { decodeCanonical, encodeCanonical, NotCanonical, type CborValue } from '../../runtime/canonical-cbor.ts';

const cborg = (v: unknown) => Buffer.from(encode(v, rfc8949EncodeOptions)).toString('hex');
const ours = (v: unknown) => Buffer.from(encodeCanonical(v as CborValue)).toString('hex');
/** cborg keeps a float -0 as -0; we write the integer 0 (see the data model). */
const noNegativeZero = (v: unknown): unknown => Object.is(v, -0) ? 0 : Array.isArray(v) ? v.map(noNegativeZero)
  : v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, noNegativeZero(x)])) : v;

const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.integer(), fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'grapheme' }), fc.uint8Array({ maxLength: 300 }), fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 30 }), tie('v'), { maxKeys: 6 })),
})).v;

describe('canonical CBOR: the fast encoder', () => {
  it('writes the same bytes as cborg (rfc8949EncodeOptions), and they decode back (property)', () => {
    fc.assert(fc.property(value, (v) => {
      expect(ours(v)).toBe(cborg(noNegativeZero(v)));
      expect(decodeCanonical(encodeCanonical(v as CborValue))).toEqual(noNegativeZero(v));
    }), { numRuns: 3000 });
  });

  it('agrees at every head-length and float-width boundary', () => {
    const edges = [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -24, -25, -256, -257, -65537, -(2 ** 53) + 1,
      2 ** 53, 2 ** 60, 1.5, 0.1, 65504, 65505, 1e300, 5e-324, 3.4028234663852886e38];
    for (const n of edges) expect(ours(n), String(n)).toBe(cborg(n));
    for (const len of [0, 23, 24, 255, 256, 65536]) {
      expect(ours('x'.repeat(len))).toBe(cborg('x'.repeat(len)));
      expect(ours(new Uint8Array(len))).toBe(cborg(new Uint8Array(len)));
    }
    // Keys sort by their encoded bytes: shorter first, then UTF-8 order (not JavaScript's UTF-16 order).
    const keys = { b: 1, a: 2, aa: 3, '\u{1F600}': 4, '\uFF61': 5, ['k'.repeat(24)]: 6, ['k'.repeat(23)]: 7 };
    expect(ours(keys)).toBe(cborg(keys));
  });

  it('refuses what the data model leaves out', () => {
    for (const bad of [Number.NaN, Infinity, undefined, 1n, new Date(), new Map(), '\ud800', { k: undefined }, [() => 1], { ['\udc00']: 1 }]) {
      expect(() => encodeCanonical(bad as unknown as CborValue), String(bad)).toThrow(NotCanonical);
    }
  });
});
