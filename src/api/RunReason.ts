import { Schema } from "effect"

/**
 * Every `status.reason` a ComplianceScanRun can end with: the one list ScanFailed, the run's
 * status schema (hence the CRD's enum), the metrics' known label values and docs/api.md
 * (a test compares them) all use.
 */

/** Reasons any backend's run can fail with (the reconciler's own). */
export const commonFailureReasons = [
  "Timeout",
  "InvalidSpec",
  "BackendUnavailable",
  "InternalError",
  "ResultTooLarge",
  "ResultInvalid",
  "EventRejected",
  "Forbidden"
] as const

/** A kube-bench node's failure (also `status.nodes[].reason`). */
export const kubeBenchNodeFailureReasons = [
  "BenchmarkUnsupported",
  "ImagePullFailed",
  "ContainerConfigError",
  "JobFailed",
  "JobCreateFailed",
  "JobWatchFailed",
  "LogReadFailed",
  "ReportParseError"
] as const

export const kubeBenchFailureReasons = [
  "NoNodesMatched",
  "NodeListFailed",
  "NodeScanFailed",
  ...kubeBenchNodeFailureReasons
] as const

export const celFailureReasons = [
  "CELCompileError",
  "CELCostExceeded",
  "CELTimeout",
  "UnknownProfile",
  "NoRules",
  "DuplicateRuleID",
  "KubernetesAPIError"
] as const

export const falcoFailureReasons = [
  "FalcoCredentialsInvalid",
  "FalcoTLSHandshakeFailed",
  "FalcoStreamFailed",
  "FalcoSpecInvalid"
] as const

export const failureReasons = [
  ...commonFailureReasons,
  ...kubeBenchFailureReasons,
  ...celFailureReasons,
  ...falcoFailureReasons
] as const

/** Why a run ended Failed. */
export const FailureReason = Schema.Literals(failureReasons)
export type FailureReason = typeof FailureReason.Type

export const KubeBenchNodeFailureReason = Schema.Literals(kubeBenchNodeFailureReasons)
export type KubeBenchNodeFailureReason = typeof KubeBenchNodeFailureReason.Type

/** The reason of a run that Succeeded. */
export const scanCompleted = "ScanCompleted"

export const runReasons = [scanCompleted, ...failureReasons] as const

/** `status.reason`: `ScanCompleted` or why the run failed. */
export const RunReason = Schema.Literals(runReasons)
export type RunReason = typeof RunReason.Type

export const isFailureReason = Schema.is(FailureReason)
