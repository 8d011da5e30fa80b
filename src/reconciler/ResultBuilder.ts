import type { Check } from "../api/Check.ts"
import type { ComplianceScanResult, ComplianceScanResultStatus } from "../api/ComplianceScanResult.ts"
import { kind as resultKind } from "../api/ComplianceScanResult.ts"
import { type ComplianceScanRun, kind as runKind, type NodeScanStatus } from "../api/ComplianceScanRun.ts"
import { apiVersion } from "../api/ObjectMeta.ts"
import { countOutcomes, type OutcomeCounts } from "../api/Outcome.ts"
import { highestSeverity, type Severity } from "../api/Severity.ts"
import { decorateChecks, frameworkReports } from "./ControlMappings.ts"

/**
 * etcd refuses objects over 1.5 MiB; stay well under it. Past this many bytes of JSON the
 * subjects of the largest checks are cut (their counts stay) and the Result says so.
 */
export const resultByteBudget = 1024 * 1024

/** Why a run failed, as it appears in status.reason/message and in the Result. */
export interface RunFailure {
  readonly reason: string
  readonly message: string
}

/** The check a Failed run's Result carries so that dashboards see the gap. */
export const failureCheck = (failure: RunFailure): Check => ({
  checkID: `scan.${failure.reason}`,
  title: `The scan did not complete: ${failure.reason}`,
  detail: failure.message.replace(/\s+/gu, " ").trim(),
  outcome: "error",
  severity: "high"
})

/** Only `fail` counts: `warn` is "review by hand" and says nothing was found. */
export const worstSeverityOf = (checks: ReadonlyArray<Check>): Severity | undefined =>
  highestSeverity(checks.filter((check) => check.outcome === "fail").map((check) => check.severity))

export const summaryOf = (checks: ReadonlyArray<Check>): OutcomeCounts =>
  countOutcomes(checks.map((check) => check.outcome))

const byteLength = (value: unknown) => Buffer.byteLength(JSON.stringify(value))

/** Cuts subjects, largest lists first, until the checks fit the budget. */
const fitToBudget = (checks: ReadonlyArray<Check>, budget: number): { checks: ReadonlyArray<Check>; truncated: boolean } => {
  if (byteLength(checks) <= budget) return { checks, truncated: false }
  const result = checks.map((check) => ({ ...check }))
  const order = result
    .map((check, index) => ({ index, size: byteLength(check.subjects ?? []) }))
    .sort((a, b) => b.size - a.size)
  let total = byteLength(result)
  for (const { index } of order) {
    if (total <= budget) break
    const check = result[index]!
    const subjects = check.subjects ?? []
    if (subjects.length === 0) continue
    const before = byteLength(check)
    // Keep a small sample so the Result still shows who is affected.
    result[index] = {
      ...check,
      subjects: subjects.slice(0, 3),
      subjectCounts: check.subjectCounts ?? countOutcomes(subjects.map((subject) => subject.outcome))
    }
    total -= before - byteLength(result[index])
  }
  // Still too big (thousands of checks): drop the remaining subjects altogether.
  if (total > budget) {
    for (const [index, check] of result.entries()) {
      if (check.subjects === undefined) continue
      result[index] = {
        ...check,
        subjects: [],
        subjectCounts: check.subjectCounts ?? countOutcomes(check.subjects.map((subject) => subject.outcome))
      }
    }
  }
  return { checks: result, truncated: true }
}

export interface BuiltResult {
  readonly result: ComplianceScanResult
  readonly summary: OutcomeCounts
  readonly worstSeverity: Severity | undefined
}

/** The Result of a run: same name and namespace, owned by the run, status carrying worstSeverity. */
export const buildResult = (
  run: ComplianceScanRun,
  scannedChecks: ReadonlyArray<Check>,
  failure: RunFailure | undefined,
  now: string,
  budget = resultByteBudget,
  nodes?: ReadonlyArray<NodeScanStatus>
): BuiltResult => {
  const decorated = decorateChecks(
    failure === undefined ? scannedChecks : [...scannedChecks, failureCheck(failure)],
    run.spec.controlMappings
  )
  const { checks, truncated } = fitToBudget(decorated, budget)
  const summary = summaryOf(checks)
  const worstSeverity = worstSeverityOf(checks)
  const frameworks = frameworkReports(checks)
  const status: ComplianceScanResultStatus = {
    ...(worstSeverity === undefined ? {} : { worstSeverity }),
    truncated,
    conditions: truncated
      ? [{
        type: "Truncated",
        status: "True",
        reason: "ByteBudgetExceeded",
        message: `Subjects were cut to keep the Result under ${budget} bytes; subjectCounts keep the full counts.`,
        lastTransitionTime: now
      }]
      : []
  }
  const result: ComplianceScanResult = {
    apiVersion,
    kind: resultKind,
    metadata: {
      name: run.metadata.name,
      namespace: run.metadata.namespace!,
      labels: {
        "app.kubernetes.io/managed-by": "compliance-scan",
        "security.ugallu.io/run-uid": run.metadata.uid!
      },
      ownerReferences: [{
        apiVersion,
        kind: runKind,
        name: run.metadata.name,
        uid: run.metadata.uid!,
        controller: true,
        blockOwnerDeletion: false
      }]
    },
    spec: {
      derivedFromRun: { name: run.metadata.name, uid: run.metadata.uid! },
      backend: run.spec.backend,
      ...(run.spec.benchmark === undefined ? {} : { benchmark: run.spec.benchmark }),
      ...(run.spec.profile === undefined ? {} : { profile: run.spec.profile }),
      checks,
      summary,
      ...(frameworks.length === 0 ? {} : { frameworks }),
      ...(nodes === undefined ? {} : { nodes })
    },
    status
  }
  return { result, summary, worstSeverity }
}
