// The event store's rebase (runtime/event-store.ts), on real LMDB: an append that summarises a stream replaces its
// earlier events in the same transaction; sequence numbers go on; other streams are untouched; a rebase that fails
// deletes nothing; and it survives a reopen.
import { afterEach, describe, expect, it } from 'vitest';
import { EventStore, StreamConflictError } from '../../runtime/event-store.ts';
import { tempDir } from '../support/temp-dir.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function open(path: string): EventStore {
  const store = new EventStore(path, { durable: false });
  cleanups.push(() => store.close());
  return store;
}

const event = (type: string, n: number) => ({ type, at: n, data: { n } });
const seqs = (store: EventStore, stream: string) => [...store.read(stream)].map((e) => [e.seq, e.type]);

describe('event store: rebase', () => {
  it('replaces every earlier event of the stream with the summary; the head keeps counting; reading starts at the summary', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const store = open(dir.path);
    for (let n = 1; n <= 5; n++) await store.append('log/a', [event('STEP', n)]);
    // Streams whose names extend or precede this one are not touched.
    await store.append('log/a2', [event('STEP', 1)]);
    await store.append('log/', [event('STEP', 1)]);

    expect(await store.append('log/a', [event('BASE', 6)], { rebase: true })).toBe(6);
    expect(seqs(store, 'log/a')).toEqual([[6, 'BASE']]);
    expect(store.head('log/a')).toBe(6);
    expect(store.readOne('log/a', 3)).toBeUndefined();
    await store.append('log/a', [event('STEP', 7)]);
    expect(seqs(store, 'log/a')).toEqual([[6, 'BASE'], [7, 'STEP']]);
    expect(seqs(store, 'log/a2')).toEqual([[1, 'STEP']]);
    expect(seqs(store, 'log/')).toEqual([[1, 'STEP']]);

    // Again: only the events written since the last rebase go (the earlier ones are gone already).
    await store.append('log/a', [event('BASE', 8)], { rebase: true });
    expect(seqs(store, 'log/a')).toEqual([[8, 'BASE']]);
  });

  it('is one transaction: a rebase that fails its expectedHead deletes nothing', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const store = open(dir.path);
    for (let n = 1; n <= 3; n++) await store.append('log/a', [event('STEP', n)]);
    await expect(store.append('log/a', [event('BASE', 4)], { rebase: true, expectedHead: 2 })).rejects.toBeInstanceOf(StreamConflictError);
    expect(seqs(store, 'log/a')).toEqual([[1, 'STEP'], [2, 'STEP'], [3, 'STEP']]);
  });

  it('survives a reopen: the summary and what follows it, with the head where it was', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const first = new EventStore(dir.path);
    for (let n = 1; n <= 3; n++) await first.append('log/a', [event('STEP', n)]);
    await first.append('log/a', [event('BASE', 4)], { rebase: true });
    await first.append('log/a', [event('STEP', 5)]);
    await first.close();
    const again = open(dir.path);
    expect(seqs(again, 'log/a')).toEqual([[4, 'BASE'], [5, 'STEP']]);
    expect(again.head('log/a')).toBe(5);
  });
});
