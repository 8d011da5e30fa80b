import { Effect } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { failureReasons } from "../../src/services/KnownLabelValues.ts"
import { Metrics } from "../../src/services/Metrics.ts"
import { repoRoot } from "./deploy/DeployFiles.ts"

/** The exposition's sample lines of one metric: `name{labels} value`. */
const samples = (body: string, name: string) => body.split("\n").filter((line) => line.startsWith(`${name}{`))

describe("Metrics: labelled series exist from start-up", () => {
  it.effect("every backend, outcome, reason and severity is exposed at 0 before any run", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.make({ processMetrics: false })
      const { body } = yield* metrics.render
      const runs = samples(body, "ugallu_compliance_scan_runs_total")
      for (const backend of ["kube-bench", "falco", "cel"]) {
        for (const outcome of ["Succeeded", "Failed"]) {
          expect(runs).toContain(`ugallu_compliance_scan_runs_total{backend="${backend}",outcome="${outcome}"} 0`)
        }
        expect(body).toContain(`ugallu_compliance_scan_backend_errors_total{backend="${backend}",reason="Timeout"} 0`)
        expect(body).toContain(`ugallu_compliance_scan_active_runs{backend="${backend}"} 0`)
        expect(body).toContain(`ugallu_compliance_scan_duration_seconds_count{backend="${backend}"} 0`)
      }
      expect(body).toContain(`ugallu_compliance_scan_backend_errors_total{backend="kube-bench",reason="ImagePullFailed"} 0`)
      expect(body).toContain(`ugallu_compliance_scan_backend_errors_total{backend="cel",reason="CELCompileError"} 0`)
      expect(body).not.toContain(`ugallu_compliance_scan_backend_errors_total{backend="cel",reason="ImagePullFailed"}`)
      for (const severity of ["info", "low", "medium", "high", "critical"]) {
        expect(body).toContain(`ugallu_compliance_scan_findings_total{benchmark="pod-security-restricted",severity="${severity}"} 0`)
      }
      expect(body).toContain("ugallu_compliance_scan_leader 0")
      // Nothing counted yet: every sample of every labelled counter is 0.
      expect(runs.every((line) => line.endsWith(" 0"))).toBe(true)
    }))

  it.effect("the first event after start-up moves an existing series from 0 to 1", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.make({ processMetrics: false })
      metrics.backendErrorsTotal.inc({ backend: "kube-bench", reason: "Timeout" })
      const { body } = yield* metrics.render
      expect(samples(body, "ugallu_compliance_scan_backend_errors_total").filter((line) => line.includes('reason="Timeout"'))).toEqual([
        `ugallu_compliance_scan_backend_errors_total{backend="kube-bench",reason="Timeout"} 1`,
        `ugallu_compliance_scan_backend_errors_total{backend="falco",reason="Timeout"} 0`,
        `ugallu_compliance_scan_backend_errors_total{backend="cel",reason="Timeout"} 0`
      ])
    }))

  it("the known failure reasons are the reason codes of docs/operations.md's Troubleshooting table", () => {
    const doc = readFileSync(join(repoRoot, "docs/operations.md"), "utf8")
    const table = [...doc.matchAll(/^\| `([A-Za-z]+)` \| (any|kube-bench|cel|falco) \|/gmu)].map((match) => `${match[2]}:${match[1]}`)
    const known = Object.entries(failureReasons).flatMap(([backend, reasons]) => reasons.map((reason) => `${backend}:${reason}`))
    expect(table.length).toBeGreaterThan(20)
    expect(known.sort()).toEqual(table.sort())
  })
})

describe("Metrics: factories for the backends' own metrics", () => {
  it.effect("counter and gauge are idempotent by name: a second backend Layer on the same Metrics shares the series", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.make({ processMetrics: false })
      const spec = { name: "test_scans_total", help: "Scans.", labelNames: ["outcome"] as const }
      const first = metrics.counter(spec)
      const second = metrics.counter(spec)
      expect(second).toBe(first)
      first.inc({ outcome: "succeeded" })
      second.inc({ outcome: "succeeded" }, 2)
      const gauge = metrics.gauge({ name: "test_open", help: "Open." })
      expect(metrics.gauge({ name: "test_open", help: "Open." })).toBe(gauge)
      gauge.set(4)
      const { body } = yield* metrics.render
      expect(body).toContain(`test_scans_total{outcome="succeeded"} 3`)
      expect(body).toContain("test_open 4")
    }))

  it("no backend imports prom-client or looks metrics up in the registry", () => {
    const backends = join(repoRoot, "src", "backends")
    const files = readdirSync(backends, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"))
    const users = files.filter((file) => /\bmetrics\.(counter|gauge)\(/u.test(readFileSync(join(backends, file), "utf8")))
    expect(users.sort()).toEqual(["cel/CelScanner.ts", "falco/FalcoReceiver.ts", "falco/FalcoScanner.ts", "kube-bench/KubeBenchScanner.ts"])
    for (const file of files) {
      expect(readFileSync(join(backends, file), "utf8"), file).not.toMatch(/prom-client|getSingleMetric|\.registry\b/u)
    }
  })

  it("only Metrics.ts imports prom-client: the rest of the product records through its narrowed types", () => {
    const src = join(repoRoot, "src")
    const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"))
    expect(files.length).toBeGreaterThan(50)
    const importers = files.filter((file) => /from "prom-client"/u.test(readFileSync(join(src, file), "utf8")))
    expect(importers).toEqual([join("services", "Metrics.ts")])
  })
})
