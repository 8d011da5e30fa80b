/**
 * CEL backend benchmark: 10,000 Pods x 20 rules (the restricted pack, which includes
 * baseline, plus one user rule) end to end through the scanner: listing from the simulated
 * cluster (paginated), converting, evaluating, building the checks.
 *
 *   npx node bench/cel.ts [pods]
 *
 * Prints evaluations/s, the wall time (and CPU time: the machine may be shared) of each
 * scan and the peak RSS. Target: a scan under 1 s (>= 200,000 evaluations/s end to end).
 */
import { Effect, Layer } from "effect"
import type { ComplianceScanRun } from "../src/api/ComplianceScanRun.ts"
import { CelScanner } from "../src/backends/cel/CelScanner.ts"
import { Metrics } from "../src/services/Metrics.ts"
import type { KubeObject } from "../src/services/kube/KubeObject.ts"
import { SimulatedCluster } from "../sim/cluster/SimulatedCluster.ts"
import { benchPod } from "./BenchPods.ts"

const podCount = Number(process.argv[2] ?? 10_000)
const namespaceCount = 25

const objects: Array<KubeObject> = [
  ...Array.from({ length: namespaceCount }, (_, index): KubeObject => ({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: `team-${index}`, labels: { "kubernetes.io/metadata.name": `team-${index}`, owner: `team-${index}` } }
  })),
  ...Array.from({ length: podCount }, (_, index) => benchPod(index, `team-${index % namespaceCount}`))
]

const run: ComplianceScanRun = {
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "bench", namespace: "ugallu-system", uid: "uid-bench" },
  spec: {
    backend: "cel",
    profile: "pod-security-restricted",
    cel: {
      rules: [
        {
          id: "images-from-registry-with-limits",
          severity: "medium",
          expression:
            "object.spec.containers.all(c, c.image.startsWith('registry.example.com/') && has(c.resources) && has(c.resources.limits) && 'memory' in c.resources.limits) && namespaceObject.metadata.labels.owner != ''",
          messageExpression: "'pod ' + object.metadata.name + ' pulls from elsewhere or lacks a memory limit'"
        }
      ]
    }
  }
}

const program = Effect.gen(function*() {
  const scanner = yield* CelScanner
  const rules = 19 + (run.spec.cel?.rules?.length ?? 0)
  console.log(`CEL bench: ${podCount} pods in ${namespaceCount} namespaces x ${rules} rules (pod-security-restricted + user rule)`)
  for (const label of ["first scan (cold engine caches)", "second scan", "third scan"]) {
    const started = performance.now()
    const cpuBefore = process.cpuUsage()
    const report = yield* Effect.scoped(scanner.scan({ run, deadline: Date.now() + 600_000, reportProgress: () => Effect.void }))
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    const cpuMillis = (cpu.user + cpu.system) / 1000
    const evaluations = report.checks.reduce((sum, check) => {
      const counts = check.subjectCounts!
      return sum + counts.pass + counts.fail + counts.error
    }, 0)
    const failing = report.checks.filter((check) => check.outcome === "fail").length
    console.log(
      `${label}: ${evaluations.toLocaleString("en-US")} evaluations in ${(seconds * 1000).toFixed(0)} ms = ` +
        `${Math.round(evaluations / seconds).toLocaleString("en-US")} evaluations/s end to end (CPU ${cpuMillis.toFixed(0)} ms); ` +
        `${report.checks.length} checks, ${failing} failing`
    )
  }
  console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
})

const layer = CelScanner.layer().pipe(Layer.provideMerge(Layer.mergeAll(SimulatedCluster.layer({ objects }), Metrics.layerTest)))

Effect.runPromise(program.pipe(Effect.provide(layer))).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
