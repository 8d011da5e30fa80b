import { Effect } from "effect"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { parse } from "yaml"
import { Metrics } from "../../../src/services/Metrics.ts"
import { deployDir, readManifests, repoRoot } from "./DeployFiles.ts"

const monitoring = join(deployDir, "monitoring")
const rulesFile = parse(readFileSync(join(monitoring, "compliance-scan.rules.yaml"), "utf8"))
const [prometheusRule] = readManifests(join(monitoring, "prometheus-rule.yaml"))
const dashboard = JSON.parse(readFileSync(join(monitoring, "grafana-dashboard.json"), "utf8"))

interface Panel {
  readonly type: string
  readonly title: string
  readonly targets?: ReadonlyArray<{ readonly expr: string }>
}
const panels: ReadonlyArray<Panel> = dashboard.panels
const dashboardQueries = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr))
const alertRules: ReadonlyArray<{ alert: string; expr: string; labels: Record<string, string> }> = rulesFile.groups.flatMap(
  (group: { rules: unknown }) => group.rules
)

const metricNames = (query: string) =>
  [...query.matchAll(/\b((?:ugallu|process|nodejs)_[a-z0-9_]+)\b/gu)].map((match) => match[1]!.replace(/_(bucket|sum|count)$/u, ""))

/** Every .ts file's text under src/: metrics that backends register on their own. */
const sourceText = (directory: string): string =>
  readdirSync(directory).map((entry) => {
    const path = join(directory, entry)
    return statSync(path).isDirectory() ? sourceText(path) : entry.endsWith(".ts") ? readFileSync(path, "utf8") : ""
  }).join("\n")

describe("monitoring: alert rules", () => {
  it("the PrometheusRule holds the same groups as the plain rules file", () => {
    expect(prometheusRule!.kind).toBe("PrometheusRule")
    expect(prometheusRule!.spec).toEqual(rulesFile)
  })

  it("alerts on failing runs, on a day without a successful run, and on findings at or above high", () => {
    const byName = Object.fromEntries(alertRules.map((rule) => [rule.alert, rule]))
    expect(byName.ComplianceScanRunsFailing!.expr).toContain("ugallu_compliance_scan_backend_errors_total")
    expect(byName.ComplianceScanNoSuccessfulRun!.expr).toContain('ugallu_compliance_scan_runs_total{outcome="Succeeded"}[1d]')
    expect(byName.ComplianceScanHighSeverityFindings!.expr).toContain('ugallu_compliance_scan_findings_total{severity=~"high|critical"}')
    for (const rule of alertRules) expect(rule.labels.severity, rule.alert).toMatch(/^(info|warning|critical)$/u)
  })
})

describe("monitoring: every metric the dashboard and the alerts read exists", () => {
  it.effect("is one of the operator's metrics (or a backend's, registered in src/)", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.make({ processMetrics: true })
      const registered = new Set(metrics.registry.getMetricsAsArray().map((metric) => metric.name))
      expect(registered.has("ugallu_compliance_scan_runs_total")).toBe(true)
      const sources = sourceText(join(repoRoot, "src"))
      const used = new Set([...dashboardQueries, ...alertRules.map((rule) => rule.expr)].flatMap(metricNames))
      expect(used.size).toBeGreaterThanOrEqual(10)
      const unknown = [...used].filter((name) => !registered.has(name) && !sources.includes(`"${name}"`))
      expect(unknown).toEqual([])
    }))

  it("the dashboard charts each operator metric of the contract", () => {
    const charted = new Set(dashboardQueries.flatMap(metricNames))
    for (const name of [
      "ugallu_compliance_scan_runs_total",
      "ugallu_compliance_scan_findings_total",
      "ugallu_compliance_scan_duration_seconds",
      "ugallu_compliance_scan_active_runs",
      "ugallu_compliance_scan_backend_errors_total",
      "ugallu_compliance_scan_security_events_total",
      "ugallu_compliance_scan_api_requests_total",
      "ugallu_compliance_scan_leader",
      "ugallu_compliance_scan_falco_receiver_events_total",
      "ugallu_compliance_scan_falco_receiver_rejected_requests_total",
      "ugallu_compliance_scan_falco_receiver_events_dropped_total",
      "ugallu_compliance_scan_falco_receiver_buffered_events"
    ]) expect(charted.has(name), name).toBe(true)
    expect(dashboard.uid).toBe("ugallu-compliance-scan")
  })

  it("the dashboard charts every metric the operator and its backends register", () => {
    const charted = new Set(dashboardQueries.flatMap(metricNames))
    const registered = new Set(
      [...sourceText(join(repoRoot, "src")).matchAll(/"(ugallu_compliance_scan_[a-z0-9_]+)"/gu)].map((match) => match[1]!)
    )
    expect(registered.size).toBeGreaterThanOrEqual(20)
    expect([...registered].filter((name) => !charted.has(name))).toEqual([])
  })
})
