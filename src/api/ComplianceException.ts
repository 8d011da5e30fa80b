import { Schema } from "effect"
import { ExceptionMode } from "./AppliedException.ts"
import { FrameworkName } from "./Check.ts"
import { BackendName, LabelSelector } from "./ComplianceScanRun.ts"
import { crd } from "./CrdAnnotations.ts"
import { apiVersion, Condition, ObjectMeta } from "./ObjectMeta.ts"

export const kind = "ComplianceException"

/** `--max-exception-duration`'s default: the longest an exception may run from its creation. */
export const defaultMaxExceptionDuration = "2160h"
/** Bounds, so an exception stays small and cheap to match. */
export const exceptionLimits = {
  patterns: 100,
  patternLength: 256,
  justificationLength: 4_096
} as const

const Pattern = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(exceptionLimits.patternLength))
const Patterns = Schema.Array(Pattern).check(Schema.isMaxLength(exceptionLimits.patterns))

/**
 * Which subjects (nodes, objects, pods) of a check an exception covers. Every field given
 * must match; an absent field matches anything. Names and namespaces take `*` wildcards.
 */
export const ExceptionSubjects = Schema.Struct({
  kinds: Schema.optionalKey(Patterns),
  namespaces: Schema.optionalKey(Patterns),
  names: Schema.optionalKey(Patterns),
  /** Matches subjects of kind Node (kube-bench) by name. */
  nodeNames: Schema.optionalKey(Patterns),
  /** Labels of the subject object (objects of the kinds CEL lists; never nodes of kube-bench). */
  labelSelector: Schema.optionalKey(LabelSelector)
})
export type ExceptionSubjects = typeof ExceptionSubjects.Type

export const ExceptionMatch = Schema.Struct({
  /** Exact check ids, or prefixes ending in `*` (`pss-baseline-*`, `cis.1.2.*`). */
  checks: Patterns.check(Schema.isMinLength(1)),
  backends: Schema.optionalKey(Schema.Array(BackendName)),
  subjects: Schema.optionalKey(ExceptionSubjects),
  /** Only checks mapped to one of these frameworks. */
  frameworks: Schema.optionalKey(Schema.Array(FrameworkName))
})
export type ExceptionMatch = typeof ExceptionMatch.Type

export const ComplianceExceptionSpec = Schema.Struct({
  match: ExceptionMatch,
  mode: Schema.optionalKey(ExceptionMode.annotate(crd({ default: "waive" }))),
  justification: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(exceptionLimits.justificationLength)),
  approvedBy: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(exceptionLimits.patternLength)),
  ticket: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(2_048))),
  /** RFC 3339; at most `--max-exception-duration` after the exception's creation (admission policy). */
  expiresAt: Schema.String.annotate(crd({ format: "date-time" }))
})
export type ComplianceExceptionSpec = typeof ComplianceExceptionSpec.Type

/** Matched findings of the exception in the last run of one series (runs without a series: ""). */
export const SeriesMatches = Schema.Struct({
  series: Schema.String,
  run: Schema.String,
  namespace: Schema.String,
  matched: Schema.Int
})
export type SeriesMatches = typeof SeriesMatches.Type

export const ComplianceExceptionStatus = Schema.Struct({
  /** Matched findings in the last run of each series, summed: the printer column. */
  matched: Schema.optionalKey(Schema.Int),
  series: Schema.optionalKey(Schema.Array(SeriesMatches)),
  lastMatchedTime: Schema.optionalKey(Schema.String.annotate(crd({ format: "date-time" }))),
  /** Active, Expired, Unused (metav1.Condition). */
  conditions: Schema.optionalKey(
    Schema.Array(Condition).annotate(crd({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }))
  ),
  observedGeneration: Schema.optionalKey(Schema.Int)
})
export type ComplianceExceptionStatus = typeof ComplianceExceptionStatus.Type

export const ComplianceException = Schema.Struct({
  apiVersion: Schema.Literal(apiVersion),
  kind: Schema.Literal(kind),
  metadata: ObjectMeta,
  spec: ComplianceExceptionSpec,
  status: Schema.optionalKey(ComplianceExceptionStatus)
})
export type ComplianceException = typeof ComplianceException.Type

export const decodeComplianceException = Schema.decodeUnknownEffect(ComplianceException)

/** The mode with the CRD's default applied. */
export const modeOf = (spec: ComplianceExceptionSpec): ExceptionMode => spec.mode ?? "waive"
