import type { ComplianceScanResult } from "../api/ComplianceScanResult.ts"
import type { FrameworkScore } from "../api/ComplianceScanSchedule.ts"

/** The framework name of the score over every check of a Result. */
export const allChecks = "all"

const ratio = (passed: number, failed: number) => (passed + failed === 0 ? 1 : passed / (passed + failed))

/**
 * Scores of a Result (docs/api.md, "Freshness and score"): `all` is pass / (pass + fail) over
 * its checks (warn, skip and error left out); each framework is passed / (passed + failed)
 * over its controls, as its report counts them. Nothing to judge scores 1.
 */
export const scoresOf = (result: Pick<ComplianceScanResult, "spec">): ReadonlyArray<FrameworkScore> => [
  {
    framework: allChecks,
    passed: result.spec.summary.pass,
    failed: result.spec.summary.fail,
    score: ratio(result.spec.summary.pass, result.spec.summary.fail)
  },
  ...(result.spec.frameworks ?? []).map((report) => ({
    framework: report.name,
    passed: report.passed,
    failed: report.failed,
    score: ratio(report.passed, report.failed)
  }))
]
