// Evidence of equivocation: one validator signed two different messages where an honest one signs at most one —
// two proposals, two prevotes or two precommits for the same height and round. Both signed messages are kept
// (a proposal without its block: the signature covers only the hash), so a third party holding the validator's
// public key can check the misbehaviour with verifyEvidence, without trusting whoever reports it.
//
// Honest validators never produce it: the core signs at most one message per (height, round, type) and persists
// it before sending (core.ts), so not even a crash and restart can make it sign a second one.
import type { Check, Verify } from './commit.ts';
import { header, sameContent, type Message, type SignedHeader } from './messages.ts';
import { signBytes } from './sign-bytes.ts';

export type EvidenceKind = 'duplicate-vote' | 'duplicate-proposal';

export interface Evidence {
  kind: EvidenceKind;
  validator: string;
  thread: string;
  height: number;
  round: number;
  /** The message seen first, and the conflicting one. */
  first: SignedHeader;
  second: SignedHeader;
}

export function makeEvidence(first: Message<unknown>, second: Message<unknown>): Evidence {
  return {
    kind: first.type === 'proposal' ? 'duplicate-proposal' : 'duplicate-vote',
    validator: first.validator,
    thread: first.thread,
    height: first.height,
    round: first.round,
    first: header(first),
    second: header(second),
  };
}

/** Does `e` prove that its validator, one of `validators`, signed two conflicting messages? */
export function verifyEvidence(e: Evidence, validators: readonly string[], verify: Verify): Check {
  const { first: a, second: b } = e;
  if (!validators.includes(e.validator)) return { ok: false, reason: `${e.validator} is not a validator` };
  for (const m of [a, b]) {
    if (m.validator !== e.validator || m.thread !== e.thread || m.height !== e.height || m.round !== e.round) {
      return { ok: false, reason: 'the two messages are not from the same validator, thread, height and round' };
    }
  }
  if (a.type !== b.type) return { ok: false, reason: 'the two messages are of different types' };
  if ((e.kind === 'duplicate-proposal') !== (a.type === 'proposal')) return { ok: false, reason: `kind ${e.kind} does not match a ${a.type}` };
  if (sameContent(a, b)) return { ok: false, reason: 'the two messages say the same thing' };
  for (const m of [a, b]) {
    let good = false;
    try {
      good = verify(m.validator, signBytes(m), m.signature);
    } catch {
      good = false;
    }
    if (!good) return { ok: false, reason: 'a signature does not verify' };
  }
  return { ok: true };
}
