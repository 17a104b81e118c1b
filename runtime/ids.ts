// Identifiers are prefixed ULIDs (msg_01J…, task_…, net_…, env_…): sortable by creation time, unique without
// coordination.
import { monotonicFactory } from 'ulid';

// ulid's default PRNG calls crypto.getRandomValues once per character (~48 µs an id); drawing from a pooled
// buffer of the same CSPRNG costs ~1 µs.
let pool = new Uint8Array(0);
let poolAt = 0;
const pooledPrng = (): number => {
  if (poolAt >= pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(4096));
    poolAt = 0;
  }
  return pool[poolAt++]! / 256;
};

// Monotonic: ids made in the same millisecond still sort in creation order.
const ulid = monotonicFactory(pooledPrng);

export function newId(prefix: string): string {
  return `${prefix}_${ulid()}`;
}
