import { Schema } from "effect"

/** What a check (or one of its subjects) found. */
export const outcomes = ["pass", "fail", "warn", "skip", "error"] as const

export type Outcome = (typeof outcomes)[number]

export const Outcome = Schema.Literals(outcomes)

/**
 * Which outcome wins when several are combined (a check over many nodes or objects):
 * error > fail > warn > pass > skip. `skip` loses to everything so that one skipped node
 * does not hide what the others found.
 */
const precedence: Record<Outcome, number> = { skip: 0, pass: 1, warn: 2, fail: 3, error: 4 }

export const worstOutcome = (list: Iterable<Outcome>, empty: Outcome = "pass"): Outcome => {
  let worst: Outcome | undefined
  for (const outcome of list) {
    if (worst === undefined || precedence[outcome] > precedence[worst]) worst = outcome
  }
  return worst ?? empty
}

/** Counts per outcome: the `summary` of runs and Results, and a check's `subjectCounts`. */
export const OutcomeCounts = Schema.Struct({
  pass: Schema.Int,
  fail: Schema.Int,
  warn: Schema.Int,
  skip: Schema.Int,
  error: Schema.Int,
  /** Checks with at least one finding under a ComplianceException (also counted by outcome). */
  excepted: Schema.optionalKey(Schema.Int)
})

export type OutcomeCounts = typeof OutcomeCounts.Type

export const emptyCounts = (): { -readonly [K in Outcome]: number } => ({ pass: 0, fail: 0, warn: 0, skip: 0, error: 0 })

export const countOutcomes = (list: Iterable<Outcome>): OutcomeCounts => {
  const counts = emptyCounts()
  for (const outcome of list) counts[outcome]++
  return counts
}
