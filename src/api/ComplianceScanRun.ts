import { Schema } from "effect"
import { ExceptionRecord } from "./AppliedException.ts"
import { FrameworkRef } from "./Check.ts"
import { crd } from "./CrdAnnotations.ts"
import { DurationString, parseDurationMillis } from "./Duration.ts"
import { apiVersion, Condition, ObjectMeta } from "./ObjectMeta.ts"
import { OutcomeCounts } from "./Outcome.ts"
import { RunReason } from "./RunReason.ts"
import { Severity } from "./Severity.ts"

export const kind = "ComplianceScanRun"

/** `cel-custom` is the earlier Go implementation's name for `cel`; both are accepted. */
export const backendNames = ["kube-bench", "falco", "cel", "cel-custom"] as const
export const BackendName = Schema.Literals(backendNames)
export type BackendName = typeof BackendName.Type

/** The scanner a backend name selects (`cel-custom` is `cel`). */
export type ScannerName = Exclude<BackendName, "cel-custom">
export const scannerNameOf = (backend: BackendName): ScannerName => (backend === "cel-custom" ? "cel" : backend)

/** Defaults of the contract: the CRD declares them and `withDefaults` applies them. */
export const specDefaults = {
  alertOn: "high",
  timeout: "10m",
  maxConcurrentNodes: 10,
  falcoWindow: "1m"
} as const

export const kubeBenchTargets = ["master", "node", "controlplane", "etcd", "policies", "managedservices"] as const

/**
 * Bounds of what a run may carry, so an oversized run is refused at admission (422) rather
 * than by etcd, and its Result can always be made to fit (docs/api.md, "Limits").
 */
export const specLimits = {
  controlMappings: 200,
  frameworksPerMapping: 20,
  checkIDLength: 256,
  celRules: 100,
  celExpressionLength: 8_192,
  celMessageExpressionLength: 2_048
} as const

export const ControlMapping = Schema.Struct({
  checkID: Schema.String.check(Schema.isMaxLength(specLimits.checkIDLength)),
  frameworks: Schema.Array(FrameworkRef).check(Schema.isMaxLength(specLimits.frameworksPerMapping))
})
export type ControlMapping = typeof ControlMapping.Type

export const KubeBenchSpec = Schema.Struct({
  targets: Schema.optionalKey(Schema.Array(Schema.Literals(kubeBenchTargets))),
  maxConcurrentNodes: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })).annotate(crd({ default: specDefaults.maxConcurrentNodes }))
  )
})

export const falcoPriorities = [
  "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"
] as const
export const FalcoPriority = Schema.Literals(falcoPriorities)
export type FalcoPriority = typeof FalcoPriority.Type

export const FalcoSpec = Schema.Struct({
  window: Schema.optionalKey(DurationString.annotate(crd({ default: specDefaults.falcoWindow }))),
  minPriority: Schema.optionalKey(FalcoPriority),
  rules: Schema.optionalKey(Schema.Array(Schema.String)),
  tags: Schema.optionalKey(Schema.Array(Schema.String))
})

export const LabelSelector = Schema.Struct({
  matchLabels: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  matchExpressions: Schema.optionalKey(
    Schema.Array(
      Schema.Struct({
        key: Schema.String,
        operator: Schema.Literals(["In", "NotIn", "Exists", "DoesNotExist"]),
        values: Schema.optionalKey(Schema.Array(Schema.String))
      })
    )
  )
})
export type LabelSelector = typeof LabelSelector.Type

/** What rules match when `match.resources` is absent. */
export const celDefaultResources = ["pods"] as const

export const CelRule = Schema.Struct({
  id: Schema.String.check(Schema.isMinLength(1)),
  title: Schema.optionalKey(Schema.String),
  severity: Severity,
  match: Schema.optionalKey(
    Schema.Struct({
      // Like a ValidatingAdmissionPolicy's resourceRules: plural names, their API groups
      // (inferred for built-in kinds) and versions (needed for custom resources only).
      apiGroups: Schema.optionalKey(Schema.Array(Schema.String)),
      apiVersions: Schema.optionalKey(Schema.Array(Schema.String)),
      resources: Schema.optionalKey(Schema.Array(Schema.String.check(Schema.isMinLength(1)))),
      namespaceSelector: Schema.optionalKey(LabelSelector),
      labelSelector: Schema.optionalKey(LabelSelector)
    })
  ),
  expression: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(specLimits.celExpressionLength)),
  messageExpression: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(specLimits.celMessageExpressionLength))),
  remediation: Schema.optionalKey(Schema.String),
  frameworks: Schema.optionalKey(Schema.Array(FrameworkRef).check(Schema.isMaxLength(specLimits.frameworksPerMapping)))
})
export type CelRule = typeof CelRule.Type

export const CelSpec = Schema.Struct({
  rules: Schema.optionalKey(Schema.Array(CelRule).check(Schema.isMaxLength(specLimits.celRules)))
})

/** Shorter runs would always time out (a kube-bench Pod alone takes seconds to start). */
export const minimumTimeout = "10s"

/** Durations too long for CEL's duration() (the admission policy uses the same pattern). */
const beyondDurationRange = "[0-9]{7,}(\\\\.[0-9]*)?h|[0-9]{9,}(\\\\.[0-9]*)?m([0-9]|$)|[0-9]{11,}(\\\\.[0-9]*)?m?s"

const RunTimeout = DurationString.check(
  Schema.makeFilter((text: string) =>
    (parseDurationMillis(text) ?? 0) >= parseDurationMillis(minimumTimeout)! ||
    `spec.timeout must be at least ${minimumTimeout}`
  )
).annotate(crd({
  default: specDefaults.timeout,
  "x-kubernetes-validations": [{
    // Durations beyond CEL's range (about 290 years) would fail duration() with a raw type
    // conversion error; they are above the minimum, and the admission policy caps them.
    rule: `self.matches('${beyondDurationRange}') || duration(self) >= duration('${minimumTimeout}')`,
    message: `spec.timeout must be at least ${minimumTimeout}`
  }]
}))

export const ComplianceScanRunSpec = Schema.Struct({
  backend: BackendName,
  benchmark: Schema.optionalKey(Schema.String),
  profile: Schema.optionalKey(Schema.String),
  alertOn: Schema.optionalKey(Severity.annotate(crd({ default: specDefaults.alertOn }))),
  timeout: Schema.optionalKey(RunTimeout),
  targetNodeSelector: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  controlMappings: Schema.optionalKey(Schema.Array(ControlMapping).check(Schema.isMaxLength(specLimits.controlMappings))),
  kubeBench: Schema.optionalKey(KubeBenchSpec),
  falco: Schema.optionalKey(FalcoSpec),
  cel: Schema.optionalKey(CelSpec)
}).annotate(crd({ "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "spec is immutable" }] }))
export type ComplianceScanRunSpec = typeof ComplianceScanRunSpec.Type

export const runPhases = ["", "Running", "Succeeded", "Failed"] as const
export const RunPhase = Schema.Literals(runPhases)
export type RunPhase = typeof RunPhase.Type

/** What the run checks against, as its events and metrics name it: a kube-bench benchmark or a CEL profile. */
export const checkedAgainst = (spec: ComplianceScanRunSpec): string | undefined => spec.benchmark ?? spec.profile

export const isTerminal = (phase: RunPhase | undefined): boolean => phase === "Succeeded" || phase === "Failed"

export const NodeScanStatus = Schema.Struct({
  name: Schema.String,
  job: Schema.String,
  phase: Schema.Literals(["Pending", "Running", "Succeeded", "Failed"]),
  reason: Schema.optionalKey(Schema.String),
  message: Schema.optionalKey(Schema.String),
  /** kube-bench: the platform detected from the Node object (`kubernetes`, `eks`, `gke`, `k3s`, ...). */
  platform: Schema.optionalKey(Schema.String),
  /** kube-bench: the platform's version the benchmark was chosen by (`1.31`; OpenShift `4.14`). */
  version: Schema.optionalKey(Schema.String),
  /** kube-bench: the benchmark the node was scanned with (`--benchmark`). */
  benchmark: Schema.optionalKey(Schema.String)
})
export type NodeScanStatus = typeof NodeScanStatus.Type

export const ComplianceScanRunStatus = Schema.Struct({
  phase: Schema.optionalKey(RunPhase),
  startTime: Schema.optionalKey(Schema.String.annotate(crd({ format: "date-time" }))),
  completionTime: Schema.optionalKey(Schema.String.annotate(crd({ format: "date-time" }))),
  reason: Schema.optionalKey(RunReason),
  message: Schema.optionalKey(Schema.String),
  worstSeverity: Schema.optionalKey(Severity),
  summary: Schema.optionalKey(OutcomeCounts),
  resultRef: Schema.optionalKey(Schema.Struct({ name: Schema.String })),
  nodes: Schema.optionalKey(Schema.Array(NodeScanStatus)),
  conditions: Schema.optionalKey(
    Schema.Array(Condition).annotate(crd({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }))
  ),
  observedGeneration: Schema.optionalKey(Schema.Int),
  /** The ComplianceExceptions the run applied (also in its Result), each at the version read. */
  exceptions: Schema.optionalKey(Schema.Array(ExceptionRecord))
})
export type ComplianceScanRunStatus = typeof ComplianceScanRunStatus.Type

export const ComplianceScanRun = Schema.Struct({
  apiVersion: Schema.Literal(apiVersion),
  kind: Schema.Literal(kind),
  metadata: ObjectMeta,
  spec: ComplianceScanRunSpec,
  status: Schema.optionalKey(ComplianceScanRunStatus)
})
export type ComplianceScanRun = typeof ComplianceScanRun.Type

export const decodeComplianceScanRun = Schema.decodeUnknownEffect(ComplianceScanRun)

/** The spec with the contract's defaults filled in (the API server does the same). */
export const withDefaults = (spec: ComplianceScanRunSpec) => ({
  ...spec,
  alertOn: spec.alertOn ?? specDefaults.alertOn,
  timeout: spec.timeout ?? specDefaults.timeout
})
