// A commit certificate: the proof, anyone can check, that a block was decided at a height. It is the 2f+1 (more
// than two thirds of the validators) precommits for the block's hash in one round that made a validator decide
// (line 49 of the paper). Two different blocks can never both have one at the same height while at most f < n/3
// validators are Byzantine: the two quorums would share an honest validator, and an honest validator precommits
// one value per round and, once locked, only a value with a newer proof of lock.
//
// verifyCommit checks the signatures and the count; the reader checks separately that the block it holds hashes
// to `blockHash` (hashing is the block format's business, not the certificate's).
import { HASH_HEX, type Vote } from './messages.ts';
import { signBytes } from './sign-bytes.ts';
import { quorum } from './validators.ts';

export interface CommitCertificate {
  thread: string;
  height: number;
  round: number;
  blockHash: string;
  /** Precommits for blockHash at (height, round), one per validator, at least quorum(n) of them. */
  precommits: Vote[];
}

export type Verify = (validator: string, bytes: Uint8Array, signature: Uint8Array) => boolean;

export type Check = { ok: true } | { ok: false; reason: string };

/**
 * Is `cert` a valid commit for its block? Every precommit must be for the certificate's thread, height, round and
 * block, from a distinct validator of `validators`, with a valid signature, and there must be more than two thirds
 * of the validators. Strict: one bad precommit fails the certificate (an honest validator never includes one).
 */
export function verifyCommit(cert: CommitCertificate, validators: readonly string[], verify: Verify): Check {
  if (typeof cert !== 'object' || cert === null) return { ok: false, reason: 'not a certificate' };
  if (typeof cert.blockHash !== 'string' || !HASH_HEX.test(cert.blockHash)) return { ok: false, reason: 'bad block hash' };
  if (!Array.isArray(cert.precommits)) return { ok: false, reason: 'no precommits' };
  const members = new Set(validators);
  const seen = new Set<string>();
  for (const [i, v] of cert.precommits.entries()) {
    if (typeof v !== 'object' || v === null) return { ok: false, reason: `precommits[${i}]: not a vote` };
    if (v.type !== 'precommit') return { ok: false, reason: `precommits[${i}]: a ${String(v.type)}, not a precommit` };
    if (v.thread !== cert.thread || v.height !== cert.height || v.round !== cert.round || v.blockHash !== cert.blockHash) {
      return { ok: false, reason: `precommits[${i}]: for another thread, height, round or block` };
    }
    if (!members.has(v.validator)) return { ok: false, reason: `precommits[${i}]: ${String(v.validator)} is not a validator` };
    if (seen.has(v.validator)) return { ok: false, reason: `precommits[${i}]: a second precommit from ${v.validator}` };
    seen.add(v.validator);
    let good = false;
    try {
      good = v.signature instanceof Uint8Array && verify(v.validator, signBytes(v), v.signature);
    } catch {
      good = false;
    }
    if (!good) return { ok: false, reason: `precommits[${i}]: bad signature from ${v.validator}` };
  }
  const need = quorum(validators.length);
  if (seen.size < need) return { ok: false, reason: `${seen.size} precommits, ${need} needed` };
  return { ok: true };
}
