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
  /** Units all evaluations of one run may use together, per `objectsPerAllowance` objects. */
  readonly perRun: number
}

export const defaultCostLimits: CostLimits = {
  perEvaluation: 1_000_000,
  perRun: 100_000_000
}

/**
 * The per-run budget and the wall-clock bound cover this many objects; a run over more
 * objects gets proportionally more of both (a run over 100,000 Pods, ten times the budget
 * and the time). Fixed bounds would fail every large cluster's run however sound its rules;
 * the per-evaluation limit and the run's own deadline still bound each rule and the whole run.
 */
export const objectsPerAllowance = 10_000

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
  readonly #now: () => number
  readonly #start: number
  /** The wall-clock bound for the first `objectsPerAllowance` objects. */
  readonly #window: number
  #objects = 0
  #evaluationUsed = 0
  #runUsed = 0
  /** Starts full: the run's first charge reads the clock (a run already past its deadline stops at once). */
  #chargesSinceClockCheck = clockCheckInterval
  #exhaustion: CostExhaustion | undefined = undefined

  /**
   * `timeBound`: evaluation may go on for `millis` (per allowance of objects) after `start`,
   * both in the unit and epoch of `now()` (epoch milliseconds by default).
   */
  constructor(limits: CostLimits, timeBound: { readonly start: number; readonly millis: number }, now: () => number = Date.now) {
    this.limits = limits
    this.#now = now
    this.#start = timeBound.start
    this.#window = timeBound.millis
  }

  /** How many times the budget and the time of `objectsPerAllowance` objects this run may use. */
  get #allowances(): number {
    return Math.max(1, this.#objects / objectsPerAllowance)
  }

  /** Units all evaluations of this run may use together, for the objects admitted so far. */
  get runBudget(): number {
    return this.limits.perRun * this.#allowances
  }

  /** When the wall-clock bound passes, for the objects admitted so far (same unit and epoch as `now()`). */
  get deadline(): number {
    return this.#start + this.#window * this.#allowances
  }

  /** The wall-clock bound of the first `objectsPerAllowance` objects, in the unit of `now()`. */
  get window(): number {
    return this.#window
  }

  /** One more object to evaluate: the run's budget and time grow with the objects it covers. */
  admitObject(): void {
    this.#objects++
  }

  get exhaustion(): CostExhaustion | undefined {
    return this.#exhaustion
  }

  /** Units used by the whole run so far. */
  get used(): number {
    return this.#runUsed
  }

  /**
   * Starts one evaluation: resets the per-evaluation count and charges its base unit. The
   * clock count runs on across evaluations: a scan makes millions of short evaluations, and
   * reading the clock at the start of each took about 1% of a scan's CPU.
   */
  startEvaluation(): void {
    this.#evaluationUsed = 0
    this.charge(1)
  }

  charge(units: number): void {
    if (this.#exhaustion !== undefined) throw new CostExhaustedSignal(this.#exhaustion)
    this.#evaluationUsed += units
    this.#runUsed += units
    if (this.#evaluationUsed > this.limits.perEvaluation) return this.#exhaust("evaluation-cost")
    if (this.#runUsed > this.limits.perRun && this.#runUsed > this.runBudget) return this.#exhaust("run-cost")
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
