// The peer store's and DHT's datastore (actors/transport/cached-datastore.ts): a LevelDB datastore whose reads are
// answered from memory once seen, whose writes still reach LevelDB before they resolve — so nothing a cached read
// shows can be older than LevelDB, a failed write never leaves the cache ahead of it, and a restart reads
// everything back from disk.
import { afterEach, describe, expect, it } from 'vitest';
import { Key } from 'interface-datastore';
import { CachedLevelDatastore } from '../../actors/transport/cached-datastore.ts';
import { tempDir } from '../support/temp-dir.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const dirs: Array<{ cleanup(): void }> = [];
const stores: CachedLevelDatastore[] = [];

async function open(path?: string, cacheBytes?: number): Promise<{ ds: CachedLevelDatastore; path: string }> {
  let p = path;
  if (!p) {
    const d = tempDir('mm-cached-ds-');
    dirs.push(d);
    p = d.path;
  }
  const ds = new CachedLevelDatastore(p, cacheBytes === undefined ? {} : { cacheBytes });
  await ds.open();
  stores.push(ds);
  return { ds, path: p };
}

async function notFound(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'found', (err: Error) => err.name);
}

afterEach(async () => {
  for (const ds of stores.splice(0)) await ds.close().catch(() => undefined);
  for (const d of dirs.splice(0)) d.cleanup();
});

describe('CachedLevelDatastore', () => {
  it('reads what was written, "not found" included, and reads it again from memory', async () => {
    const { ds } = await open();
    const k = new Key('/peers/a');
    expect(await notFound(ds.get(k))).toBe('NotFoundError');
    expect(await ds.has(k)).toBe(false);
    expect(await notFound(ds.get(k))).toBe('NotFoundError'); // the cached "not found"
    await ds.put(k, bytes('one'));
    expect(text(await ds.get(k))).toBe('one');
    expect(await ds.has(k)).toBe(true);
    await ds.put(k, bytes('two'));
    expect(text(await ds.get(k))).toBe('two');
    await ds.delete(k);
    expect(await notFound(ds.get(k))).toBe('NotFoundError');
    expect(await ds.has(k)).toBe(false);
  });

  it('writes through: a reopened store reads every write back from LevelDB', async () => {
    const { ds, path } = await open();
    await ds.put(new Key('/a'), bytes('1'));
    await ds.put(new Key('/b'), bytes('2'));
    await ds.delete(new Key('/a'));
    const b = ds.batch();
    b.put(new Key('/c'), bytes('3'));
    b.delete(new Key('/b'));
    await b.commit();
    await ds.close();
    const { ds: again } = await open(path);
    expect(await notFound(again.get(new Key('/a')))).toBe('NotFoundError');
    expect(await notFound(again.get(new Key('/b')))).toBe('NotFoundError');
    expect(text(await again.get(new Key('/c')))).toBe('3');
    const keys: string[] = [];
    for await (const key of again.queryKeys({})) keys.push(key.toString());
    expect(keys).toEqual(['/c']);
  });

  it('a batch shows its writes once committed', async () => {
    const { ds } = await open();
    await ds.put(new Key('/x'), bytes('old'));
    expect(text(await ds.get(new Key('/x')))).toBe('old');
    const b = ds.batch();
    b.put(new Key('/x'), bytes('new'));
    b.put(new Key('/y'), bytes('y'));
    await b.commit();
    expect(text(await ds.get(new Key('/x')))).toBe('new');
    expect(text(await ds.get(new Key('/y')))).toBe('y');
  });

  it('a read in flight when the key is written does not put the older value back', async () => {
    const { ds } = await open(undefined, 32 * 1024); // small: writing other keys evicts the one under test
    const filler = new Uint8Array(1000);
    for (let round = 0; round < 30; round++) {
      const k = new Key(`/race/${round}`);
      await ds.put(k, bytes('v0'));
      for (let i = 0; i < 40; i++) await ds.put(new Key(`/fill/${i}`), filler);
      const reading = ds.get(k); // a miss: goes to LevelDB
      const writing = ds.put(k, bytes('v1')); // issued while the read is in flight
      expect(['v0', 'v1']).toContain(text(await reading));
      await writing;
      expect(text(await ds.get(k))).toBe('v1');
    }
  });

  it('writes issued together are written together, the newer value of a key last', async () => {
    const { ds, path } = await open();
    const k = new Key('/twice');
    await Promise.all([ds.put(k, bytes('a')), ds.put(new Key('/other'), bytes('o')), ds.put(k, bytes('b')), ds.delete(new Key('/none'))]);
    expect(text(await ds.get(k))).toBe('b');
    await ds.put(new Key('/last'), bytes('l')); // not awaited by close below: close writes it first
    const late = ds.put(new Key('/late'), bytes('z'));
    await ds.close();
    await late;
    const { ds: again } = await open(path);
    expect(text(await again.get(k))).toBe('b');
    expect(text(await again.get(new Key('/other')))).toBe('o');
    expect(text(await again.get(new Key('/late')))).toBe('z');
  });

  it('a write that fails leaves the cache as LevelDB is, not ahead of it', async () => {
    const { ds } = await open();
    const k = new Key('/f');
    await ds.put(k, bytes('kept'));
    await expect(ds.put(k, bytes('lost'), { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(text(await ds.get(k))).toBe('kept');
    await expect(ds.delete(k, { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(text(await ds.get(k))).toBe('kept');
  });

  it('buffers are copied in and out: changing one changes nothing stored', async () => {
    const { ds } = await open();
    const k = new Key('/copy');
    const value = bytes('abc');
    await ds.put(k, value);
    value[0] = 0x7a;
    const got = await ds.get(k);
    expect(text(got)).toBe('abc');
    got[1] = 0x7a;
    expect(text(await ds.get(k))).toBe('abc');
  });

  it('holds at most its byte budget, dropping the least recently used first', async () => {
    const { ds } = await open(undefined, 64 * 1024);
    const big = new Uint8Array(1000);
    for (let i = 0; i < 200; i++) await ds.put(new Key(`/k/${i}`), big);
    const { bytes: held, entries } = ds.cacheStats();
    expect(held).toBeLessThanOrEqual(64 * 1024);
    expect(entries).toBeLessThan(200);
    // Evicted keys are still in LevelDB.
    expect((await ds.get(new Key('/k/0'))).byteLength).toBe(1000);
  });
});
