import { Schema } from "effect"
import { AppliedException } from "./AppliedException.ts"
import { crd } from "./CrdAnnotations.ts"
import { Outcome, OutcomeCounts } from "./Outcome.ts"
import { Severity } from "./Severity.ts"

/** Frameworks a finding can be mapped to. */
export const frameworkNames = ["soc2", "iso27001", "pci-dss", "nist-800-53", "cis", "mitre-attack", "custom"] as const
export const FrameworkName = Schema.Literals(frameworkNames)
export type FrameworkName = typeof FrameworkName.Type

export const FrameworkRef = Schema.Struct({
  name: FrameworkName,
  controlID: Schema.String.check(Schema.isMaxLength(128))
})
export type FrameworkRef = typeof FrameworkRef.Type

/** Who a check is about: a node (kube-bench), an object (CEL), a pod or host (Falco). */
export const Subject = Schema.Struct({
  kind: Schema.String,
  name: Schema.String,
  namespace: Schema.optionalKey(Schema.String),
  outcome: Outcome,
  message: Schema.optionalKey(Schema.String),
  expected: Schema.optionalKey(Schema.String),
  actual: Schema.optionalKey(Schema.String),
  count: Schema.optionalKey(Schema.Int),
  /**
   * Set when `name` / `namespace` came from untrusted text (a Falco alert) and had control
   * or bidi characters replaced for display: the exact raw value, backslash-escaped.
   */
  rawName: Schema.optionalKey(Schema.String),
  rawNamespace: Schema.optionalKey(Schema.String),
  /** The ComplianceException applied to this subject; `outcome` is then the excepted one. */
  exception: Schema.optionalKey(AppliedException)
})
export type Subject = typeof Subject.Type

/** One finding in a ComplianceScanResult. */
export const Check = Schema.Struct({
  checkID: Schema.String,
  title: Schema.String,
  detail: Schema.optionalKey(Schema.String),
  remediation: Schema.optionalKey(Schema.String),
  outcome: Outcome,
  severity: Severity,
  scored: Schema.optionalKey(Schema.Boolean),
  subjects: Schema.optionalKey(Schema.Array(Subject)),
  subjectCounts: Schema.optionalKey(OutcomeCounts),
  frameworks: Schema.optionalKey(
    Schema.Array(FrameworkRef).annotate(crd({ "x-kubernetes-list-type": "atomic" }))
  ),
  /** The ComplianceException applied to a check without subjects (with subjects: on each subject). */
  exception: Schema.optionalKey(AppliedException)
})
export type Check = typeof Check.Type
