import { Context, type Effect, Schema, type Scope } from "effect"
import type { Check } from "../api/Check.ts"
import type { ComplianceScanRun, ComplianceScanRunStatus, ScannerName } from "../api/ComplianceScanRun.ts"
import { FailureReason } from "../api/RunReason.ts"

/**
 * Why a scan could not produce a normal report: the one way a backend fails a run. `reason`
 * is the run's machine-readable status.reason (`CELCompileError`, `FalcoCredentialsInvalid`,
 * `ImagePullFailed`, ...).
 */
export class ScanFailed extends Schema.TaggedError<ScanFailed>()("ScanFailed", {
  reason: FailureReason,
  message: Schema.String
}) {
  /** A backend's own typed error (it names its reason code) as the run's failure. */
  static from(error: RunFailure): ScanFailed {
    return new ScanFailed({ reason: error.reason, message: error.message })
  }
}

/** Why a run ends Failed: its reason code and a sentence. */
export interface RunFailure {
  readonly reason: FailureReason
  readonly message: string
}

/**
 * The backend's own part of the run's status (kube-bench: `status.nodes`, one entry per
 * scanned node), copied into the Result as well. The reconciler writes it as it is, without
 * knowing what is in it.
 */
export type BackendStatus = Pick<ComplianceScanRunStatus, "nodes">

/** The backend's part of a status a previous pass wrote. */
export const backendStatusOf = (status: ComplianceScanRunStatus | undefined): BackendStatus | undefined =>
  status?.nodes === undefined ? undefined : { nodes: status.nodes }

export interface ScanReport {
  readonly checks: ReadonlyArray<Check>
  readonly backendStatus?: BackendStatus
  /**
   * The scan ran but the run must end Failed (one node failed, say); unlike ScanFailed the
   * checks found so far are kept in the Result.
   */
  readonly failure?: RunFailure
}

export interface ScanRequest {
  readonly run: ComplianceScanRun
  /** Epoch milliseconds of the run's deadline (startTime + timeout); the reconciler also enforces it. */
  readonly deadline: number
  /**
   * Best-effort progress while the scan runs: the backend says its part of the status
   * changed and hands `current`, which reads that part as it is now. The reconciler runs
   * `current` only when it writes (the first change at once, then at most once per
   * interval, see reconciler/CoalescedProgress.ts; the last state always), so a change
   * costs the backend only this call, and `current` must return a snapshot, not a view
   * that changes later.
   */
  readonly reportProgress: (current: Effect.Effect<BackendStatus>) => Effect.Effect<void>
}

/**
 * A backend. `scan` runs inside a Scope that closes when the scan ends, fails, times out or
 * is interrupted (lost leadership, shutdown): register cleanup (delete Jobs, close streams)
 * as finalizers. A scan must be safe to run again for the same run after a restart. A defect
 * (a bug) needs no handling here: the reconciler ends the run Failed/InternalError.
 */
export interface Scanner {
  readonly name: ScannerName
  readonly scan: (request: ScanRequest) => Effect.Effect<ScanReport, ScanFailed, Scope.Scope>
}

/** The scanners the operator was started with, by backend name: the registry (ScannersLayer). */
export class Scanners extends Context.Service<Scanners, ReadonlyMap<ScannerName, Scanner>>()(
  "compliance-scan/backends/Scanners"
) {}

export const scannersOf = (list: ReadonlyArray<Scanner>): ReadonlyMap<ScannerName, Scanner> =>
  new Map(list.map((scanner) => [scanner.name, scanner]))
