/**
 * API requests of one kube-bench run: `npx node bench/kube-bench-requests.ts [nodes] [seconds]`
 * (default 10 nodes, each kube-bench Pod running 6 s, all nodes at once).
 *
 * Runs the kube-bench scanner on the simulated cluster (its Pods "print" a saved real
 * report after the given time) and prints the requests the scanner sent, by verb, and per
 * node. The scanner follows its Jobs and Pods with one watch each (by the run's label).
 * Measured (10 nodes, 6 s): 36 requests (3.6 per node: 4 lists, 2 watches, and per node a
 * create, a log read and a delete), scan 6.4 s; the polling scanner it replaced (a GET of
 * each Job and a LIST of its Pods every 2 s) sent 132 (13.2 per node), scan 8.2 s.
 */
import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { ComplianceScanRun } from "../src/api/ComplianceScanRun.ts"
import { kubeBenchDemoExecutor } from "../sim/kube-bench/KubeBenchDemoExecutor.ts"
import { KubeBenchScanner } from "../src/backends/kube-bench/KubeBenchScanner.ts"
import { Metrics } from "../src/services/Metrics.ts"
import { OperatorConfig } from "../src/services/OperatorConfig.ts"
import { SimulatedCluster } from "../sim/cluster/SimulatedCluster.ts"

const nodeCount = Number(process.argv[2] ?? 10)
const seconds = Number(process.argv[3] ?? 6)
const jobNamespace = "ugallu-system-privileged"
const report = readFileSync(join(import.meta.dirname, "..", "sim", "demo", "reports", "cis-1.10-node.json"), "utf8")

const nodes = Array.from({ length: nodeCount }, (_, index) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name: `node-${index}`, labels: { "kubernetes.io/os": "linux" } },
  status: { nodeInfo: { kubeletVersion: "v1.31.4" } }
}))
const run: ComplianceScanRun = {
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "bench", namespace: "default", uid: "uid-bench" },
  spec: { backend: "kube-bench", kubeBench: { maxConcurrentNodes: nodeCount } }
}

const program = Effect.gen(function*() {
  const cluster = yield* SimulatedCluster
  const scanner = yield* KubeBenchScanner
  const before = yield* cluster.requestCounts
  const started = Date.now()
  const result = yield* Effect.scoped(
    scanner.scan({ run, deadline: Date.now() + 600_000, reportProgress: () => Effect.void })
  )
  const after = yield* cluster.requestCounts
  const used = Object.fromEntries(Object.entries(after).map(([verb, count]) => [verb, count - (before[verb as keyof typeof before] ?? 0)]))
  const total = Object.values(used).reduce((sum, count) => sum + count, 0)
  console.log(`${nodeCount} nodes, kube-bench ${seconds} s each, scan took ${((Date.now() - started) / 1000).toFixed(1)} s, ${result.checks.length} checks, failure: ${result.failure?.reason ?? "none"}`)
  console.log(`requests by verb: ${JSON.stringify(used)}`)
  console.log(`requests: ${total} in all, ${(total / nodeCount).toFixed(1)} per node`)
})

await Effect.runPromise(
  program.pipe(
    Effect.provide(
      KubeBenchScanner.layer().pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            SimulatedCluster.layer({
              objects: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: jobNamespace } }, ...nodes],
              jobExecutor: kubeBenchDemoExecutor(() => report, { duration: `${seconds} seconds` })
            }),
            OperatorConfig.layer({ jobNamespace, kubeBenchImage: "registry.example/kube-bench:bench" }),
            Metrics.layerTest
          )
        )
      )
    )
  )
)
