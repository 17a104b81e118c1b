// Waiting on another process's state that has no push API to wait on (a task's state on the assignee, a thread's
// height on a replica): poll, bounded.

/** Polls `get` until `check` holds; an error (the thing has not arrived yet) counts as not yet. */
export async function pollUntil<T>(what: string, get: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get().catch((err: unknown) => err as T);
    if (!(v instanceof Error) && check(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${v instanceof Error ? v.message : JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
