import { Schema } from "effect"
import { ComplianceScanRunSpec, RunPhase } from "./ComplianceScanRun.ts"
import { crd } from "./CrdAnnotations.ts"
import { DurationString } from "./Duration.ts"
import { apiVersion, Condition, ObjectMeta } from "./ObjectMeta.ts"
import { Severity } from "./Severity.ts"

export const kind = "ComplianceScanSchedule"

export const concurrencyPolicies = ["Forbid", "Replace", "Allow"] as const
export const ConcurrencyPolicy = Schema.Literals(concurrencyPolicies)
export type ConcurrencyPolicy = typeof ConcurrencyPolicy.Type

/** Defaults of the contract: the CRD declares them and `scheduleWithDefaults` applies them. */
export const scheduleDefaults = {
  suspend: false,
  concurrencyPolicy: "Forbid",
  successfulRunsHistoryLimit: 3,
  failedRunsHistoryLimit: 1
} as const

/**
 * Longest schedule name: its runs are named `<schedule>-<minutes since the epoch>` (up to
 * 11 characters) and carry the name as a label value (at most 63), like CronJob's 52.
 */
export const maxScheduleNameLength = 52

/** Most a schedule may spread its start times; more would blur hourly schedules into the next tick. */
export const maxJitter = "1h"

/** 5 cron fields, or one of the `@` shorthands; the cron library checks the fields themselves. */
export const cronPattern = /^(@(hourly|daily|midnight|weekly|monthly|yearly|annually)|(\S+\s+){4}\S+)$/u

/** A run's spec, editable: the run's own immutability rule does not apply to the template. */
export const RunTemplate = Schema.Struct(ComplianceScanRunSpec.fields)

export const ComplianceScanScheduleSpec = Schema.Struct({
  schedule: Schema.String.check(
    Schema.isPattern(cronPattern, { expected: "5 cron fields or @hourly, @daily, @weekly, @monthly, @yearly" })
  ),
  /** IANA time zone name (Europe/Berlin); the cron fields are read in it. Default UTC. */
  timeZone: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64))),
  suspend: Schema.optionalKey(Schema.Boolean.annotate(crd({ default: scheduleDefaults.suspend }))),
  /** Each run starts a fixed (per schedule) offset in [0, jitter) after its scheduled time. */
  jitter: Schema.optionalKey(DurationString.annotate(crd({
    "x-kubernetes-validations": [{
      rule: `!self.matches('[0-9]{7,}') && duration(self) <= duration('${maxJitter}')`,
      message: `spec.jitter must be at most ${maxJitter}`
    }]
  }))),
  startingDeadlineSeconds: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  concurrencyPolicy: Schema.optionalKey(ConcurrencyPolicy.annotate(crd({ default: scheduleDefaults.concurrencyPolicy }))),
  successfulRunsHistoryLimit: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100 })).annotate(crd({ default: scheduleDefaults.successfulRunsHistoryLimit }))
  ),
  failedRunsHistoryLimit: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100 })).annotate(crd({ default: scheduleDefaults.failedRunsHistoryLimit }))
  ),
  /** Stale when the last success is older than this; default twice the schedule's period. */
  staleAfter: Schema.optionalKey(DurationString),
  runTemplate: RunTemplate
})
export type ComplianceScanScheduleSpec = typeof ComplianceScanScheduleSpec.Type

/** One framework's share of passed checks in the last successful Result (docs/api.md, "Score"). */
export const FrameworkScore = Schema.Struct({
  framework: Schema.String,
  passed: Schema.Int,
  failed: Schema.Int,
  score: Schema.Number
})
export type FrameworkScore = typeof FrameworkScore.Type

export const ComplianceScanScheduleStatus = Schema.Struct({
  lastScheduleTime: Schema.optionalKey(Schema.String.annotate(crd({ format: "date-time" }))),
  lastSuccessfulTime: Schema.optionalKey(Schema.String.annotate(crd({ format: "date-time" }))),
  nextScheduleTime: Schema.optionalKey(Schema.String.annotate(crd({ format: "date-time" }))),
  active: Schema.optionalKey(Schema.Array(Schema.Struct({ name: Schema.String }))),
  lastRun: Schema.optionalKey(Schema.Struct({
    name: Schema.String,
    phase: Schema.optionalKey(RunPhase),
    worstSeverity: Schema.optionalKey(Severity)
  })),
  /** Scheduled times that got no run (operator down, suspended, past the deadline, Forbid). */
  missedSchedules: Schema.optionalKey(Schema.Int),
  /** The run-now annotation value last handled. */
  lastRunNow: Schema.optionalKey(Schema.String),
  /** Scores of the last successful run's Result: `all` (every check), then each framework. */
  scores: Schema.optionalKey(Schema.Array(FrameworkScore)),
  scoredRun: Schema.optionalKey(Schema.String),
  conditions: Schema.optionalKey(
    Schema.Array(Condition).annotate(crd({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }))
  ),
  observedGeneration: Schema.optionalKey(Schema.Int)
})
export type ComplianceScanScheduleStatus = typeof ComplianceScanScheduleStatus.Type

export const ComplianceScanSchedule = Schema.Struct({
  apiVersion: Schema.Literal(apiVersion),
  kind: Schema.Literal(kind),
  metadata: ObjectMeta,
  spec: ComplianceScanScheduleSpec,
  status: Schema.optionalKey(ComplianceScanScheduleStatus)
})
export type ComplianceScanSchedule = typeof ComplianceScanSchedule.Type

/** The spec with the contract's defaults filled in (the API server does the same). */
export const scheduleWithDefaults = (spec: ComplianceScanScheduleSpec) => ({
  ...spec,
  suspend: spec.suspend ?? scheduleDefaults.suspend,
  concurrencyPolicy: spec.concurrencyPolicy ?? scheduleDefaults.concurrencyPolicy,
  successfulRunsHistoryLimit: spec.successfulRunsHistoryLimit ?? scheduleDefaults.successfulRunsHistoryLimit,
  failedRunsHistoryLimit: spec.failedRunsHistoryLimit ?? scheduleDefaults.failedRunsHistoryLimit
})

/** `security.ugallu.io/run-now`: any new value asks for one run now; the operator removes it. */
export const runNowAnnotation = "security.ugallu.io/run-now"
/** On runs of a schedule: the scheduled time (RFC 3339) the run is for. */
export const scheduledTimeAnnotation = "security.ugallu.io/scheduled-time"
