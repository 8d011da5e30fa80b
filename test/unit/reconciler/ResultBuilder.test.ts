import { describe, expect, it } from "@effect/vitest"
import type { Check } from "../../../src/api/Check.ts"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { buildResult } from "../../../src/reconciler/ResultBuilder.ts"

const run: ComplianceScanRun = {
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "big", namespace: "scans", uid: "0b6f8e52-4f6e-4a57-9d55-3c2a8f1e0f11" },
  spec: { backend: "cel" }
}

const manySubjects = (checkID: string, count: number): Check => ({
  checkID,
  title: checkID,
  outcome: "fail",
  severity: "high",
  subjects: Array.from({ length: count }, (_, i) => ({
    kind: "Pod",
    name: `pod-with-a-rather-long-generated-name-${i}`,
    namespace: "team-with-many-pods",
    outcome: "fail" as const,
    message: `pod-with-a-rather-long-generated-name-${i} runs as root and mounts the host file system`
  })),
  subjectCounts: { pass: 0, fail: count, warn: 0, skip: 0, error: 0 }
})

describe("Result building", () => {
  it("past the byte budget, subjects are cut, counts are kept, and the Result says so", () => {
    const checks = [manySubjects("huge", 20_000), manySubjects("small", 2)]
    const { result } = buildResult(run, checks, undefined, "2026-11-29T00:00:00Z", 200_000)
    expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThanOrEqual(200_000)
    const huge = result.spec.checks.find((check) => check.checkID === "huge")!
    expect(huge.subjects!.length).toBeLessThan(20_000)
    expect(huge.subjectCounts).toEqual({ pass: 0, fail: 20_000, warn: 0, skip: 0, error: 0 })
    expect(result.status?.truncated).toBe(true)
    expect(result.status?.conditions?.[0]).toMatchObject({ type: "Truncated", status: "True" })
  })

  it("mappings to thousands of framework controls are budgeted too: the whole Result fits and says what was cut", () => {
    const checks = Array.from({ length: 50 }, (_, i): Check => ({
      checkID: `rule-${i}`,
      title: `Rule ${i}`,
      detail: "d".repeat(200),
      outcome: i % 2 === 0 ? "fail" : "pass",
      severity: i === 7 ? "medium" : "critical"
    }))
    const mapped: ComplianceScanRun = {
      ...run,
      spec: {
        backend: "cel",
        controlMappings: checks.map((check) => ({
          checkID: check.checkID,
          frameworks: Array.from({ length: 300 }, (_, j) => ({ name: "custom" as const, controlID: `${check.checkID}-control-${j}` }))
        }))
      }
    }
    const budget = 100_000
    const { result, summary, worstSeverity } = buildResult(mapped, checks, undefined, "2026-11-29T00:00:00Z", budget)
    expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThanOrEqual(budget)
    // The summary and worst severity still count every check.
    expect(summary).toEqual({ pass: 25, fail: 25, warn: 0, skip: 0, error: 0 })
    expect(worstSeverity).toBe("critical")
    expect(result.spec.summary).toEqual(summary)
    const custom = result.spec.frameworks?.find((report) => report.name === "custom")
    expect(custom).toMatchObject({ passed: 25 * 300, failed: 25 * 300 })
    expect(result.status?.truncated).toBe(true)
    const condition = result.status?.conditions?.find((entry) => entry.type === "Truncated")
    expect(condition?.status).toBe("True")
    expect(condition?.message).toMatch(/framework/u)
    // Failures are kept before passes.
    expect(result.spec.checks.filter((check) => check.outcome === "fail")).toHaveLength(25)
  })

  it("when even the checks alone are too many, the most important ones are kept", () => {
    const checks = Array.from({ length: 5_000 }, (_, i): Check => ({
      checkID: `check-${i}`,
      title: `A check with a title long enough to matter ${i}`,
      outcome: i === 4_321 ? "fail" : "pass",
      severity: "high"
    }))
    const { result, summary } = buildResult(run, checks, undefined, "2026-11-29T00:00:00Z", 50_000)
    expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThanOrEqual(50_000)
    expect(result.spec.checks[0]!.checkID).toBe("check-4321")
    expect(result.spec.checks.length).toBeLessThan(5_000)
    expect(summary.pass).toBe(4_999)
    expect(result.status?.conditions?.[0]?.message).toMatch(/most important/u)
  })

  it("under the budget nothing is cut and truncated is false", () => {
    const { result } = buildResult(run, [manySubjects("few", 10)], undefined, "2026-11-29T00:00:00Z")
    expect(result.spec.checks[0]!.subjects).toHaveLength(10)
    expect(result.status).toMatchObject({ truncated: false, worstSeverity: "high" })
  })

  it("a Failed run's Result keeps what was found and adds an error check naming the failure", () => {
    const { result, summary, worstSeverity } = buildResult(
      run,
      [manySubjects("found", 1)],
      { reason: "NodeScanFailed", message: "node worker-2: JobFailed (exit code 1)" },
      "2026-11-29T00:00:00Z"
    )
    expect(result.spec.checks.map((check) => [check.checkID, check.outcome])).toEqual([
      ["found", "fail"],
      ["scan.NodeScanFailed", "error"]
    ])
    expect(summary).toEqual({ pass: 0, fail: 1, warn: 0, skip: 0, error: 1 })
    expect(worstSeverity).toBe("high")
  })
})
