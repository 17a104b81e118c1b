// A memo bounded by count, dropping the oldest insertion when full. No reordering on hits: cheaper than a true
// LRU, and a caller cycling through many keys only costs recomputation, never correctness.
export class BoundedCache<V> {
  readonly #map = new Map<string, V>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get(key: string): V | undefined {
    return this.#map.get(key);
  }

  set(key: string, value: V): V {
    if (this.#map.size >= this.#capacity) this.#map.delete(this.#map.keys().next().value as string);
    this.#map.set(key, value);
    return value;
  }
}
