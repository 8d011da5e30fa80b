/**
 * A bounded least-recently-used map. Used for compiled CEL programs (kept across runs, keyed
 * by expression text) and compiled regular expressions; each owner creates its own.
 */
export class LruCache<K, V> {
  readonly capacity: number
  readonly #entries = new Map<K, V>()

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LRU capacity must be a positive integer, got ${capacity}`)
    this.capacity = capacity
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key)
    if (value === undefined) return undefined
    // Re-inserting moves the key to the most recently used end of the Map's order.
    this.#entries.delete(key)
    this.#entries.set(key, value)
    return value
  }

  set(key: K, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value as K)
  }

  getOrCreate(key: K, create: () => V): V {
    const cached = this.get(key)
    if (cached !== undefined) return cached
    const value = create()
    this.set(key, value)
    return value
  }
}
