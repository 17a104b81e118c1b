// Event store vs raw LMDB, same machine, same run: durable appends/s and replay events/s.
import { join } from 'node:path';
import { open } from 'lmdb';
import { Encoder } from 'cbor-x';
import { EventStore } from '../../runtime/event-store.ts';
import { tempDir } from '../support/temp-dir.ts';
import { heading, row } from './stats.ts';

const N = 20_000;
const IN_FLIGHT = 100;
const payload = { id: 'msg_01JX0000000000000000000000', to: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp', text: 'Hey, available for a task?' };

async function inFlight(n: number, width: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await op(next++);
  }));
  return n / ((performance.now() - t) / 1000);
}

export async function benchEventStore(): Promise<void> {
  heading(`event store (${N} events, ${IN_FLIGHT} appends in flight, durable: fsync per commit)`);
  const dir = tempDir('mm-bench-');
  try {
    const store = new EventStore(join(dir.path, 'ours'));
    const appendRate = await inFlight(N, IN_FLIGHT, (i) => store.append(`s${i % 1000}`, [{ type: 'received', at: Date.now(), data: payload }]));

    // Raw baseline: the same bytes put into LMDB with the same durability, no streams, no heads.
    const raw = open({ path: join(dir.path, 'raw.mdb'), overlappingSync: false, encoding: 'binary' });
    const cbor = new Encoder({ useRecords: false });
    const rawRate = await inFlight(N, IN_FLIGHT, (i) => raw.put(i, cbor.encode({ v: 1, type: 'received', at: Date.now(), data: payload })));
    row('durable appends/s', appendRate, rawRate, 'ev/s', '≥ within 3× of raw');

    let t = performance.now();
    let n = 0;
    for (let s = 0; s < 1000; s++) for (const _ of store.read(`s${s}`)) n++;
    const replayRate = n / ((performance.now() - t) / 1000);
    t = performance.now();
    let m = 0;
    for (const { value } of raw.getRange({})) {
      cbor.decode(value);
      m++;
    }
    const rawReadRate = m / ((performance.now() - t) / 1000);
    row('replay (read + decode) events/s', replayRate, rawReadRate, 'ev/s');
    await store.close();
    await raw.close();
  } finally {
    dir.cleanup();
  }
}
