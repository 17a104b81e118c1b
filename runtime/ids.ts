// Identifiers are prefixed ULIDs (msg_01J…, task_…, net_…, env_…): sortable by creation time, unique without
// coordination.
import { ulid } from 'ulid';

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

// Not monotonic on purpose: a monotonic ULID is the previous one plus one within a millisecond, so anyone who saw
// one id could predict (and squat) the next. Every id gets 80 fresh random bits.
export function newId(prefix: string): string {
  return `${prefix}_${ulid(undefined, pooledPrng)}`;
}
