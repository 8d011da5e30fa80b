import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { checksFromReports } from "../../../src/backends/kube-bench/KubeBenchChecks.ts"
import { parseKubeBenchReport, reportChecks } from "../../../src/backends/kube-bench/KubeBenchReport.ts"
import { classifyCheck, familyOf, loadSeverityTable, parseSeverityTable } from "../../../src/backends/kube-bench/KubeBenchSeverities.ts"

/** Every check of the real reports of all 46 benchmarks (test/fixtures/kube-bench/gen.ts). */
const reports = join(import.meta.dirname, "..", "..", "fixtures", "kube-bench", "reports")
const benchmarks = Object.keys(JSON.parse(readFileSync(join(reports, "index.json"), "utf8")).benchmarks as Record<string, unknown>)
const table = Effect.runSync(loadSeverityTable)
const realChecks = benchmarks.flatMap((benchmark) => {
  const report = Result.getOrThrow(parseKubeBenchReport(readFileSync(join(reports, `${benchmark}.json`), "utf8")))
  return [...reportChecks(report)].map(({ check, group }) => ({
    benchmark,
    id: check.test_number,
    title: check.test_desc,
    section: group.desc,
    classified: classifyCheck(table, { benchmark, title: check.test_desc, section: group.desc })
  }))
})

describe("kube-bench severities by meaning", () => {
  it("every benchmark belongs to a family", () => {
    expect(benchmarks.filter((benchmark) => familyOf(table, benchmark) === undefined)).toEqual([])
    expect(Object.fromEntries(["cis-1.12", "k3s-cis-1.9", "rke2-cis-1.8", "cis-1.24-microk8s", "tkgi-1.2.53", "eks-1.8.0", "eks-stig-kubernetes-v1r6", "gke-1.9.0", "aks-1.8", "ack-1.0", "rh-1.8"].map((benchmark) => [benchmark, familyOf(table, benchmark)])))
      .toEqual({
        "cis-1.12": "cis", "k3s-cis-1.9": "cis", "rke2-cis-1.8": "cis", "cis-1.24-microk8s": "cis", "tkgi-1.2.53": "cis",
        "eks-1.8.0": "eks", "eks-stig-kubernetes-v1r6": "stig", "gke-1.9.0": "gke", "aks-1.8": "aks", "ack-1.0": "ack", "rh-1.8": "openshift"
      })
  })

  it("every check of every benchmark gets its severity from a rule of its family (or, in the STIG, its category), never the default", () => {
    const unrated = realChecks.filter((check) => check.classified.source._tag === "Default").map((check) => `${check.benchmark} ${check.id} ${check.title}`)
    expect(unrated).toEqual([])
    expect(realChecks.length).toBeGreaterThan(4000)
  })

  it("every rule matches some real check's title (a rule whose control no cfg/ names is stale)", () => {
    const used = new Set(realChecks.flatMap((check) => (check.classified.source._tag === "Rule" ? [check.classified.source.index] : [])))
    const unused = table.rules.map((rule, index) => (used.has(index) ? undefined : rule.match.source)).filter((pattern) => pattern !== undefined)
    expect(unused).toEqual([])
  })

  it("anonymous auth, AlwaysAllow, the read-only port and privileged containers: one severity on every platform", () => {
    const controls = {
      "anonymous auth": [/anonymous[- ]auth|anonymous authentication/iu, "critical"],
      "AlwaysAllow": [/alwaysallow/iu, "critical"],
      "read-only port": [/read[- ]only[- ]port|read only port/iu, "high"],
      "privileged containers": [/admission of privileged containers/iu, "high"]
    } as const
    for (const [name, [pattern, severity]] of Object.entries(controls)) {
      const matching = realChecks.filter((check) => pattern.test(check.title))
      // Found on CIS, EKS, GKE, AKS and more: the control really is on several platforms.
      expect(new Set(matching.map((check) => familyOf(table, check.benchmark))).size, name).toBeGreaterThanOrEqual(4)
      expect([...new Set(matching.map((check) => check.classified.severity))], name).toEqual([severity])
    }
  })

  it("the issue's cases: eks-1.8.0, aks-1.8 and gke-1.2.0 kubelet checks 3.2.1/3.2.2 critical, 3.2.4 high, 4.2.1 not critical; gke-1.2.0 alerts", () => {
    const severityIn = (benchmark: string, id: string) => realChecks.find((check) => check.benchmark === benchmark && check.id === id)!.classified.severity
    for (const benchmark of ["eks-1.8.0", "aks-1.8", "gke-1.2.0"]) {
      expect([severityIn(benchmark, "3.2.1"), severityIn(benchmark, "3.2.2")], benchmark).toEqual(["critical", "critical"])
      expect(severityIn(benchmark, "4.2.1"), benchmark).not.toBe("critical")
    }
    expect(severityIn("eks-1.8.0", "3.2.4")).toBe("high")
    const gke = Result.getOrThrow(parseKubeBenchReport(readFileSync(join(reports, "gke-1.2.0.json"), "utf8")))
    const failing = checksFromReports([{ node: "n", report: gke, benchmark: "gke-1.2.0" }], table).filter((check) => check.outcome === "fail")
    expect(failing.length).toBeGreaterThan(0)
    expect(failing.some((check) => check.severity === "high" || check.severity === "critical")).toBe(true)
  })

  it("the STIG: a check no rule names takes its DISA category", () => {
    expect(classifyCheck(table, { benchmark: "eks-stig-kubernetes-v1r6", title: "Something new", section: "DISA Category Code III" }))
      .toEqual({ severity: "low", source: { _tag: "StigCategory", category: "III" } })
    expect(classifyCheck(table, { benchmark: "cis-1.12", title: "Something new", section: "DISA Category Code III" }).source._tag).toBe("Default")
  })

  it("a broken table is a typed error", () => {
    expect(Result.isFailure(parseSeverityTable("default: severe"))).toBe(true)
    expect(Result.isFailure(parseSeverityTable("default: low\nfamilies: []\nstigCategories: {}\nrules: [{severity: low, match: '('}]"))).toBe(true)
  })
})
