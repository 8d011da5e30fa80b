import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Transient } from "../../src/services/kube/KubeErrors.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import {
  listResults,
  listSecurityEvents,
  runManifest,
  startOperator,
  testCluster,
  testNamespace,
  waitForPhase
} from "../support/TestOperator.ts"
import { failingCheck, instantScanner, passingCheck } from "../support/TestScanners.ts"
import type { ComplianceScanRun } from "../../src/api/ComplianceScanRun.ts"
import type { Scanner } from "../../src/backends/Scanner.ts"

const listRuns = Effect.gen(function*() {
  const kube = yield* KubeClient
  return (yield* kube.list(Resources.ComplianceScanRun, { namespace: testNamespace })).items as unknown as ReadonlyArray<
    ComplianceScanRun
  >
})

const leaseHolder = Effect.gen(function*() {
  const kube = yield* KubeClient
  const lease = yield* Effect.result(kube.get(Resources.Lease, testNamespace, "ugallu-compliance-scan-leader"))
  return lease._tag === "Success" ? (lease.success.spec as { holderIdentity?: string }).holderIdentity : undefined
})

const waitUntil = <E, R>(condition: Effect.Effect<boolean, E, R>, within: string) =>
  condition.pipe(
    Effect.repeat({ schedule: Schedule.spaced("25 millis"), until: (done) => done }),
    Effect.timeoutOrElse({ duration: within as "1 second", orElse: () => Effect.die(new Error(`not reached within ${within}`)) })
  )

describe("Faults", () => {
  it.live("with 20% of API calls failing and watches dropping, 200 runs all finish correctly, once each", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      const checks = [failingCheck("r", "critical"), passingCheck("p")]
      yield* startOperator({ kube, scanners: [instantScanner("cel", checks)], config: { maxConcurrentRuns: 20 } })
      for (let i = 0; i < 200; i++) {
        yield* sim.apply([runManifest(`run-${String(i).padStart(3, "0")}`, { backend: "cel" })])
      }
      yield* sim.setFaults({ errorRate: 0.2, seed: 7 })
      const dropper = yield* sim.dropWatches.pipe(Effect.repeat(Schedule.spaced("50 millis")), Effect.forkChild)
      yield* waitUntil(
        Effect.map(sim.objects(Resources.ComplianceScanRun, testNamespace), (runs) =>
          runs.every((run) => (run.status as { phase?: string } | undefined)?.phase === "Succeeded")),
        "60 seconds"
      )
      yield* Fiber.interrupt(dropper)
      yield* sim.setFaults({ errorRate: 0 })

      const runs = yield* listRuns
      expect(runs).toHaveLength(200)
      expect(runs.every((run) => run.status?.worstSeverity === "critical" && run.status.summary?.fail === 1)).toBe(true)
      expect((yield* listResults).length).toBe(200)
      const events = yield* listSecurityEvents
      const perType = new Map<string, number>()
      for (const event of events) perType.set(event.spec.type, (perType.get(event.spec.type) ?? 0) + 1)
      expect(Object.fromEntries(perType)).toEqual({ ComplianceScanStarted: 200, ComplianceScanCompleted: 200 })
      const completed = events.filter((event) => event.spec.type === "ComplianceScanCompleted")
      expect(completed.every((event) => event.spec.class === "Detection")).toBe(true)
      const counts = yield* sim.requestCounts
      expect(counts.watch).toBeGreaterThan(1)
    }).pipe(Effect.provide(testCluster)), 90_000)

  it.effect("a run keeps being retried with back-off while the API server fails it, and finishes when it recovers", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      yield* startOperator({ kube, scanners: [instantScanner("cel", [passingCheck("p")])] })
      // More failures than one round of request retries: the controller's requeue must carry it.
      for (let i = 0; i < 30; i++) yield* sim.failNext("patch", new Transient({ message: "etcdserver: request timed out" }))
      yield* kube.create(Resources.ComplianceScanRun, runManifest("patient", { backend: "cel" }))
      let phase: string | undefined
      for (let second = 0; second < 600 && phase !== "Succeeded"; second++) {
        yield* TestClock.adjust("1 second")
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow
        const run = yield* sim.objects(Resources.ComplianceScanRun, testNamespace)
        phase = (run[0]?.status as { phase?: string } | undefined)?.phase
      }
      expect(phase).toBe("Succeeded")
      expect((yield* sim.requestCounts).patch).toBeGreaterThan(30)
    }).pipe(Effect.provide(testCluster)))
})

describe("Leader election", () => {
  const fast = {
    leaderElect: true,
    leaderElectionNamespace: testNamespace,
    leaseDurationMillis: 600,
    renewDeadlineMillis: 400,
    retryPeriodMillis: 100
  }

  it.live("only the leader acts; when it dies the other takes over and finishes the in-flight runs without duplicates", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const scansA = yield* Ref.make(0)
      const scansB = yield* Ref.make(0)
      // A's scans take a while, so runs are in flight when it dies.
      const slow = (scans: Ref.Ref<number>): Scanner => ({
        name: "cel",
        scan: () => Ref.update(scans, (n) => n + 1).pipe(Effect.andThen(Effect.sleep("300 millis")), Effect.as({ checks: [passingCheck("p")] }))
      })
      const a = yield* startOperator({ kube, scanners: [slow(scansA)], config: { ...fast, identity: "operator-a" } })
      yield* waitUntil(Effect.map(leaseHolder, (holder) => holder === "operator-a"), "5 seconds")
      const b = yield* startOperator({ kube, scanners: [instantScanner("cel", [passingCheck("p")], scansB)], config: { ...fast, identity: "operator-b" } })
      for (let i = 0; i < 6; i++) yield* kube.create(Resources.ComplianceScanRun, runManifest(`lead-${i}`, { backend: "cel" }))
      yield* waitUntil(Effect.map(Ref.get(scansA), (n) => n > 0), "5 seconds")
      expect(yield* Ref.get(scansB)).toBe(0)

      // A dies without releasing the Lease (a crash): B waits out the lease duration.
      const killedAt = Date.now()
      yield* Fiber.interrupt(a.fiber)
      for (let i = 0; i < 6; i++) yield* waitForPhase(`lead-${i}`, ["Succeeded"], "10 seconds")
      expect(yield* leaseHolder).toBe("operator-b")
      expect(yield* Ref.get(scansB)).toBeGreaterThan(0)
      expect(Date.now() - killedAt).toBeLessThan(5_000)
      const events = yield* listSecurityEvents
      expect(events.filter((event) => event.spec.type === "ComplianceScanStarted")).toHaveLength(6)
      expect(events.filter((event) => event.spec.type === "ComplianceScanCompleted")).toHaveLength(6)
      expect((yield* listResults)).toHaveLength(6)
      expect(b.fiber.pollUnsafe()).toBeUndefined()
    }).pipe(Effect.provide(testCluster)), 30_000)

  it.live("losing the Lease interrupts every run of the old leader", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      const cleanups = yield* Ref.make(0)
      const hanging: Scanner = {
        name: "cel",
        scan: () => Effect.addFinalizer(() => Ref.update(cleanups, (n) => n + 1)).pipe(Effect.andThen(Effect.never))
      }
      const a = yield* startOperator({ kube, scanners: [hanging], config: { ...fast, identity: "operator-a" } })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("long", { backend: "cel" }))
      yield* waitForPhase("long", ["Running"], "5 seconds")
      // The API server stops answering A's renewals: it must step down within the renew deadline.
      yield* sim.setFaults({ errorRate: 1 })
      yield* waitUntil(Effect.map(Ref.get(cleanups), (n) => n === 1), "5 seconds")
      yield* sim.setFaults({ errorRate: 0 })
      expect(a.fiber.pollUnsafe()).toBeUndefined()
    }).pipe(Effect.provide(testCluster)), 30_000)

  it.live("a renewal that hangs is cut at the renew deadline: the leader steps down and its writes are refused", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      const cleanupWrite = yield* Ref.make<string | undefined>(undefined)
      // The run's cleanup tries to write after leadership is lost: the fence must refuse it.
      const hanging = (operatorKube: KubeClient["Service"]): Scanner => ({
        name: "cel",
        scan: () =>
          Effect.addFinalizer(() =>
            Effect.result(operatorKube.delete(Resources.Job, testNamespace, "anything")).pipe(
              Effect.flatMap((result) => Ref.set(cleanupWrite, result._tag === "Failure" ? result.failure._tag : "written"))
            )
          ).pipe(Effect.andThen(Effect.never))
      })
      const a = yield* startOperator({ kube, scanners: (operatorKube) => [hanging(operatorKube)], config: { ...fast, identity: "operator-a" } })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("long", { backend: "cel" }))
      yield* waitForPhase("long", ["Running"], "5 seconds")
      // Every request now hangs for a minute (a partition): the request timeout never fires in time.
      const frozenAt = Date.now()
      yield* sim.setFaults({ latency: "60 seconds" })
      yield* waitUntil(Effect.map(Ref.get(cleanupWrite), (written) => written !== undefined), "5 seconds")
      const steppedDown = Date.now() - frozenAt
      expect(yield* Ref.get(cleanupWrite)).toBe("NotLeader")
      expect((yield* Effect.promise(() => a.metrics.isLeader.get())).values[0]?.value).toBe(0)
      // Within the renew deadline of the last renewal (at most a retry period before the freeze).
      expect(steppedDown).toBeLessThan(fast.renewDeadlineMillis + 300)
      yield* sim.setFaults({ latency: 0 })
    }).pipe(Effect.provide(testCluster)), 30_000)

  it.live("a graceful shutdown releases the Lease at once", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const a = yield* startOperator({ kube, scanners: [], config: { ...fast, leaseDurationMillis: 60_000, identity: "operator-a" } })
      yield* waitUntil(Effect.map(leaseHolder, (holder) => holder === "operator-a"), "5 seconds")
      yield* Fiber.interrupt(a.fiber)
      expect(yield* leaseHolder).toBe("")
      const b = yield* startOperator({ kube, scanners: [], config: { ...fast, leaseDurationMillis: 60_000, identity: "operator-b" } })
      yield* waitUntil(Effect.map(leaseHolder, (holder) => holder === "operator-b"), "2 seconds")
      expect(b.fiber.pollUnsafe()).toBeUndefined()
    }).pipe(Effect.provide(testCluster)), 30_000)
})

