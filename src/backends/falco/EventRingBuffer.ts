import type { FalcoEvent } from "./FalcoEvent.ts"

/**
 * The receiver's memory of recent alerts: a fixed-size ring of events in arrival order,
 * bounded by count (the oldest is overwritten) and by age (older entries are dropped
 * before every write and read). Arrival time, not the alert's own time, orders it, so
 * a sender's skewed clock cannot hide events from a run's window.
 */
export class EventRingBuffer {
  readonly capacity: number
  readonly maxAgeMillis: number
  readonly #events: Array<FalcoEvent | undefined>
  readonly #receivedAt: Float64Array
  #start = 0
  #size = 0

  constructor(options: { readonly capacity: number; readonly maxAgeMillis: number }) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`buffer capacity must be a positive integer, got ${options.capacity}`)
    }
    this.capacity = options.capacity
    this.maxAgeMillis = options.maxAgeMillis
    this.#events = new Array<FalcoEvent | undefined>(options.capacity)
    this.#receivedAt = new Float64Array(options.capacity)
  }

  get size(): number {
    return this.#size
  }

  /** Drops entries received before `now - maxAgeMillis`; returns how many. */
  expire(now: number): number {
    const cutoff = now - this.maxAgeMillis
    let dropped = 0
    while (this.#size > 0 && this.#receivedAt[this.#start]! < cutoff) {
      this.#events[this.#start] = undefined
      this.#start = (this.#start + 1) % this.capacity
      this.#size--
      dropped++
    }
    return dropped
  }

  /** Appends events received at `now`; returns how many old ones were overwritten (buffer full). */
  push(events: ReadonlyArray<FalcoEvent>, now: number): number {
    let overwritten = 0
    for (const event of events) {
      const index = (this.#start + this.#size) % this.capacity
      if (this.#size === this.capacity) {
        this.#start = (this.#start + 1) % this.capacity
        overwritten++
      } else {
        this.#size++
      }
      this.#events[index] = event
      this.#receivedAt[index] = now
    }
    return overwritten
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
