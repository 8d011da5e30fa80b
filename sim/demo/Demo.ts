import { Clock, Console, Effect, Fiber, Layer, Schedule } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Check } from "../../src/api/Check.ts"
import type { ComplianceScanResult } from "../../src/api/ComplianceScanResult.ts"
import { type ComplianceScanRun, isTerminal } from "../../src/api/ComplianceScanRun.ts"
import type { SecurityEvent } from "../../src/api/SecurityEvent.ts"
import { severityRank } from "../../src/api/Severity.ts"
import { makeSimulatedFalco } from "../falco/SimulatedFalco.ts"
import { simulatedAlerts } from "../falco/SimulatedAlerts.ts"
import { generateTestCertificates } from "../falco/TestCertificates.ts"
import { kubeBenchDemoExecutor } from "../kube-bench/KubeBenchDemoExecutor.ts"
import { scannersLayer } from "../../src/backends/ScannersLayer.ts"
import { operatorLayer, runOperator } from "../../src/Operator.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../cluster/SimulatedCluster.ts"
import { Metrics } from "../../src/services/Metrics.ts"
import { OperatorConfig } from "../../src/services/OperatorConfig.ts"
import { demoNodes, demoRuns, demoWorkload } from "./DemoWorkload.ts"

/** Real `kube-bench run --json` outputs (v0.15.6, cis-1.10): the control plane's and a worker's. */
const report = (file: string) => readFileSync(join(import.meta.dirname, "reports", file), "utf8")
const reportFor = (node: string) => report(node.startsWith("control-plane") ? "cis-1.10-master.json" : "cis-1.10-node.json")

const worstFirst = (a: Check, b: Check) => severityRank(b.severity) - severityRank(a.severity)

const describeRun = (run: ComplianceScanRun, result: ComplianceScanResult | undefined): string => {
  const status = run.status ?? {}
  const lines = [
    `${run.metadata.name}  (${run.spec.backend}${run.spec.benchmark ? ` ${run.spec.benchmark}` : ""}${
      run.spec.profile ? ` ${run.spec.profile}` : ""
    })`,
    `  phase ${status.phase}  reason ${status.reason}  worst ${status.worstSeverity ?? "-"}`,
    `  ${status.message ?? ""}`
  ]
  if (status.summary !== undefined) {
    const s = status.summary
    lines.push(`  checks: ${s.fail} fail, ${s.warn} warn, ${s.pass} pass, ${s.skip} skip, ${s.error} error`)
  }
  for (const node of status.nodes ?? []) lines.push(`  node ${node.name}: ${node.phase}${node.reason ? ` (${node.reason})` : ""}`)
  const failed = (result?.spec.checks ?? []).filter((check) => check.outcome === "fail").sort(worstFirst)
  for (const check of failed.slice(0, 5)) {
    const who = (check.subjects ?? []).filter((s) => s.outcome === "fail").map((s) => s.namespace ? `${s.namespace}/${s.name}` : s.name)
    lines.push(`  [${check.severity.padEnd(8)}] ${check.checkID}: ${check.title}${who.length > 0 ? `  <- ${who.slice(0, 3).join(", ")}` : ""}`)
  }
  if (failed.length > 5) lines.push(`  ... and ${failed.length - 5} more failed checks`)
  for (const framework of result?.spec.frameworks ?? []) {
    lines.push(`  framework ${framework.name}: ${framework.passed} controls passed, ${framework.failed} failed`)
  }
  return lines.join("\n")
}

const listTyped = <A>(kube: KubeClient["Service"], resource: (typeof Resources)[keyof typeof Resources], namespace?: string) =>
  kube.list(resource, namespace === undefined ? {} : { namespace }).pipe(
    Effect.map((list) => list.items as unknown as ReadonlyArray<A>)
  )

/**
 * `compliance-scan demo`: the operator on the embedded simulated cluster with every backend
 * (kube-bench Jobs serving real reports, CEL over sample Pods, a simulated Falco over mTLS),
 * the sample runs applied, and a summary of each Result and the SecurityEvents.
 */
export const runDemo = Effect.scoped(
  Effect.gen(function*() {
    const certificates = yield* generateTestCertificates()
    const now = yield* Clock.currentTimeMillis
    const falco = yield* makeSimulatedFalco({
      serverCert: certificates.server.cert,
      serverKey: certificates.server.key,
      clientCA: certificates.ca.cert,
      initialEvents: simulatedAlerts(60, now),
      eventsPerSecond: 20
    })
    const config = OperatorConfig.layer({
      clusterName: "demo",
      clusterID: "demo-cluster",
      identity: "demo-operator",
      falcoHost: "localhost",
      falcoPort: falco.port,
      falcoCertFile: certificates.client.certFile,
      falcoKeyFile: certificates.client.keyFile,
      falcoCARootFile: certificates.ca.certFile,
      metricsBindAddress: "0",
      healthProbeBindAddress: "0"
    })
    const cluster = SimulatedCluster.layer({
      objects: [...demoNodes, ...demoWorkload],
      jobExecutor: kubeBenchDemoExecutor(reportFor)
    })
    const operator = operatorLayer(scannersLayer).pipe(
      Layer.provideMerge(Layer.mergeAll(cluster, Metrics.layerTest, config))
    )

    yield* Effect.gen(function*() {
      const kube = yield* KubeClient
      const operatorFiber = yield* Effect.forkChild(runOperator)
      for (const run of demoRuns) yield* kube.create(Resources.ComplianceScanRun, run)
      yield* Console.log(`Applied ${demoRuns.length} ComplianceScanRuns to the simulated cluster; scanning ...\n`)

      const allDone = listTyped<ComplianceScanRun>(kube, Resources.ComplianceScanRun, "ugallu-system").pipe(
        Effect.map((runs) => runs.length === demoRuns.length && runs.every((run) => isTerminal(run.status?.phase)))
      )
      yield* allDone.pipe(
        Effect.repeat({ schedule: Schedule.spaced("200 millis"), until: (done) => done }),
        Effect.timeoutOrElse({
          duration: "2 minutes",
          orElse: () => Effect.fail(new Error("the demo runs did not finish within 2 minutes"))
        })
      )
      yield* Fiber.interrupt(operatorFiber)

      const runs = yield* listTyped<ComplianceScanRun>(kube, Resources.ComplianceScanRun, "ugallu-system")
      const results = yield* listTyped<ComplianceScanResult>(kube, Resources.ComplianceScanResult, "ugallu-system")
      for (const run of runs) {
        yield* Console.log(describeRun(run, results.find((result) => result.metadata.name === run.metadata.name)) + "\n")
      }
      const events = yield* listTyped<SecurityEvent>(kube, Resources.SecurityEvent)
      yield* Console.log(`SecurityEvents (${events.length}):`)
      for (const event of events) {
        yield* Console.log(
          `  ${event.spec.type.padEnd(24)} ${event.spec.class.padEnd(11)} ${event.spec.severity.padEnd(8)} ${event.spec.subject.name}`
        )
      }
      const metrics = yield* Metrics
      const text = (yield* metrics.render).body
      yield* Console.log("\nMetrics (excerpt):")
      for (const line of text.split("\n").filter((l) => /^ugallu_compliance_scan_(runs_total|findings_total)/u.test(l))) {
        yield* Console.log(`  ${line}`)
      }
    }).pipe(Effect.provide(operator))
  })
)
