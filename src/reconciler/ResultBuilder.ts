import type { Check } from "../api/Check.ts"
import type { ComplianceScanResult, ComplianceScanResultStatus, FrameworkReport } from "../api/ComplianceScanResult.ts"
import { kind as resultKind } from "../api/ComplianceScanResult.ts"
import { type ComplianceScanRun, kind as runKind, scannerNameOf } from "../api/ComplianceScanRun.ts"
import { apiVersion } from "../api/ObjectMeta.ts"
import { BaselineLabel, ScheduleLabel } from "../api/SeriesLabels.ts"
import { countOutcomes, type OutcomeCounts } from "../api/Outcome.ts"
import { highestSeverity, type Severity, severityRank } from "../api/Severity.ts"
import type { BackendStatus, RunFailure } from "../backends/Scanner.ts"
import { applyExceptions, countsTowardAlerts, isExcepted } from "../exceptions/ExceptionApplication.ts"
import type { ExceptionsInput } from "../exceptions/ExceptionsInput.ts"
import { decorateChecks, frameworkReports } from "./ControlMappings.ts"

/** etcd refuses objects over 1.5 MiB; a whole Result (JSON) stays well under it. */
export const resultByteBudget = 1024 * 1024

/** The check a Failed run's Result carries so that dashboards see the gap. */
export const failureCheck = (failure: RunFailure): Check => ({
  checkID: `scan.${failure.reason}`,
  title: `The scan did not complete: ${failure.reason}`,
  detail: failure.message.replace(/\s+/gu, " ").trim(),
  outcome: "error",
  severity: "high"
})

/**
 * Only `fail` counts: `warn` is "review by hand" and says nothing was found. A failure
 * whose every finding is under an `alertOnly` exception does not count either.
 */
export const worstSeverityOf = (checks: ReadonlyArray<Check>): Severity | undefined =>
  highestSeverity(checks.filter(countsTowardAlerts).map((check) => check.severity))

/** Counts by outcome, and `excepted` (checks carrying an exception) when there are any. */
export const summaryOf = (checks: ReadonlyArray<Check>): OutcomeCounts => {
  const excepted = checks.filter(isExcepted).length
  return { ...countOutcomes(checks.map((check) => check.outcome)), ...(excepted === 0 ? {} : { excepted }) }
}

/** The schedule and baseline labels of the run, copied so that a series' Results can be listed too. */
const seriesLabels = (run: ComplianceScanRun): Record<string, string> =>
  Object.fromEntries([ScheduleLabel, BaselineLabel].flatMap((label) => {
    const value = run.metadata.labels?.[label]
    return value === undefined ? [] : [[label, value]]
  }))

const byteLength = (value: unknown) => Buffer.byteLength(JSON.stringify(value))

/** What a Result carries that can be cut, and what was cut so far. */
interface Content {
  readonly checks: ReadonlyArray<Check>
  readonly frameworks: ReadonlyArray<FrameworkReport>
  readonly cuts: ReadonlyArray<string>
}

const withCounts = (check: Check, subjects: Check["subjects"]): Check => ({
  ...check,
  subjects,
  subjectCounts: check.subjectCounts ?? countOutcomes((check.subjects ?? []).map((subject) => subject.outcome))
})

/** Checks first that say most: failures by severity, then errors, reviews, passes, skips. */
const outcomeRank: Record<Check["outcome"], number> = { fail: 0, error: 1, warn: 2, pass: 3, skip: 4 }
const importance = (a: Check, b: Check) =>
  outcomeRank[a.outcome] - outcomeRank[b.outcome] || severityRank(b.severity) - severityRank(a.severity)

/**
 * Ways to shrink a Result, mildest first. Each returns the content it leaves (or undefined
 * when it has nothing to cut); `fits` says whether a candidate is small enough.
 */
const reductions: ReadonlyArray<(content: Content, fits: (content: Content) => boolean) => Content | undefined> = [
  // 1. Cut the longest subject lists to a sample of 3, largest first, until it fits.
  (content, fits) => {
    const checks = [...content.checks]
    const order = checks
      .map((check, index) => ({ index, size: byteLength(check.subjects ?? []) }))
      .filter(({ index }) => (checks[index]!.subjects?.length ?? 0) > 3)
      .sort((a, b) => b.size - a.size)
    if (order.length === 0) return undefined
    let current: Content = content
    for (const { index } of order) {
      checks[index] = withCounts(checks[index]!, checks[index]!.subjects!.slice(0, 3))
      current = { ...content, checks: [...checks], cuts: [...content.cuts, "subjects cut to a sample of 3"] }
      if (fits(current)) break
    }
    return current
  },
  // 2. No subjects at all (their counts stay).
  (content) =>
    content.checks.some((check) => (check.subjects?.length ?? 0) > 0)
      ? { ...content, checks: content.checks.map((check) => withCounts(check, [])), cuts: [...content.cuts, "all subjects removed"] }
      : undefined,
  // 3. Frameworks on each check (the framework reports still list each control's checks).
  (content) =>
    content.checks.some((check) => check.frameworks !== undefined)
      ? {
        ...content,
        checks: content.checks.map(({ frameworks: _, ...check }) => check),
        cuts: [...content.cuts, "per-check framework references removed"]
      }
      : undefined,
  // 4. Framework reports keep their counts and only the controls that did not pass.
  (content) =>
    content.frameworks.some((report) => report.controls.some((control) => control.outcome === "pass"))
      ? {
        ...content,
        frameworks: content.frameworks.map((report) => ({
          ...report,
          controls: report.controls.filter((control) => control.outcome !== "pass")
        })),
        cuts: [...content.cuts, "passed framework controls removed (counts kept)"]
      }
      : undefined,
  // 5. Framework reports keep only their counts.
  (content) =>
    content.frameworks.some((report) => report.controls.length > 0)
      ? {
        ...content,
        frameworks: content.frameworks.map((report) => ({ ...report, controls: [] })),
        cuts: [...content.cuts, "framework controls removed (counts kept)"]
      }
      : undefined,
  // 6. Texts of checks.
  (content) =>
    content.checks.some((check) => check.detail !== undefined || check.remediation !== undefined)
      ? {
        ...content,
        checks: content.checks.map(({ detail: _d, remediation: _r, ...check }) => check),
        cuts: [...content.cuts, "check details and remediations removed"]
      }
      : undefined,
  // 7. The least telling checks, until it fits (the summary still counts every check).
  (content, fits) => {
    const ranked = [...content.checks].sort(importance)
    let low = 0
    let high = ranked.length
    while (low < high) {
      const middle = Math.ceil((low + high) / 2)
      if (fits({ ...content, checks: ranked.slice(0, middle) })) low = middle
      else high = middle - 1
    }
    return { ...content, checks: ranked.slice(0, low), cuts: [...content.cuts, `only the ${low} most important of ${ranked.length} checks kept`] }
  }
]

export interface BuiltResult {
  readonly result: ComplianceScanResult
  readonly summary: OutcomeCounts
  readonly worstSeverity: Severity | undefined
  /** Every check with exceptions applied, before any cut for size. */
  readonly checks: ReadonlyArray<Check>
}

/**
 * The Result of a run: same name and namespace, owned by the run, status carrying
 * worstSeverity. The whole object (checks, frameworks, metadata, status) stays within
 * `budget` bytes of JSON: past it, content is cut step by step (see `reductions`), the
 * summary and worstSeverity still count every check, and a `Truncated` condition says what
 * was cut. Nothing is cut silently.
 */
export const buildResult = (
  run: ComplianceScanRun,
  scannedChecks: ReadonlyArray<Check>,
  failure: RunFailure | undefined,
  now: string,
  budget = resultByteBudget,
  backendStatus?: BackendStatus,
  exceptions?: ExceptionsInput
): BuiltResult => {
  const { checks: decorated, records } = applyExceptions(
    decorateChecks(
      failure === undefined ? scannedChecks : [...scannedChecks, failureCheck(failure)],
      run.spec.controlMappings
    ),
    exceptions?.exceptions ?? [],
    {
      operatorNamespace: exceptions?.operatorNamespace ?? "",
      backend: scannerNameOf(run.spec.backend),
      now: Date.parse(now),
      maxDurationMillis: exceptions?.maxDurationMillis ?? 0,
      ...(exceptions?.labelsOf === undefined ? {} : { labelsOf: exceptions.labelsOf })
    }
  )
  const summary = summaryOf(decorated)
  const worstSeverity = worstSeverityOf(decorated)

  const assemble = (content: Content): ComplianceScanResult => {
    const truncated = content.cuts.length > 0
    const status: ComplianceScanResultStatus = {
      ...(worstSeverity === undefined ? {} : { worstSeverity }),
      truncated,
      conditions: truncated
        ? [{
          type: "Truncated",
          status: "True",
          reason: "ByteBudgetExceeded",
          message: `Cut to stay under ${budget} bytes: ${[...new Set(content.cuts)].join("; ")}. summary counts every check.`,
          lastTransitionTime: now
        }]
        : []
    }
    return {
      apiVersion,
      kind: resultKind,
      metadata: {
        name: run.metadata.name,
        namespace: run.metadata.namespace!,
        labels: {
          "app.kubernetes.io/managed-by": "compliance-scan",
          "security.ugallu.io/run-uid": run.metadata.uid!,
          ...seriesLabels(run)
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
        checks: content.checks,
        summary,
        ...(content.frameworks.length === 0 ? {} : { frameworks: content.frameworks }),
        ...backendStatus,
        ...(records.length === 0 ? {} : { exceptions: records })
      },
      status
    }
  }
  // Measured with the longest condition message it could carry, so the final object fits too.
  const fits = (content: Content) =>
    byteLength(assemble({ ...content, cuts: reductions.map((_, index) => `${"x".repeat(60)}${index}`) })) <= budget

  let content: Content = { checks: decorated, frameworks: frameworkReports(decorated), cuts: [] }
  if (byteLength(assemble(content)) > budget) {
    for (const reduce of reductions) {
      content = reduce(content, fits) ?? content
      if (fits(content)) break
    }
  }
  return { result: assemble(content), summary, worstSeverity, checks: decorated }
}
