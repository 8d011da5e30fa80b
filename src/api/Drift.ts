import { Schema } from "effect"
import { Severity } from "./Severity.ts"

/** Most entries each drift list carries; the counts always count them all. */
export const driftEntryLimit = 50

/** One (check, subject) whose finding changed; `subject` is `kind/namespace/name` or `kind/name`, absent for a check without subjects. */
export const DriftEntry = Schema.Struct({
  checkID: Schema.String,
  subject: Schema.optionalKey(Schema.String),
  severity: Severity,
  previousSeverity: Schema.optionalKey(Severity)
})
export type DriftEntry = typeof DriftEntry.Type

export const DriftCounts = Schema.Struct({
  new: Schema.Int,
  resolved: Schema.Int,
  regressed: Schema.Int,
  improved: Schema.Int,
  unchanged: Schema.Int
})
export type DriftCounts = typeof DriftCounts.Type

/**
 * What changed since the previous successful Result of the same series (docs/api.md, "Drift"):
 * `new` fails now and did not fail or pass before; `resolved` failed before and does not now;
 * `regressed` passed before and fails now, or fails with a higher severity; `improved` fails
 * with a lower severity. Lists keep the `driftEntryLimit` most severe; `counts` counts all.
 */
export const Drift = Schema.Struct({
  previous: Schema.Struct({ name: Schema.String, completionTime: Schema.optionalKey(Schema.String) }),
  new: Schema.Array(DriftEntry),
  resolved: Schema.Array(DriftEntry),
  regressed: Schema.Array(DriftEntry),
  improved: Schema.Array(DriftEntry),
  unchanged: Schema.Int,
  counts: DriftCounts,
  /** The previous Result had subjects cut (Truncated): subject-level changes may be missing. */
  partial: Schema.optionalKey(Schema.Boolean)
})
export type Drift = typeof Drift.Type
