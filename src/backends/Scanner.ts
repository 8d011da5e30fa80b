import { Context, type Effect, Schema, type Scope } from "effect"
import type { Check } from "../api/Check.ts"
import type { ComplianceScanRun, NodeScanStatus, ScannerName } from "../api/ComplianceScanRun.ts"
import { FailureReason } from "../api/RunReason.ts"

/**
 * Why a scan could not produce a normal report. `reason` is the run's machine-readable
 * status.reason (`CELCompileError`, `FalcoCredentialsInvalid`, `ImagePullFailed`, ...).
 */
export class ScanFailed extends Schema.TaggedError<ScanFailed>()("ScanFailed", {
  reason: FailureReason,
  message: Schema.String
}) {}

export interface ScanReport {
  readonly checks: ReadonlyArray<Check>
  /** kube-bench: per-node status for `status.nodes`. */
  readonly nodes?: ReadonlyArray<NodeScanStatus>
  /**
   * The scan ran but the run must end Failed (one node failed, say); unlike ScanFailed the
   * checks found so far are kept in the Result.
   */
  readonly failure?: { readonly reason: FailureReason; readonly message: string }
}

export interface ScanRequest {
  readonly run: ComplianceScanRun
  /** Epoch milliseconds of the run's deadline (startTime + timeout); the reconciler also enforces it. */
  readonly deadline: number
  /** Best-effort progress for `status.nodes` while the scan runs. */
  readonly reportNodes: (nodes: ReadonlyArray<NodeScanStatus>) => Effect.Effect<void>
}

/**
 * A backend. `scan` runs inside a Scope that closes when the scan ends, fails, times out or
 * is interrupted (lost leadership, shutdown): register cleanup (delete Jobs, close streams)
 * as finalizers. A scan must be safe to run again for the same run after a restart.
 */
export interface Scanner {
  readonly name: ScannerName
  readonly scan: (request: ScanRequest) => Effect.Effect<ScanReport, ScanFailed, Scope.Scope>
}

/** The scanners the operator was started with, by backend name. */
export class Scanners extends Context.Service<Scanners, ReadonlyMap<ScannerName, Scanner>>()(
  "compliance-scan/backends/Scanners"
) {}

export const scannersOf = (list: ReadonlyArray<Scanner>): ReadonlyMap<ScannerName, Scanner> =>
  new Map(list.map((scanner) => [scanner.name, scanner]))
