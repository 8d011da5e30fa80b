/**
 * Bounded cost for CEL evaluation. No JavaScript CEL engine tracks cost, so the engine
 * charges units at the places where work can grow (each comprehension charges the size of
 * what it iterates, each `+` and `cel.bind` the size of what it builds, library functions
 * their input sizes) and this meter enforces three bounds: a per-evaluation limit (like
 * Kubernetes' per-call limit), a per-run budget and a wall-clock deadline.
 *
 * Exhaustion is sticky: once a bound is crossed every further charge throws at once, so an
 * evaluation that swallowed the first signal (CEL's `||` absorbs errors) still unwinds fast,
 * and the caller reads `exhaustion` after each evaluation.
 */
export type CostExhaustion = "evaluation-cost" | "run-cost" | "wall-clock"

export interface CostLimits {
  /** Units one evaluation of one expression against one object may use. */
  readonly perEvaluation: number
  /** Units all evaluations of one run may use together. */
  readonly perRun: number
}

export const defaultCostLimits: CostLimits = {
  perEvaluation: 1_000_000,
  perRun: 100_000_000
}

/** Thrown inside an evaluation to unwind it; never escapes the engine. */
export class CostExhaustedSignal extends Error {
  readonly exhaustion: CostExhaustion
  constructor(exhaustion: CostExhaustion) {
    super(`CEL ${exhaustion} bound exceeded`)
    this.exhaustion = exhaustion
  }
}

/** How often (in charges) the wall clock is read: reading it on every charge costs more than the charge. */
const clockCheckInterval = 32

export class CostMeter {
  readonly limits: CostLimits
  readonly deadline: number
  readonly #now: () => number
  #evaluationUsed = 0
  #runUsed = 0
  #chargesSinceClockCheck = 0
  #exhaustion: CostExhaustion | undefined = undefined

  /** `deadline` is in the same unit and epoch as `now()` (epoch milliseconds by default). */
  constructor(limits: CostLimits, deadline: number, now: () => number = Date.now) {
    this.limits = limits
    this.deadline = deadline
    this.#now = now
  }

  get exhaustion(): CostExhaustion | undefined {
    return this.#exhaustion
  }

  /** Units used by the whole run so far. */
  get used(): number {
    return this.#runUsed
  }

  /** Starts one evaluation: resets the per-evaluation count and charges its base unit. */
  startEvaluation(): void {
    this.#evaluationUsed = 0
    this.#chargesSinceClockCheck = clockCheckInterval
    this.charge(1)
  }

  charge(units: number): void {
    if (this.#exhaustion !== undefined) throw new CostExhaustedSignal(this.#exhaustion)
    this.#evaluationUsed += units
    this.#runUsed += units
    if (this.#evaluationUsed > this.limits.perEvaluation) return this.#exhaust("evaluation-cost")
    if (this.#runUsed > this.limits.perRun) return this.#exhaust("run-cost")
    if ((++this.#chargesSinceClockCheck >= clockCheckInterval || units >= 1000) && !this.checkClock()) {
      throw new CostExhaustedSignal("wall-clock")
    }
  }

  /** Marks the meter exhausted once the deadline has passed; false when any bound is exhausted. */
  checkClock(): boolean {
    this.#chargesSinceClockCheck = 0
    if (this.#exhaustion === undefined && this.#now() > this.deadline) this.#exhaustion = "wall-clock"
    return this.#exhaustion === undefined
  }

  #exhaust(exhaustion: CostExhaustion): never {
    this.#exhaustion = exhaustion
    throw new CostExhaustedSignal(exhaustion)
  }
}
