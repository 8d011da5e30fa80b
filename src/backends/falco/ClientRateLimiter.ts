/**
 * A token bucket per client (the receiver keys it by remote address), so one flooding
 * sender gets 429s while the others keep being served. Idle buckets are forgotten, so a
 * churn of clients cannot grow the map without bound.
 */
export class ClientRateLimiter {
  readonly ratePerSecond: number
  readonly burst: number
  readonly #buckets = new Map<string, { tokens: number; updatedAt: number }>()
  #lastSweep = 0

  constructor(options: { readonly ratePerSecond: number; readonly burst: number }) {
    this.ratePerSecond = options.ratePerSecond
    this.burst = Math.max(1, options.burst)
  }

  /** Takes one token for `client` at `now` (epoch ms); false when the client is over its rate. */
  take(client: string, now: number): boolean {
    this.#sweep(now)
    const bucket = this.#buckets.get(client) ?? { tokens: this.burst, updatedAt: now }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.ratePerSecond)
    bucket.updatedAt = now
    this.#buckets.set(client, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /** Seconds until `client` has a token again (for Retry-After). */
  retryAfterSeconds(client: string): number {
    const bucket = this.#buckets.get(client)
    if (bucket === undefined || this.ratePerSecond <= 0) return 1
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerSecond))
  }

  /** A bucket that has refilled completely is the same as no bucket: drop it. */
  #sweep(now: number): void {
    const refillMillis = (this.burst / Math.max(this.ratePerSecond, 1e-9)) * 1000
    if (now - this.#lastSweep < Math.min(refillMillis, 60_000)) return
    this.#lastSweep = now
    for (const [client, bucket] of this.#buckets) {
      if (now - bucket.updatedAt >= refillMillis) this.#buckets.delete(client)
    }
  }
}
