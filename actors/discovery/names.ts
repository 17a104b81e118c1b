// Human-readable agent names: what a name may look like, the CLI's word form, and the consent rule of a claim.
// Pure: no I/O, no clock (time comes in as `now`).
//
// A name is two or more words joined by "-": each word lowercase ASCII letters and digits, the first word starting
// with a letter, at most 63 characters in all (it fits a DNS label, and no two names look alike: no case, no
// Unicode, no doubled or dangling "-"). `swift-falcon`, `bright-harbor-7`. The CLI takes the words apart —
// `name claim swift falcon` — and joins them with "-".
import { ApiError, invalid } from '../../runtime/errors.ts';

export const NAME_MAX_LENGTH = 63;
const NAME_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$/;

export const NAME_RULE =
  'a name is two or more words of lowercase letters a-z and digits joined by "-", starting with a letter, ' +
  `at most ${NAME_MAX_LENGTH} characters (e.g. swift-falcon)`;

/** Why `name` is not a valid name, or null when it is one. */
export function nameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a name is required';
  if (name.length > NAME_MAX_LENGTH) return `longer than ${NAME_MAX_LENGTH} characters`;
  if (NAME_RE.test(name)) return null;
  if (/[A-Z]/.test(name)) return 'use lowercase letters only';
  if (/[^a-z0-9-]/.test(name)) return `${JSON.stringify(name.match(/[^a-z0-9-]/)![0])} is not allowed (only a-z, 0-9 and "-")`;
  if (!name.includes('-')) return 'needs two or more words joined by "-"';
  if (name.startsWith('-') || name.endsWith('-') || name.includes('--')) return 'a "-" joins two words: none at either end, never two in a row';
  if (!/^[a-z]/.test(name)) return 'must start with a letter';
  return 'not a name';
}

export function isName(name: unknown): name is string {
  return nameProblem(name) === null;
}

/** The name itself, or INVALID_ARGUMENT naming `field` that says what is wrong and what is allowed. */
export function parseName(field: string, name: unknown): string {
  const problem = nameProblem(name);
  if (problem) throw invalid(field, `${JSON.stringify(typeof name === 'string' ? name : String(name))} is not a name: ${problem}; ${NAME_RULE}`);
  return name as string;
}

/** The CLI form: `swift falcon` (separate arguments, or one with spaces) → `swift-falcon`, then checked. */
export function nameFromWords(words: readonly string[], field = 'name'): string {
  return parseName(field, words.flatMap((w) => w.split(/\s+/)).filter((w) => w.length > 0).join('-'));
}

/** A time as users read it in name errors: ISO 8601 to the second, `2026-05-31T14:22:00Z`. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** What a claim needs to know of the name's current holder (a verified, live-or-not record). */
export interface NameHolder {
  name: string;
  did: string;
  expiresAt: number;
  released: boolean;
}

/**
 * Consent: a claim by `self` is refused while another DID holds a live (unexpired, unreleased) record of the name.
 * Returns the ALREADY_EXISTS error to give the user (`name "swift-falcon" already claimed by did:key:… (expires …)`),
 * or null when the claim may go ahead (no record, our own, expired, released).
 */
export function claimRefusal(name: string, holder: NameHolder | undefined, self: string, now: number): ApiError | null {
  if (!holder || holder.did === self || holder.released || holder.expiresAt <= now) return null;
  return new ApiError(
    'ALREADY_EXISTS',
    `name ${JSON.stringify(name)} already claimed by ${holder.did} (expires ${isoSeconds(holder.expiresAt)})`,
    'name',
  );
}
