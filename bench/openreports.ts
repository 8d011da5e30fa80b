/**
 * OpenReports mapping benchmark: a stored Result of N checks (one failing Pod each, spread
 * over 20 namespaces, plus N/10 node checks over 50 nodes) through buildReports, at the
 * Result's byte budget.
 *
 *   npx node bench/openreports.ts [checks]
 *
 * Prints the Result's size, the reports (count, parts, largest), and the wall and CPU time
 * of one mapping (the machine may be shared: CPU time is the steadier figure).
 */
import type { Check } from "../src/api/Check.ts"
import type { ComplianceScanRun } from "../src/api/ComplianceScanRun.ts"
import { buildResult, resultByteBudget } from "../src/reconciler/ResultBuilder.ts"
import { buildReports } from "../src/reports/OpenReports.ts"
import { reportApis } from "../src/reports/ReportApis.ts"

const checkCount = Number(process.argv[2] ?? 3_000)
const run: ComplianceScanRun = {
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "bench", namespace: "scans", uid: "5b0c9a8e-6f1d-4f3e-9d1a-2c7b8e4f0a11", creationTimestamp: "2026-12-06T00:00:00Z" },
  spec: { backend: "cel" }
}
const nodes = Array.from({ length: 50 }, (_, index) => `node-${index}`)
const checks: Array<Check> = [
  ...Array.from({ length: checkCount }, (_, index): Check => ({
    checkID: `rule-${index}`,
    title: `Rule ${index}: a title as long as the ones of real rule packs are`,
    outcome: "fail",
    severity: "medium",
    subjects: [{ kind: "Pod", name: `pod-${index}`, namespace: `team-${index % 20}`, outcome: "fail", message: `pod-${index} breaks rule ${index}` }]
  })),
  ...Array.from({ length: Math.floor(checkCount / 10) }, (_, index): Check => ({
    checkID: `node-${index}`,
    title: `Node check ${index}`,
    outcome: "fail",
    severity: "high",
    subjects: nodes.map((node, n) => ({ kind: "Node", name: node, outcome: n % 3 === 0 ? "pass" : "fail" }))
  }))
]
const { result } = buildResult(run, checks, undefined, "2026-12-06T00:01:00Z")
const stored = { ...result, metadata: { ...result.metadata, uid: "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6" } }
const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value))

const cpuBefore = process.cpuUsage()
const started = performance.now()
const reports = buildReports(reportApis.openreports, { run, result: stored, finishedAt: "2026-12-06T00:01:00Z", budget: resultByteBudget })
const wall = performance.now() - started
const cpu = process.cpuUsage(cpuBefore)

const sizes = reports.map(bytes)
const parts = reports.filter((report) => report.metadata.name.match(/-\d+$/u) !== null).length
console.log(`checks: ${checks.length} (Result ${bytes(stored)} bytes, ${stored.spec.checks.length} checks kept${stored.status?.truncated ? ", truncated" : ""})`)
console.log(`reports: ${reports.length} (${parts} extra parts), results: ${reports.reduce((sum, report) => sum + (report.results as Array<unknown>).length, 0)}`)
console.log(`largest report: ${Math.max(...sizes)} bytes (budget ${resultByteBudget}), total ${sizes.reduce((a, b) => a + b, 0)} bytes`)
console.log(`mapping: ${wall.toFixed(1)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms CPU`)
