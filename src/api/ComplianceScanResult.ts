import { Schema } from "effect"
import { ExceptionRecord } from "./AppliedException.ts"
import { Check, FrameworkName } from "./Check.ts"
import { BackendName, NodeScanStatus } from "./ComplianceScanRun.ts"
import { crd } from "./CrdAnnotations.ts"
import { Drift } from "./Drift.ts"
import { apiVersion, Condition, ObjectMeta } from "./ObjectMeta.ts"
import { Outcome, OutcomeCounts } from "./Outcome.ts"
import { Severity } from "./Severity.ts"

export const kind = "ComplianceScanResult"

/** One framework's view of a scan: its controls, each with the checks mapped to it. */
export const FrameworkReport = Schema.Struct({
  name: FrameworkName,
  controls: Schema.Array(
    Schema.Struct({
      controlID: Schema.String,
      outcome: Outcome,
      checks: Schema.Array(Schema.String)
    })
  ),
  passed: Schema.Int,
  failed: Schema.Int,
  /** Controls with an excepted check (also counted in passed/failed by their outcome). */
  excepted: Schema.optionalKey(Schema.Int)
})
export type FrameworkReport = typeof FrameworkReport.Type

export const ComplianceScanResultSpec = Schema.Struct({
  derivedFromRun: Schema.Struct({ name: Schema.String, uid: Schema.String }),
  backend: BackendName,
  benchmark: Schema.optionalKey(Schema.String),
  profile: Schema.optionalKey(Schema.String),
  checks: Schema.Array(Check),
  summary: OutcomeCounts,
  frameworks: Schema.optionalKey(Schema.Array(FrameworkReport)),
  /** kube-bench: each scanned node with its platform, version and benchmark (as in the run's status.nodes). */
  nodes: Schema.optionalKey(Schema.Array(NodeScanStatus)),
  /** The ComplianceExceptions this run applied, each at the resourceVersion it read. */
  exceptions: Schema.optionalKey(Schema.Array(ExceptionRecord))
})
export type ComplianceScanResultSpec = typeof ComplianceScanResultSpec.Type

export const ComplianceScanResultStatus = Schema.Struct({
  worstSeverity: Schema.optionalKey(Severity),
  truncated: Schema.optionalKey(Schema.Boolean),
  /** Runs of a series (schedule or baseline label): the change since the previous successful Result. */
  drift: Schema.optionalKey(Drift),
  conditions: Schema.optionalKey(
    Schema.Array(Condition).annotate(crd({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }))
  )
})
export type ComplianceScanResultStatus = typeof ComplianceScanResultStatus.Type

export const ComplianceScanResult = Schema.Struct({
  apiVersion: Schema.Literal(apiVersion),
  kind: Schema.Literal(kind),
  metadata: ObjectMeta,
  spec: ComplianceScanResultSpec,
  status: Schema.optionalKey(ComplianceScanResultStatus)
})
export type ComplianceScanResult = typeof ComplianceScanResult.Type
