// Work run one at a time per key (a task's incoming messages, a task's appends): each job starts when the one
// queued before it under the same key has settled, whether it succeeded or not. Keys with nothing queued cost
// nothing (their entry is dropped once idle).
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Queues `work` behind what is queued under `key`; resolves or rejects as `work` does. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const next = (this.#tails.get(key) ?? Promise.resolve()).then(work);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }

  /** Resolves once everything queued under `key` so far has settled. */
  idle(key: string): Promise<void> {
    return (this.#tails.get(key) ?? Promise.resolve()).then(() => undefined);
  }
}
