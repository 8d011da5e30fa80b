import { type Duration, Effect, type Fiber, Layer, Schedule, type Scope } from "effect"
import type { ComplianceScanResult } from "../../src/api/ComplianceScanResult.ts"
import type { ComplianceScanRun, RunPhase } from "../../src/api/ComplianceScanRun.ts"
import type { SecurityEvent } from "../../src/api/SecurityEvent.ts"
import { type Scanner, Scanners, scannersOf } from "../../src/backends/Scanner.ts"
import { operatorLayer, runOperator } from "../../src/Operator.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { Metrics } from "../../src/services/Metrics.ts"
import { OperatorConfig, type OperatorConfigShape } from "../../src/services/OperatorConfig.ts"

export const testNamespace = "scans"

/** A ComplianceScanRun manifest in the test namespace. */
export const runManifest = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: testNamespace },
  spec
})

export const namespaceObject = (name: string): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } })

/** A fresh simulated cluster with the test namespace (each `Effect.provide` builds a new one). */
export const testCluster = SimulatedCluster.layer({ objects: [namespaceObject(testNamespace)] })

export interface TestOperator {
  readonly fiber: Fiber.Fiber<never, unknown>
  readonly metrics: Metrics["Service"]
}

/**
 * Starts one operator process (its own Metrics, its own identity) against a given
 * KubeClient, in the current Scope: closing the Scope or interrupting `fiber` is a crash
 * or a shutdown of that process.
 */
export const startOperator = (options: {
  readonly kube: KubeClient["Service"]
  /** Built on the operator's own (fenced) KubeClient when given as a function. */
  readonly scanners:
    | ReadonlyArray<Scanner>
    | ((kube: KubeClient["Service"]) => ReadonlyArray<Scanner>)
    | Layer.Layer<Scanners, never, KubeClient | Metrics | OperatorConfig>
  readonly config?: Partial<OperatorConfigShape>
}): Effect.Effect<TestOperator, never, Scope.Scope> =>
  Effect.gen(function*() {
    const metrics = yield* Metrics.make({ processMetrics: false })
    const { scanners } = options
    const scannersLayer: Layer.Layer<Scanners, never, KubeClient | Metrics | OperatorConfig> = Array.isArray(scanners)
      ? Layer.succeed(Scanners, scannersOf(scanners as ReadonlyArray<Scanner>))
      : typeof scanners === "function"
      ? Layer.effect(Scanners, Effect.gen(function*() { return scannersOf(scanners(yield* KubeClient)) }))
      : scanners as Layer.Layer<Scanners, never, KubeClient | Metrics | OperatorConfig>
    const layer = operatorLayer(scannersLayer).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          Layer.succeed(KubeClient, options.kube),
          Layer.succeed(Metrics, metrics),
          OperatorConfig.layer({ leaderElect: false, ...options.config })
        )
      )
    )
    const fiber = yield* runOperator.pipe(Effect.provide(layer), Effect.forkScoped)
    return { fiber, metrics }
  })

export const getRun = (name: string) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    return (yield* kube.get(Resources.ComplianceScanRun, testNamespace, name)) as unknown as ComplianceScanRun
  })

/** Polls (on the live clock) until the run reaches `phase`; fails after `within`. */
export const waitForPhase = (name: string, phases: ReadonlyArray<RunPhase>, within: Duration.Input = "20 seconds") =>
  getRun(name).pipe(
    Effect.repeat({
      schedule: Schedule.spaced("10 millis"),
      until: (run) => phases.includes(run.status?.phase ?? "")
    }),
    Effect.timeoutOrElse({
      duration: within,
      orElse: () =>
        getRun(name).pipe(
          Effect.flatMap((run) =>
            Effect.die(new Error(`run ${name} did not reach ${phases.join("|")}: status ${JSON.stringify(run.status)}`))
          )
        )
    })
  )

export const listResults = Effect.gen(function*() {
  const kube = yield* KubeClient
  const list = yield* kube.list(Resources.ComplianceScanResult, { namespace: testNamespace })
  return list.items as unknown as ReadonlyArray<ComplianceScanResult>
})

export const listSecurityEvents = Effect.gen(function*() {
  const kube = yield* KubeClient
  return (yield* kube.list(Resources.SecurityEvent)).items as unknown as ReadonlyArray<SecurityEvent>
})

/** The SecurityEvents of one run, by type. */
export const eventsOf = (run: ComplianceScanRun) =>
  listSecurityEvents.pipe(
    Effect.map((events) => events.filter((event) => event.spec.correlationID === run.metadata.uid))
  )
