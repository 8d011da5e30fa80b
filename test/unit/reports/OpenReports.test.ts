import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Check } from "../../../src/api/Check.ts"
import type { ComplianceScanResult } from "../../../src/api/ComplianceScanResult.ts"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { ScheduleLabel } from "../../../src/api/SeriesLabels.ts"
import { severities } from "../../../src/api/Severity.ts"
import { checksFromReports } from "../../../src/backends/kube-bench/KubeBenchChecks.ts"
import { parseKubeBenchReport } from "../../../src/backends/kube-bench/KubeBenchReport.ts"
import { loadSeverityTable } from "../../../src/backends/kube-bench/KubeBenchSeverities.ts"
import { buildResult } from "../../../src/reconciler/ResultBuilder.ts"
import { buildReports, labels, reportSeverityOf } from "../../../src/reports/OpenReports.ts"
import { reportApis, selectReportApis } from "../../../src/reports/ReportApis.ts"
import { expectOneToOne, resultsOf } from "../../support/ReportWalk.ts"
import { exceptionOf } from "../exceptions/ExceptionFixtures.ts"

const runOf = (name: string, backend: ComplianceScanRun["spec"]["backend"], extra: Partial<ComplianceScanRun["metadata"]> = {}): ComplianceScanRun => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: "scans", uid: `uid-${name}`, ...extra },
  spec: { backend, ...(backend === "kube-bench" ? { benchmark: "cis-1.10" } : {}) }
})

const finishedAt = "2026-12-06T01:02:03.456Z"

/** The Result the operator would write for these checks, as stored (with a uid). */
const stored = (run: ComplianceScanRun, checks: ReadonlyArray<Check>, nodes?: ComplianceScanResult["spec"]["nodes"]) => {
  const { result } = buildResult(run, checks, undefined, finishedAt, undefined, nodes === undefined ? undefined : { nodes })
  return { ...result, metadata: { ...result.metadata, uid: `result-${run.metadata.name}` } }
}

const kubeBenchChecks = () => {
  const text = readFileSync(join(import.meta.dirname, "..", "..", "fixtures", "kube-bench", "reports", "cis-1.10.json"), "utf8")
  const report = Result.getOrThrow(parseKubeBenchReport(text))
  return checksFromReports([{ node: "node-a", report }, { node: "node-b", report }], Effect.runSync(loadSeverityTable))
}

const pod = (name: string, namespace: string, outcome: "pass" | "fail" | "error") => ({ kind: "Pod", name, namespace, outcome, message: `${name} is ${outcome}` })

const celChecks: ReadonlyArray<Check> = [
  {
    checkID: "no-privileged",
    title: "Containers are not privileged",
    outcome: "fail",
    severity: "critical",
    frameworks: [{ name: "cis", controlID: "5.2.1" }, { name: "soc2", controlID: "CC6.1" }],
    subjects: [pod("a", "team-a", "fail"), pod("b", "team-b", "fail"), pod("c", "team-a", "error")],
    subjectCounts: { pass: 40, fail: 2, warn: 0, skip: 0, error: 1 }
  },
  {
    checkID: "no-cluster-admin",
    title: "No binding grants cluster-admin",
    outcome: "fail",
    severity: "high",
    subjects: [{ kind: "ClusterRoleBinding", name: "everyone-admin", outcome: "fail" }]
  },
  { checkID: "replicas", title: "Deployments have two replicas", outcome: "pass", severity: "low" }
]

describe("OpenReports from a Result", () => {
  it("kube-bench: one ClusterReport, results one-to-one with the checks, node properties from what kube-bench detected", () => {
    const run = runOf("cis", "kube-bench")
    const nodes = [
      { name: "node-a", job: "j-a", phase: "Succeeded" as const, platform: "kubernetes", version: "1.31", benchmark: "cis-1.10" },
      { name: "node-b", job: "j-b", phase: "Succeeded" as const, platform: "kubernetes", version: "1.31", benchmark: "cis-1.10" }
    ]
    const result = stored(run, kubeBenchChecks(), nodes)
    const reports = buildReports(reportApis.openreports, { run, result, finishedAt, budget: 1024 * 1024 })
    expect(reports.map((report) => report.kind)).toEqual(["ClusterReport"])
    expect(reports[0]!.source).toBe("compliance-scan/kube-bench")
    expectOneToOne(result.spec.checks, reports)
    const first = resultsOf(reports[0]!)[0]!
    expect(first.source).toBe("compliance-scan/kube-bench")
    expect(first.timestamp).toEqual({ seconds: Math.floor(Date.parse(finishedAt) / 1000), nanos: 456_000_000 })
    expect(first.resources!.map((resource) => `${resource.apiVersion}/${resource.kind}/${resource.name}`)).toEqual(["v1/Node/node-a", "v1/Node/node-b"])
    expect(first.properties).toMatchObject({
      run: "cis",
      runUID: "uid-cis",
      resultRef: "cis",
      benchmark: "cis-1.10",
      node: "node-a, node-b",
      platform: "kubernetes",
      detectedVersion: "1.31"
    })
    expect(reports[0]!.metadata.ownerReferences).toBeUndefined()
  })

  it("CEL: a Report per namespace with the objects of each result, a ClusterReport for cluster-scoped objects and object-less checks", () => {
    const run = runOf("pods", "cel")
    const result = stored(run, celChecks)
    const reports = buildReports(reportApis.openreports, { run, result, finishedAt, budget: 1024 * 1024 })
    expect(reports.map((report) => `${report.kind}/${report.metadata.namespace ?? ""}`)).toEqual([
      "ClusterReport/",
      "Report/team-a",
      "Report/team-b"
    ])
    expectOneToOne(result.spec.checks, reports)
    const teamA = resultsOf(reports[1]!)
    // Objects of one result share its outcome: the failing and the erroring Pod are two results.
    expect(teamA.map((entry) => [entry.result, entry.resources!.map((resource) => resource.name)])).toEqual([["fail", ["a"]], ["error", ["c"]]])
    expect(teamA[0]!.category).toBe("cis, soc2")
    expect(teamA[0]!.properties.frameworkControls).toBe("cis:5.2.1, soc2:CC6.1")
    expect(teamA[0]!.properties.subjectCounts).toBe("pass=40 fail=2 warn=0 skip=0 error=1")
    expect(teamA[0]!.message).toBe("a is fail")
    expect(resultsOf(reports[0]!).map((entry) => entry.policy)).toEqual(["no-cluster-admin", "replicas"])
    expect(resultsOf(reports[0]!)[1]!.category).toBe("cel")
    expect(reports[1]!.summary).toEqual({ pass: 0, fail: 1, warn: 0, skip: 0, error: 1 })
  })

  it("findings about objects of a namespace that no longer exists go to the ClusterReport, naming their namespace", () => {
    const run = runOf("pods", "cel")
    const result = stored(run, celChecks)
    const reports = buildReports(reportApis.openreports, { run, result, finishedAt, budget: 1024 * 1024, namespaces: new Set(["scans", "team-a"]) })
    expect(reports.map((report) => `${report.kind}/${report.metadata.namespace ?? ""}`)).toEqual(["ClusterReport/", "Report/team-a"])
    expect(resultsOf(reports[0]!).flatMap((entry) => entry.resources ?? []).map((resource) => `${resource.namespace ?? ""}/${resource.name}`)).toEqual([
      "team-b/b",
      "/everyone-admin"
    ])
    expectOneToOne(result.spec.checks, reports)
  })

  it("excepted findings stay in the reports, each marked with its exception, mode, expiry and original result", () => {
    const run = runOf("pods", "cel")
    const waiver = exceptionOf("cni-privileged", "team-a", { match: { checks: ["no-privileged"], subjects: { names: ["a"] } } })
    const alertOnly = exceptionOf("break-glass", "ugallu-system", { match: { checks: ["no-cluster-admin"] }, mode: "alertOnly" })
    const { result: built } = buildResult(run, celChecks, undefined, finishedAt, undefined, undefined, {
      exceptions: [waiver, alertOnly],
      operatorNamespace: "ugallu-system",
      maxDurationMillis: 90 * 86_400_000
    })
    const result = { ...built, metadata: { ...built.metadata, uid: "result-pods" } }
    const reports = buildReports(reportApis.openreports, { run, result, finishedAt, budget: 1024 * 1024 })
    expectOneToOne(result.spec.checks, reports)
    const all = reports.flatMap(resultsOf)
    const waived = all.filter((entry) => entry.properties.exception === "team-a/cni-privileged")
    expect(waived.map((entry) => [entry.result, entry.resources!.map((resource) => resource.name)])).toEqual([["skip", ["a"]]])
    expect(waived[0]!.properties).toMatchObject({ exceptionMode: "waive", originalResult: "fail", exceptionExpiresAt: waiver.spec.expiresAt })
    const kept = all.filter((entry) => entry.properties.exception === "ugallu-system/break-glass")
    expect(kept.map((entry) => [entry.result, entry.properties.exceptionMode, entry.properties.originalResult])).toEqual([["fail", "alertOnly", "fail"]])
    // The other failing Pod of the same check is not excepted and is its own result.
    const plain = all.filter((entry) => entry.policy === "no-privileged" && entry.properties.exception === undefined)
    expect(plain.flatMap((entry) => entry.resources!.map((resource) => `${resource.name}:${entry.result}`)).sort()).toEqual(["b:fail", "c:error"])
  })

  it("severities map to the report vocabulary, every one of them", () => {
    expect(severities.map((severity) => reportSeverityOf[severity])).toEqual(["info", "low", "medium", "high", "critical"])
  })

  it("owner: the Result owns the report in the run's namespace (owner references cannot cross namespaces)", () => {
    const run = { ...runOf("here", "cel"), metadata: { ...runOf("here", "cel").metadata, namespace: "team-a" } }
    const result = stored(run, celChecks)
    const reports = buildReports(reportApis.openreports, { run, result, finishedAt, budget: 1024 * 1024 })
    const owners = reports.map((report) => report.metadata.ownerReferences?.map((owner) => `${owner.kind}/${owner.uid}`) ?? [])
    expect(owners).toEqual([[], ["ComplianceScanResult/result-here"], []])
  })

  it("a Result over the budget is split into parts, each under it, nothing dropped, each result saying its part", () => {
    const run = runOf("big", "cel")
    const checks: ReadonlyArray<Check> = Array.from({ length: 300 }, (_, index) => ({
      checkID: `rule-${index}`,
      title: `Rule number ${index} with a title long enough to take some room`,
      outcome: "fail",
      severity: "medium",
      subjects: [pod(`pod-${index}`, "team-a", "fail")]
    }))
    const result = stored(run, checks)
    const budget = 40_000
    const reports = buildReports(reportApis.openreports, { run, result, finishedAt, budget })
    const parts = reports.filter((report) => report.kind === "Report")
    expect(parts.length).toBeGreaterThan(2)
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThanOrEqual(budget)
    expect(parts.map((part) => part.metadata.name)).toEqual(parts.map((_, index) => `${parts[0]!.metadata.name}${index === 0 ? "" : `-${index + 1}`}`))
    parts.forEach((part, index) => {
      expect(part.metadata.labels![labels.part]).toBe(String(index + 1))
      for (const entry of resultsOf(part)) expect(entry.properties.part).toBe(`${index + 1}/${parts.length}`)
    })
    expectOneToOne(result.spec.checks, reports)
    expect(parts.flatMap(resultsOf)).toHaveLength(300)
  })

  it("wgpolicyk8s: PolicyReport and ClusterPolicyReport with the same results, without a report-level source", () => {
    const run = runOf("pods", "cel")
    const result = stored(run, celChecks)
    const open = buildReports(reportApis.openreports, { run, result, finishedAt, budget: 1024 * 1024 })
    const old = buildReports(reportApis.wgpolicyk8s, { run, result, finishedAt, budget: 1024 * 1024 })
    expect(old.map((report) => `${report.apiVersion}/${report.kind}`)).toEqual([
      "wgpolicyk8s.io/v1alpha2/ClusterPolicyReport",
      "wgpolicyk8s.io/v1alpha2/PolicyReport",
      "wgpolicyk8s.io/v1alpha2/PolicyReport"
    ])
    expect(old.map((report) => report.source)).toEqual([undefined, undefined, undefined])
    expect(old.map(resultsOf)).toEqual(open.map(resultsOf))
  })

  it("runs of one series share report names (a new run replaces them); other runs do not", () => {
    const scheduled = (name: string) => runOf(name, "cel", { labels: { [ScheduleLabel]: "nightly" } })
    const namesOf = (run: ComplianceScanRun) =>
      buildReports(reportApis.openreports, { run, result: stored(run, celChecks), finishedAt, budget: 1024 * 1024 })
        .map((report) => `${report.metadata.namespace ?? ""}/${report.metadata.name}`)
    expect(namesOf(scheduled("nightly-1"))).toEqual(namesOf(scheduled("nightly-2")))
    expect(namesOf(runOf("one", "cel"))).not.toEqual(namesOf(runOf("two", "cel")))
    const [report] = buildReports(reportApis.openreports, { run: scheduled("nightly-1"), result: stored(scheduled("nightly-1"), celChecks), finishedAt, budget: 1024 * 1024 })
    expect(report!.metadata.labels).toMatchObject({ [ScheduleLabel]: "nightly", [labels.run]: "nightly-1", [labels.runUID]: "uid-nightly-1" })
  })

  it("auto takes OpenReports when served, else wgpolicyk8s, else nothing; explicit choices stand", () => {
    expect(selectReportApis("auto", new Set(["openreports", "wgpolicyk8s"]))).toEqual(["openreports"])
    expect(selectReportApis("auto", new Set(["wgpolicyk8s"]))).toEqual(["wgpolicyk8s"])
    expect(selectReportApis("auto", new Set())).toEqual([])
    expect(selectReportApis("both", new Set())).toEqual(["openreports", "wgpolicyk8s"])
    expect(selectReportApis("none", new Set(["openreports"]))).toEqual([])
  })
})
