import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { countOutcomes } from "../../../src/api/Outcome.ts"
import { loadSeverityTable } from "../../../src/backends/kube-bench/KubeBenchSeverities.ts"
import { checksFromReports } from "../../../src/backends/kube-bench/KubeBenchChecks.ts"
import { parseKubeBenchReport, reportChecks } from "../../../src/backends/kube-bench/KubeBenchReport.ts"

/**
 * The reports test/fixtures/kube-bench/gen.ts made with the real kube-bench v0.15.6 for every
 * benchmark of its cfg/, each with every target its target_mapping defines (a cluster-tier
 * test checks that this set is complete against the built cfg/).
 */
const reports = join(import.meta.dirname, "..", "..", "fixtures", "kube-bench", "reports")
const index = JSON.parse(readFileSync(join(reports, "index.json"), "utf8")) as {
  readonly kubeBench: string
  readonly benchmarks: Record<string, { readonly targets: ReadonlyArray<string>; readonly exitCode: number }>
}
const text = (benchmark: string) => readFileSync(join(reports, `${benchmark}.json`), "utf8")
const severities = Effect.runSync(loadSeverityTable)

describe("real kube-bench reports of every benchmark", () => {
  it("cover kube-bench v0.15.6's benchmarks", () => {
    expect(index.kubeBench).toBe("v0.15.6")
    expect(Object.keys(index.benchmarks)).toHaveLength(46)
  })

  for (const benchmark of Object.keys(index.benchmarks)) {
    it(`${benchmark}: one check per result, and the counts are kube-bench's Totals`, () => {
      const report = Result.getOrThrow(parseKubeBenchReport(text(benchmark)))
      const totals = report.totals!
      const results = [...reportChecks(report)]
      expect(results.length).toBe(totals.total_pass + totals.total_fail + totals.total_warn + totals.total_info)
      const checks = checksFromReports([{ node: "n", report }], severities)
      expect(checks).toHaveLength(results.length)
      // api.md: an unscored FAIL counts as a warning.
      const unscoredFails = results.filter(({ check }) => check.status === "FAIL" && check.scored !== true).length
      expect(countOutcomes(checks.map((check) => check.outcome))).toEqual({
        pass: totals.total_pass,
        fail: totals.total_fail - unscoredFails,
        warn: totals.total_warn + unscoredFails,
        skip: totals.total_info,
        error: 0
      })
      // The version kube-bench writes is the benchmark's, except cis-1.24-microk8s, whose cfg says cis-1.24.
      expect(new Set(report.controls.map((controls) => controls.version))).toEqual(
        new Set([benchmark === "cis-1.24-microk8s" ? "cis-1.24" : benchmark])
      )
    })
  }

  it("eks-stig-kubernetes-v1r6 repeats V-242381, V-242402 and V-242403 in two sections: each stays its own check", () => {
    const report = Result.getOrThrow(parseKubeBenchReport(text("eks-stig-kubernetes-v1r6")))
    const ids = checksFromReports([{ node: "n", report }], severities).map((check) => check.checkID)
    for (const id of ["V-242381", "V-242402", "V-242403"]) {
      expect(ids.filter((checkID) => checkID.startsWith(`cis.${id}@`)), id).toHaveLength(2)
      expect(ids).not.toContain(`cis.${id}`)
    }
  })

  it("rh-1.8: the report right after kube-bench's real stderr, on the same line, is found", () => {
    const stderr = readFileSync(join(reports, "rh-1.8.stderr.txt"), "utf8").trimEnd()
    expect(stderr).toContain("oc: not found")
    const log = `${stderr}${text("rh-1.8")}`
    expect(Result.getOrThrow(parseKubeBenchReport(log)).totals).toEqual(JSON.parse(text("rh-1.8")).Totals)
  })
})
