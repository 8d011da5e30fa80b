import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Check } from "../../../src/api/Check.ts"
import { countOutcomes } from "../../../src/api/Outcome.ts"
import { loadSeverityTable } from "../../../src/backends/kube-bench/KubeBenchSeverities.ts"
import { checksFromReports, compareTestNumbers, outcomeOf, reportCheckKeys } from "../../../src/backends/kube-bench/KubeBenchChecks.ts"
import { type KubeBenchReport, parseKubeBenchReport, reportChecks } from "../../../src/backends/kube-bench/KubeBenchReport.ts"

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "..", "..", "fixtures", "kube-bench", name), "utf8")
// Real kube-bench v0.15.6 outputs, kept with the demo that serves them as Pod logs.
const demoReport = (name: string) => readFileSync(join(import.meta.dirname, "..", "..", "..", "sim", "demo", "reports", name), "utf8")
const sample = fixture("sample-cis-1.10-v0.15.json")
const report = (text: string): KubeBenchReport => Result.getOrThrow(parseKubeBenchReport(text))
const severities = Effect.runSync(loadSeverityTable)

/** The sample with some statuses changed: another node's view of the same benchmark. */
const variant = (changes: Record<string, { status: string; scored?: boolean; actual_value?: string }>) => {
  const json = JSON.parse(sample)
  for (const controls of json.Controls) {
    for (const group of controls.tests) {
      for (const check of group.results) Object.assign(check, changes[check.test_number] ?? {})
    }
  }
  return report(JSON.stringify(json))
}

const byId = (checks: ReadonlyArray<Check>, id: string) => checks.find((check) => check.checkID === id)!

describe("checks from kube-bench reports", () => {
  it("maps statuses as backends.md suggests: WARN review, INFO skipped, unscored FAIL only a warning", () => {
    expect(outcomeOf("PASS", true)).toBe("pass")
    expect(outcomeOf("FAIL", true)).toBe("fail")
    expect(outcomeOf("FAIL", false)).toBe("warn")
    expect(outcomeOf("WARN", true)).toBe("warn")
    expect(outcomeOf("INFO", true)).toBe("skip")
  })

  it("one node: one check per CIS id, counts matching kube-bench's own totals", () => {
    const checks = checksFromReports([{ node: "cp-1", report: report(sample) }], severities)
    expect(checks.map((check) => check.checkID)).toEqual([
      "cis.1.1.1", "cis.1.1.12", "cis.1.2.1", "cis.1.2.15", "cis.1.2.19", "cis.4.1.1", "cis.4.2.1", "cis.4.2.10", "cis.4.3.1"
    ])
    // Totals of the sample: pass 3, fail 4, warn 1, info 1.
    expect(countOutcomes(checks.map((check) => check.outcome))).toEqual({ pass: 3, fail: 4, warn: 1, skip: 1, error: 0 })
    expect(byId(checks, "cis.1.2.15")).toEqual({
      checkID: "cis.1.2.15",
      title: "Ensure that the --profiling argument is set to false (Automated)",
      detail: "1.2 API Server (Control Plane Security Configuration)",
      remediation: "Set --profiling=false in the API server manifest.",
      outcome: "fail",
      severity: "low",
      scored: true,
      subjects: [{
        kind: "Node",
        name: "cp-1",
        outcome: "fail",
        expected: "'--profiling' is equal to 'false'",
        actual: expect.stringMatching(/^root 1893 .*kube-apiserver .*--tls-private-key-file=\/etc\/kubernetes\/pki\/apiserver.key$/)
      }],
      subjectCounts: { pass: 0, fail: 1, warn: 0, skip: 0, error: 0 }
    })
  })

  it("keeps kube-bench's reason as the subject's message and drops empty values", () => {
    const checks = checksFromReports([{ node: "w-1", report: report(sample) }], severities)
    expect(byId(checks, "cis.4.3.1").subjects).toEqual([{
      kind: "Node",
      name: "w-1",
      outcome: "fail",
      message: "failed to run: \"/bin/ps -fC kube-proxy\", output: \"UID PID PPID C STIME TTY TIME CMD\\n\", error: exit status 1"
    }])
    expect(byId(checks, "cis.1.2.19").subjects![0]).toEqual({
      kind: "Node",
      name: "w-1",
      outcome: "skip",
      message: "Test marked as skip"
    })
  })

  it("several nodes: per-node subjects and the worst outcome across them", () => {
    const checks = checksFromReports([
      { node: "a", report: report(sample) },
      { node: "b", report: variant({ "1.1.1": { status: "FAIL" }, "4.2.10": { status: "PASS" }, "1.2.19": { status: "PASS" } }) }
    ], severities)
    expect(byId(checks, "cis.1.1.1")).toMatchObject({
      outcome: "fail",
      subjects: [{ name: "a", outcome: "pass" }, { name: "b", outcome: "fail" }],
      subjectCounts: { pass: 1, fail: 1, warn: 0, skip: 0, error: 0 }
    })
    // A node that failed still makes the check fail when another passed.
    expect(byId(checks, "cis.4.2.10")).toMatchObject({ outcome: "fail", subjectCounts: { pass: 1, fail: 1 } })
    // A skip on one node does not hide what the other found.
    expect(byId(checks, "cis.1.2.19")).toMatchObject({ outcome: "pass", subjectCounts: { pass: 1, skip: 1 } })
  })

  it("an unscored FAIL is a warning, and severities come from the table", () => {
    const checks = checksFromReports([{ node: "a", report: variant({ "1.1.12": { status: "FAIL", scored: false } }) }], severities)
    expect(byId(checks, "cis.1.1.12")).toMatchObject({ outcome: "warn", scored: false, severity: "medium" })
    expect(byId(checks, "cis.1.2.1").severity).toBe("critical")
    expect(byId(checks, "cis.4.2.1").severity).toBe("critical")
  })

  it("trims long actual values, saying how much was cut", () => {
    const long = `  ${"x".repeat(5000)}\n`
    const checks = checksFromReports([{ node: "a", report: variant({ "1.1.1": { status: "PASS", actual_value: long } }) }], severities)
    const actual = byId(checks, "cis.1.1.1").subjects![0]!.actual!
    expect(actual).toMatch(/^x{1024}\.\.\. \(3976 more characters\)$/)
  })

  it("real kube-bench reports: the check counts are the report's own totals", () => {
    for (const [name, node] of [["cis-1.10-master.json", "cp-1"], ["cis-1.10-node.json", "w-1"]] as const) {
      const real = report(demoReport(name))
      const checks = checksFromReports([{ node, report: real }], severities)
      const counts = countOutcomes(checks.map((check) => check.outcome))
      expect([counts.pass, counts.fail, counts.warn, counts.skip], name).toEqual([
        real.totals!.total_pass, real.totals!.total_fail, real.totals!.total_warn, real.totals!.total_info
      ])
    }
  })

  it("a test number repeated in other sections keeps its section, and an ordinal within one section", () => {
    const json = JSON.parse(sample)
    const [first, second] = json.Controls[0].tests as Array<{ section: string; results: Array<Record<string, unknown>> }>
    // 1.1.1 again in section 1.2 (as eks-stig repeats V-ids) and twice in 1.2 (as rh-0.7 does).
    second!.results.push({ ...first!.results[0], status: "FAIL", scored: true }, { ...first!.results[0], status: "WARN" })
    const real = report(JSON.stringify(json))
    expect(reportCheckKeys(real).filter((key) => /^1\.1\.1(@|$)/u.test(key))).toEqual(["1.1.1@1.1", "1.1.1@1.2#1", "1.1.1@1.2#2"])
    const checks = checksFromReports([{ node: "a", report: real }], severities)
    expect(checks.filter((check) => check.checkID.startsWith("cis.1.1.1@")).map((check) => [check.checkID, check.outcome])).toEqual([
      ["cis.1.1.1@1.1", "pass"], ["cis.1.1.1@1.2#1", "fail"], ["cis.1.1.1@1.2#2", "warn"]
    ])
    expect(checks).toHaveLength([...reportChecks(real)].length)
  })

  it("orders ids numerically", () => {
    expect(["1.2.10", "4.1", "1.2.9", "1.10", "1.2", "2"].sort(compareTestNumbers)).toEqual([
      "1.2", "1.2.9", "1.2.10", "1.10", "2", "4.1"
    ])
  })
})
