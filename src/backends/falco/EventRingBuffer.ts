import type { FalcoEvent } from "./FalcoEvent.ts"

/**
 * The receiver's memory of recent alerts: a ring of events in arrival order, bounded by
 * count and by bytes (the oldest go first) and by age (older entries are dropped before
 * every write and read). Arrival time, not the alert's own time, orders it, so a sender's
 * skewed clock cannot hide events from a run's window.
 */
export class EventRingBuffer {
  readonly capacity: number
  readonly maxBytes: number
  readonly maxAgeMillis: number
  readonly #events: Array<FalcoEvent | undefined>
  readonly #receivedAt: Float64Array
  readonly #sizes: Float64Array
  #start = 0
  #size = 0
  #bytes = 0

  constructor(options: { readonly capacity: number; readonly maxBytes: number; readonly maxAgeMillis: number }) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`buffer capacity must be a positive integer, got ${options.capacity}`)
    }
    if (!(options.maxBytes > 0)) throw new RangeError(`buffer bytes must be positive, got ${options.maxBytes}`)
    this.capacity = options.capacity
    this.maxBytes = options.maxBytes
    this.maxAgeMillis = options.maxAgeMillis
    this.#events = new Array<FalcoEvent | undefined>(options.capacity)
    this.#receivedAt = new Float64Array(options.capacity)
    this.#sizes = new Float64Array(options.capacity)
  }

  get size(): number {
    return this.#size
  }

  /** The accounted bytes of the alerts held (see AlertBudget.alertBytes). */
  get bytes(): number {
    return this.#bytes
  }

  /** Arrival time of the oldest alert held, or undefined when empty. */
  get oldestReceivedAt(): number | undefined {
    return this.#size === 0 ? undefined : this.#receivedAt[this.#start]
  }

  #dropOldest(): number {
    const at = this.#receivedAt[this.#start]!
    this.#bytes -= this.#sizes[this.#start]!
    this.#events[this.#start] = undefined
    this.#start = (this.#start + 1) % this.capacity
    this.#size--
    return at
  }

  /** Drops entries received before `now - maxAgeMillis`, telling `onDrop` each one's arrival time. */
  expire(now: number, onDrop: (receivedAt: number) => void): void {
    const cutoff = now - this.maxAgeMillis
    while (this.#size > 0 && this.#receivedAt[this.#start]! < cutoff) onDrop(this.#dropOldest())
  }

  /**
   * Appends events received at `now` with their accounted bytes; the oldest make room
   * (count or bytes), each told to `onDrop` with its arrival time.
   */
  push(entries: ReadonlyArray<{ readonly event: FalcoEvent; readonly bytes: number }>, now: number, onDrop: (receivedAt: number) => void): void {
    for (const { event, bytes } of entries) {
      while (this.#size > 0 && (this.#size === this.capacity || this.#bytes + bytes > this.maxBytes)) onDrop(this.#dropOldest())
      const index = (this.#start + this.#size) % this.capacity
      this.#size++
      this.#events[index] = event
      this.#receivedAt[index] = now
      this.#sizes[index] = bytes
      this.#bytes += bytes
    }
  }

  /** Events received in [from, to] (epoch ms), oldest first. */
  between(from: number, to: number): ReadonlyArray<FalcoEvent> {
    const found: Array<FalcoEvent> = []
    for (let offset = 0; offset < this.#size; offset++) {
      const index = (this.#start + offset) % this.capacity
      const at = this.#receivedAt[index]!
      if (at > to) break
      if (at >= from) found.push(this.#events[index]!)
    }
    return found
  }
}
