import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import {
  type KubeBenchReport,
  parseKubeBenchReport,
  parseLimits,
  reportChecks
} from "../../../src/backends/kube-bench/KubeBenchReport.ts"

const fixtures = join(import.meta.dirname, "..", "..", "fixtures", "kube-bench")
const fixture = (name: string) => readFileSync(join(fixtures, name), "utf8")
// Real kube-bench v0.15.6 outputs, kept with the demo that serves them as Pod logs.
const demoReport = (name: string) => readFileSync(join(import.meta.dirname, "..", "..", "..", "sim", "demo", "reports", name), "utf8")
const current = fixture("sample-cis-1.10-v0.15.json")
const old = fixture("upstream-cmd-testdata-result.json")
/** Real kube-bench output is one compact line. */
const oneLine = (pretty: string) => JSON.stringify(JSON.parse(pretty))

const parsed = (text: string): KubeBenchReport => {
  const result = parseKubeBenchReport(text)
  if (Result.isFailure(result)) throw new Error(`expected a report, got: ${result.failure.message}`)
  return result.success
}

const problem = (text: string): string => {
  const result = parseKubeBenchReport(text)
  if (Result.isSuccess(result)) throw new Error("expected a ReportParseError, got a report")
  expect(result.failure._tag).toBe("ReportParseError")
  return result.failure.message
}

const statuses = (report: KubeBenchReport) => [...reportChecks(report)].map(({ check }) => `${check.test_number}=${check.status}`)

describe("parseKubeBenchReport on kube-bench's outputs", () => {
  it("reads the current key set (cis-1.10, kube-bench 0.15) with every status path", () => {
    const report = parsed(current)
    expect(report.controls.map((controls) => [controls.id, controls.version, controls.node_type])).toEqual([
      ["1", "cis-1.10", "master"],
      ["4", "cis-1.10", "node"]
    ])
    expect(report.totals).toEqual({ total_pass: 3, total_fail: 4, total_warn: 1, total_info: 1 })
    expect(statuses(report)).toEqual([
      "1.1.1=PASS", "1.1.12=FAIL", "1.2.1=WARN", "1.2.15=FAIL", "1.2.19=INFO", "4.1.1=PASS", "4.2.1=PASS", "4.2.10=FAIL",
      "4.3.1=FAIL"
    ])
    const kubeProxy = [...reportChecks(report)].find(({ check }) => check.test_number === "4.3.1")!.check
    expect(kubeProxy.reason).toContain("failed to run")
    expect(kubeProxy.AuditConfig).toBe("")
  })

  it("reads the old key set (kube-bench's own test data: no AuditEnv, IsMultiple, group type)", () => {
    const report = parsed(old)
    expect(report.controls.map((controls) => controls.version)).toEqual(["1.5", "1.15", "1.5"])
    expect(statuses(report)).toEqual(["1.1.1=PASS", "2.1=PASS", "3.1.1=WARN"])
    // Its totals do not add up to its three results; they are kube-bench's and kept as is.
    expect(report.totals).toEqual({ total_pass: 49, total_fail: 12, total_warn: 14, total_info: 0 })
  })

  it("finds the one-line report among glog lines on stderr (pods/log mixes both streams)", () => {
    const log = [
      "I0101 09:12:01.000000       1 util.go:293] Kubernetes REST API Reported version: 1.28.4",
      "W0101 09:12:01.100000       1 util.go:100] [{\"not\": \"the report\"}]",
      oneLine(current),
      "I0101 09:12:02.000000       1 run.go:60] done",
      ""
    ].join("\n")
    expect(parsed(log).totals?.total_fail).toBe(4)
  })

  it("finds a report that starts mid-line, after stderr noise without a newline (rh-* benchmarks: `oc: not found`)", () => {
    const log = `W1205 22:40:01.000000 1 util.go:1] error\n/bin/sh: 1: oc: not found${oneLine(current)}\n`
    expect(parsed(log).totals?.total_fail).toBe(4)
    expect(parsed(`noise { "Controls" : []}`).controls).toEqual([])
  })

  it("reads `kubectl logs --timestamps` output when the report is on one line", () => {
    const log = `2026-12-05T22:40:01.123456789Z I1205 glog line\n2026-12-05T22:40:02.000000000Z ${oneLine(current)}\n`
    expect(parsed(log).totals?.total_pass).toBe(3)
  })

  it("reads the bare array of --nototals, CRLF line ends and a BOM", () => {
    const bare = JSON.stringify(JSON.parse(current).Controls)
    expect(parsed(bare).totals).toBeUndefined()
    expect(statuses(parsed(bare))).toHaveLength(9)
    expect(parsed(`\uFEFFnoise\r\n${oneLine(old)}\r\n`).controls).toHaveLength(3)
  })

  it("skips a later JSON line that is not the report", () => {
    const log = `${oneLine(current)}\n{"level":"info","msg":"kube-bench finished"}\n`
    expect(parsed(log).controls).toHaveLength(2)
  })

  it("ignores unknown keys and accepts Go's null slices", () => {
    const report = JSON.parse(current)
    report.FutureField = { x: 1 }
    report.Controls[0].tests[0].results[0].new_key = "new"
    report.Controls[1].tests = null
    const decoded = parsed(JSON.stringify(report))
    expect(decoded.controls[1]!.tests).toBeNull()
    expect(statuses(decoded)).toHaveLength(5)
    expect(parsed(JSON.stringify({ Controls: null })).controls).toEqual([])
  })

  // Saved from the real kube-bench v0.15.6 binary (`kube-bench run --benchmark cis-1.10 --json`).
  for (const name of ["cis-1.10-master.json", "cis-1.10-node.json"]) {
    it(`reads ${name}, produced by the real kube-bench binary, and its totals match its results`, () => {
      const report = parsed(demoReport(name))
      const counts = { PASS: 0, FAIL: 0, WARN: 0, INFO: 0 }
      for (const { check } of reportChecks(report)) counts[check.status]++
      expect(report.totals).toEqual({
        total_pass: counts.PASS,
        total_fail: counts.FAIL,
        total_warn: counts.WARN,
        total_info: counts.INFO
      })
    })
  }
})

describe("parseKubeBenchReport on hostile input: a ReportParseError that says what is wrong", () => {
  it("empty or blank output", () => {
    expect(problem("")).toMatch(/empty/)
    expect(problem(" \n\n\t\n")).toMatch(/empty/)
  })

  it("a log without any JSON line quotes its beginning", () => {
    expect(problem("standard_init_linux.go:228: exec user process caused: exec format error\n")).toMatch(
      /no JSON report found.*begins "standard_init_linux/
    )
  })

  it("kube-bench's text output (no --json) is named as such, with what to run instead", () => {
    const text = [
      "[INFO] 1 Control Plane Security Configuration",
      "[INFO] 1.1 Control Plane Node Configuration Files",
      "[PASS] 1.1.1 Ensure that the API server pod specification file permissions are set to 600 or more restrictive (Automated)",
      "[FAIL] 1.1.2 Ensure that the API server pod specification file ownership is set to root:root (Automated)",
      "",
      "== Summary master ==",
      "1 checks PASS"
    ].join("\n")
    expect(problem(text)).toMatch(/^no JSON report found: this is kube-bench's text output .*run `kube-bench run --json`.*begins "\[INFO\] 1 Control/)
  })

  it("`kubectl logs --timestamps` of a pretty-printed report says the timestamps are in the way", () => {
    const stamped = JSON.stringify(JSON.parse(current), null, 2).split("\n").map((line) => `2026-12-05T22:40:02.000000000Z ${line}`).join("\n")
    expect(problem(stamped)).toMatch(/^no JSON report found: every line starts with a timestamp \(`kubectl logs --timestamps` output\).*without --timestamps/)
  })

  it("a truncated report names the line and says where it ends", () => {
    const log = `I0101 glog line\n${oneLine(current).slice(0, 2500)}`
    expect(problem(log)).toMatch(/^line 2: the JSON is truncated: the output ends 2500 characters into it/)
    expect(problem(oneLine(current).slice(0, 2)), "cut after the first key").toMatch(/truncated.*inside a string/)
    expect(problem("{\"Controls\": [")).toMatch(/2 brackets still open/)
  })

  it("binary garbage", () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919) % 256))
    const message = problem(bytes.toString("latin1"))
    expect(message).toMatch(/^line \d+: (invalid JSON|the JSON is truncated)|^no JSON report found/)
    expect(message.length).toBeLessThan(400)
    expect(message).not.toMatch(/[\u0000-\u0008]/)
  })

  it("JSON that is not a report names the offending field", () => {
    expect(problem("{\"foo\": 1}")).toMatch(/line 1: not a kube-bench report.*Missing key.*Controls/)
    const report = JSON.parse(current)
    report.Controls[0].tests[1].results[0].status = "MAYBE"
    expect(problem(JSON.stringify(report))).toMatch(
      /not a kube-bench report.*Expected "PASS" \| "FAIL" \| "WARN" \| "INFO".*\["Controls"\]\[0\]\["tests"\]\[1\]\["results"\]\[0\]\["status"\]/
    )
    expect(problem("{\"Controls\": [}")).toMatch(/line 1: invalid JSON/)
  })

  it("deep nesting is refused before JSON.parse sees it", () => {
    expect(problem("[".repeat(200_000) + "]".repeat(200_000))).toMatch(/nested more than 64 levels/)
    expect(problem("{\"a\":".repeat(100_000))).toMatch(/nested more than 64 levels/)
  })

  // No stopwatch (figures come from bench/): a scan that is not linear takes many minutes
  // on these inputs, so the test's timeout is what catches it.
  it("50 MB of input in bounded time, whatever its shape", { timeout: 120_000 }, () => {
    const huge = "x".repeat(50 * 1024 * 1024)
    expect(problem(huge)).toMatch(/no JSON report found/)
    expect(problem(`{"Controls":[{"id":"${huge}`)).toMatch(
      new RegExp(`larger than the ${parseLimits.maxReportBytes / 1024 / 1024} MiB limit`)
    )
    expect(problem("{\n".repeat(25 * 1024 * 1024))).toMatch(/truncated/)
    expect(problem(`${JSON.stringify({ report: "no" })}\n${"[0]\n".repeat(12 * 1024 * 1024)}`), "only the last lines are tried").toMatch(
      /^line \d+: not a kube-bench report/
    )
    // The report's own opening is still found behind millions of junk lines.
    expect(parseKubeBenchReport(`${oneLine(current)}\n${"[0]\n".repeat(256 * 1024)}`)._tag).toBe("Success")
  })
})
