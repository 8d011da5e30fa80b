// bench/reconcile: 1,000 runs with an instant scanner through the simulated cluster.
// Prints runs/s, p50/p99 create-to-terminal latency and peak RSS.
//   npx node bench/reconcile.ts [runs] [max-concurrent-runs]
import { Effect, Layer, References, Stream } from "effect"
import { type ScanReport, Scanners, scannersOf } from "../src/backends/Scanner.ts"
import { operatorLayer, runOperator } from "../src/Operator.ts"
import { KubeClient } from "../src/services/kube/KubeClient.ts"
import { watchResource } from "../src/services/kube/ListWatch.ts"
import { Resources } from "../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../sim/cluster/SimulatedCluster.ts"
import { Metrics } from "../src/services/Metrics.ts"
import { OperatorConfig } from "../src/services/OperatorConfig.ts"

const runs = Number(process.argv[2] ?? 1000)
const concurrency = Number(process.argv[3] ?? 50)
const namespace = "bench"

const instant: ScanReport = {
  checks: [
    { checkID: "bench.fail", title: "a finding", outcome: "fail", severity: "high" },
    { checkID: "bench.pass", title: "a pass", outcome: "pass", severity: "low" }
  ]
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

const program = Effect.gen(function*() {
  const kube = yield* KubeClient
  const sim = yield* SimulatedCluster
  const created = new Map<string, number>()
  const finished = new Map<string, number>()
  let allDone: () => void = () => {}
  const done = new Promise<void>((resolve) => (allDone = resolve))

  // Observe terminal phases as a client would: through a watch.
  yield* watchResource(Resources.ComplianceScanRun, { namespace }).pipe(
    Stream.runForEach((event) =>
      Effect.sync(() => {
        if (event.type === "SYNCED" || event.type === "DELETED") return
        const phase = (event.object.status as { phase?: string } | undefined)?.phase
        const name = event.object.metadata.name
        if ((phase === "Succeeded" || phase === "Failed") && !finished.has(name)) {
          finished.set(name, performance.now())
          if (finished.size === runs) allDone()
        }
      })
    ),
    Effect.forkChild
  )
  yield* Effect.forkChild(runOperator)
  yield* sim.resetRequestCounts

  const start = performance.now()
  for (let i = 0; i < runs; i++) {
    const name = `run-${i}`
    created.set(name, performance.now())
    yield* kube.create(Resources.ComplianceScanRun, {
      apiVersion: "security.ugallu.io/v1alpha1",
      kind: "ComplianceScanRun",
      metadata: { name, namespace },
      spec: { backend: "cel" }
    })
  }
  yield* Effect.promise(() => done)
  const seconds = (performance.now() - start) / 1000
  const latencies = [...finished.entries()].map(([name, at]) => at - created.get(name)!).sort((a, b) => a - b)
  const counts = yield* sim.requestCounts
  const requests = Object.values(counts).reduce((sum, n) => sum + n, 0)
  const rssMiB = process.resourceUsage().maxRSS / 1024
  console.log(`runs                      ${runs} (max-concurrent-runs ${concurrency})`)
  console.log(`wall time                 ${seconds.toFixed(2)} s`)
  console.log(`throughput                ${(runs / seconds).toFixed(0)} runs/s`)
  console.log(`create-to-terminal p50    ${percentile(latencies, 0.5).toFixed(0)} ms`)
  console.log(`create-to-terminal p99    ${percentile(latencies, 0.99).toFixed(0)} ms`)
  console.log(`API requests per run      ${(requests / runs).toFixed(1)} (${JSON.stringify(counts)})`)
  console.log(`peak RSS                  ${rssMiB.toFixed(0)} MiB`)
})

const layer = operatorLayer(Layer.succeed(Scanners, scannersOf([{ name: "cel", scan: () => Effect.succeed(instant) }]))).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      SimulatedCluster.layer({
        objects: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }],
        historySize: 10_000
      }),
      Metrics.layerTest,
      OperatorConfig.layer({ leaderElect: false, maxConcurrentRuns: concurrency })
    )
  )
)

// Logs off: the bench measures the reconciler, not the console.
await Effect.runPromise(
  Effect.scoped(program).pipe(Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Error"))
)
