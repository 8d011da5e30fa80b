import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { maxFailedAttempts } from "../../src/reconciler/Controller.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Invalid, NotFound } from "../../src/services/kube/KubeErrors.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { getRun, runManifest, startOperator, testCluster, testNamespace, waitForPhase } from "../support/TestOperator.ts"
import { instantScanner, passingCheck } from "../support/TestScanners.ts"

describe("Error policy around run fibers", () => {
  it.effect("a run that fails again and again (not an outage) ends Failed/InternalError with the cause, after back-off", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      yield* startOperator({ kube, scanners: [instantScanner("cel", [passingCheck("p")])] })
      // The Running patch is refused every time: something the operator did not expect.
      for (let i = 0; i < maxFailedAttempts; i++) {
        yield* sim.failNext("patch", new Invalid({ message: "status.phase: Unsupported value: \"Running\"" }))
      }
      yield* kube.create(Resources.ComplianceScanRun, runManifest("doomed", { backend: "cel" }))
      let phase: string | undefined
      let seconds = 0
      for (; seconds < 300 && phase !== "Failed"; seconds++) {
        yield* TestClock.adjust("1 second")
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow
        phase = (yield* getRun("doomed")).status?.phase
      }
      const run = yield* getRun("doomed")
      expect(run.status).toMatchObject({ phase: "Failed", reason: "InternalError" })
      expect(run.status?.message).toContain(`failed ${maxFailedAttempts} times`)
      expect(run.status?.message).toContain("Unsupported value")
      // Retried with back-off (1 + 2 + 4 + 8 s between the five attempts), not at once.
      expect(seconds).toBeGreaterThanOrEqual(15)
    }).pipe(Effect.provide(testCluster)))

  it.live("the periodic resync picks up a run whose fiber gave up on a stale read", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      yield* kube.create(Resources.ComplianceScanRun, runManifest("missed", { backend: "cel" }))
      // Started by an earlier leader: its fiber reads it first (a run not started yet starts
      // from the watch's copy without a read).
      yield* kube.patch(Resources.ComplianceScanRun, testNamespace, "missed", {
        status: { phase: "Running", startTime: new Date().toISOString() }
      }, { subresource: "status" })
      // The reconcile's first read says the run is gone: its fiber ends; no watch event follows.
      yield* sim.failNext("get", new NotFound({ message: "compliancescanruns \"missed\" not found" }))
      const readsBefore = (yield* sim.requestCounts).get
      yield* startOperator({ kube, scanners: [instantScanner("cel", [passingCheck("p")])], config: { resyncPeriodMillis: 300 } })
      // The operator's read took the NotFound (the test reads only after it).
      while ((yield* sim.requestCounts).get === readsBefore) yield* Effect.sleep("5 millis")
      yield* waitForPhase("missed", ["Succeeded"], "10 seconds")
    }).pipe(Effect.provide(testCluster)))
})
