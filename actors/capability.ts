// Capability ids: what an agent advertises (moltbook.toml [agent] capabilities, its card), what a task asks for
// (its skill), what FindAgents searches — one rule for all of them.
//
//   a2a:v1:cap:<name>    <name>: lowercase letters and digits, then also `.` `_` `-`; at most 64 characters
//
// People write the bare name ("text-generation"); the prefix is added where it is missing.
import { invalid } from '../runtime/errors.ts';

export const CAPABILITY_PREFIX = 'a2a:v1:cap:';
const CAPABILITY_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Why `s` is not a capability (bare name or full id), or undefined when it is one. */
export function capabilityProblem(s: string): string | undefined {
  const name = s.startsWith(CAPABILITY_PREFIX) ? s.slice(CAPABILITY_PREFIX.length) : s;
  return CAPABILITY_NAME.test(name)
    ? undefined
    : `"${s}" is not a capability: use a name such as text-generation (lowercase letters, digits, - _ .; at most 64), optionally prefixed ${CAPABILITY_PREFIX}`;
}

/** `text-generation` or `a2a:v1:cap:text-generation` → the capability id; INVALID_ARGUMENT naming `field` otherwise. */
export function capabilityId(field: string, s: string): string {
  const problem = capabilityProblem(s);
  if (problem) throw invalid(field, problem);
  return s.startsWith(CAPABILITY_PREFIX) ? s : CAPABILITY_PREFIX + s;
}
