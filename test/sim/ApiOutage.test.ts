import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { CelScanner } from "../../src/backends/cel/CelScanner.ts"
import { Scanners, scannersOf } from "../../src/backends/Scanner.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { runManifest, startOperator, testCluster, testNamespace } from "../support/TestOperator.ts"

const phases = Effect.gen(function*() {
  const sim = yield* SimulatedCluster
  const counts = new Map<string, number>()
  for (const run of yield* sim.objects(Resources.ComplianceScanRun, testNamespace)) {
    const phase = (run.status as { phase?: string } | undefined)?.phase ?? ""
    counts.set(phase, (counts.get(phase) ?? 0) + 1)
  }
  return Object.fromEntries(counts)
})

const tick = (duration: "1 second" | "100 millis") =>
  Effect.gen(function*() {
    yield* TestClock.adjust(duration)
    for (let i = 0; i < 100; i++) yield* Effect.yieldNow
  })

const celScanners = Layer.effect(Scanners, Effect.gen(function*() { return scannersOf([yield* CelScanner]) })).pipe(
  Layer.provide(CelScanner.layer())
)

describe("API server outages", () => {
  for (const outageSeconds of [5, 40]) {
    it.effect(`an outage of ${outageSeconds} s (every request failing) during 150 cel runs: every run ends Succeeded`, () =>
      Effect.gen(function*() {
        const kube = yield* KubeClient
        const sim = yield* SimulatedCluster
        yield* startOperator({ kube, scanners: celScanners, config: { maxConcurrentRuns: 10 } })
        for (let i = 0; i < 150; i++) {
          yield* kube.create(Resources.ComplianceScanRun, runManifest(`run-${i}`, { backend: "cel", profile: "pod-security-baseline", timeout: "10m" }))
        }
        // Some runs done, some in flight, most waiting: then the API server goes away.
        while (((yield* phases).Succeeded ?? 0) < 20) yield* tick("100 millis")
        yield* sim.setFaults({ errorRate: 1 })
        for (let second = 0; second < outageSeconds; second++) yield* tick("1 second")
        yield* sim.setFaults({ errorRate: 0 })
        for (let second = 0; second < 600 && ((yield* phases).Succeeded ?? 0) < 150; second++) yield* tick("1 second")
        expect(yield* phases).toEqual({ Succeeded: 150 })
      }).pipe(Effect.provide(testCluster)), 120_000)
  }
})
