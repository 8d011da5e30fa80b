/** Why the receiver lost alerts before any run read them. */
export type DropReason = "capacity" | "age" | "rate_limited" | "too_large" | "overloaded" | "connection_limit"

export type DropCounts = Readonly<Partial<Record<DropReason, number>>>

/**
 * When alerts were lost, by reason, in one-second buckets of the time they arrived (or were
 * refused), so a run can tell whether its window lost any. Buckets older than `horizon`
 * are forgotten: windows reaching that far back are incomplete anyway (alert age limit).
 */
export class DropLedger {
  readonly #buckets = new Map<number, Partial<Record<DropReason, number>>>()
  readonly #horizonMillis: number

  constructor(horizonMillis: number) {
    this.#horizonMillis = horizonMillis
  }

  record(at: number, reason: DropReason, count = 1): void {
    const second = Math.floor(at / 1000)
    const bucket = this.#buckets.get(second) ?? {}
    bucket[reason] = (bucket[reason] ?? 0) + count
    this.#buckets.set(second, bucket)
  }

  /** Forgets buckets older than the horizon. */
  prune(now: number): void {
    const oldest = Math.floor((now - this.#horizonMillis) / 1000)
    for (const second of this.#buckets.keys()) if (second < oldest) this.#buckets.delete(second)
  }

  /** Losses in [from, to] (epoch ms; whole seconds, so a loss just outside may count: never one inside missed). */
  between(from: number, to: number): DropCounts {
    const counts: Partial<Record<DropReason, number>> = {}
    const first = Math.floor(from / 1000)
    const last = Math.floor(to / 1000)
    for (const [second, bucket] of this.#buckets) {
      if (second < first || second > last) continue
      for (const [reason, count] of Object.entries(bucket) as Array<[DropReason, number]>) {
        counts[reason] = (counts[reason] ?? 0) + count
      }
    }
    return counts
  }
}
