import { Schema } from "effect"

/** How a ComplianceException treats the findings it matches. */
export const exceptionModes = ["waive", "alertOnly"] as const
export const ExceptionMode = Schema.Literals(exceptionModes)
export type ExceptionMode = typeof ExceptionMode.Type

/** What a Result carries next to an excepted subject (or subject-less check). */
export const AppliedException = Schema.Struct({
  name: Schema.String,
  namespace: Schema.String,
  mode: ExceptionMode,
  expiresAt: Schema.String,
  /** The outcome the finding had before the exception (the severity is the check's, unchanged). */
  outcome: Schema.Literals(["fail", "warn"])
})
export type AppliedException = typeof AppliedException.Type

/** An exception a run applied, as recorded in its Result: enough to find the exact version again. */
export const ExceptionRecord = Schema.Struct({
  name: Schema.String,
  namespace: Schema.String,
  resourceVersion: Schema.String,
  /** metadata.generation: the spec's version (status writes change resourceVersion, not this). */
  generation: Schema.optionalKey(Schema.Int),
  mode: ExceptionMode,
  expiresAt: Schema.String,
  /** Findings (subjects, or subject-less checks) it matched in this run. */
  matched: Schema.Int
})
export type ExceptionRecord = typeof ExceptionRecord.Type
