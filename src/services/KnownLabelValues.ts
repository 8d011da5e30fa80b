import { backendNames, type ScannerName, scannerNameOf } from "../api/ComplianceScanRun.ts"
import {
  celFailureReasons,
  commonFailureReasons,
  type FailureReason,
  falcoFailureReasons,
  kubeBenchFailureReasons
} from "../api/RunReason.ts"

/**
 * The label values the operator's labelled metrics can take that are known before any run
 * happens. Metrics creates a series at 0 for each at start-up: a series that appears at 1
 * with its first event is invisible to `increase()`, so an alert would miss that event.
 */
export const scannerNames: ReadonlyArray<ScannerName> = [...new Set(backendNames.map(scannerNameOf))]

export const runOutcomes = ["Succeeded", "Failed"] as const

/**
 * The status.reason codes of a Failed run, by backend (src/api/RunReason.ts): the
 * "Troubleshooting" table of docs/operations.md (a test keeps the two in step).
 */
export const failureReasons: Readonly<Record<ScannerName | "any", ReadonlyArray<FailureReason>>> = {
  any: commonFailureReasons,
  "kube-bench": kubeBenchFailureReasons,
  cel: celFailureReasons,
  falco: falcoFailureReasons
}

/** The reasons a run of `backend` can end Failed with. */
export const failureReasonsOf = (backend: ScannerName): ReadonlyArray<FailureReason> => [...failureReasons.any, ...failureReasons[backend]]

/**
 * Benchmarks known without a run: the built-in CEL profiles and the `falco` default (a run
 * without benchmark or profile counts its findings under its backend's name). kube-bench
 * benchmarks are open-ended; the alert rules also count a series born with its first event.
 */
export const knownBenchmarks: ReadonlyArray<string> = ["pod-security-baseline", "pod-security-restricted", ...scannerNames]

/** `state` of ugallu_compliance_scan_exceptions (ComplianceExceptions by state; not exclusive). */
export const exceptionStates = ["active", "expiring", "expired", "unused"] as const
