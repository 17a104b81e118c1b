// JSON text for the `*_json` proto fields. Event-store values come from cbor-x and may hold bytes, bigints,
// Maps and Sets, which JSON.stringify rejects or mangles; render them readably instead of failing the call.
export function toJson(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const raw = this[key]; // before toJSON (Buffer.toJSON would give {type,data})
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
    if (typeof raw === 'bigint') return raw.toString();
    if (raw instanceof Map) return Object.fromEntries(raw);
    if (raw instanceof Set) return [...raw];
    return v;
  });
}
