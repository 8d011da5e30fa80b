import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import type { ComplianceScanRun } from "../../src/api/ComplianceScanRun.ts"
import type { Scanner } from "../../src/backends/Scanner.ts"
import { KubeBenchScanner } from "../../src/backends/kube-bench/KubeBenchScanner.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { TooLarge, Transient } from "../../src/services/kube/KubeErrors.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { listResults, listSecurityEvents, runManifest, startOperator, testCluster, testNamespace, waitForPhase } from "../support/TestOperator.ts"
import { failingCheck, instantScanner, passingCheck } from "../support/TestScanners.ts"
import { namespace, node, sampleReport, simulation } from "./kube-bench/KubeBenchSimulation.ts"

const runStatus = (name: string) =>
  Effect.gen(function*() {
    const sim = yield* SimulatedCluster
    const runs = yield* sim.objects(Resources.ComplianceScanRun, testNamespace)
    return (runs.find((run) => run.metadata.name === name) as unknown as ComplianceScanRun | undefined)?.status
  })

/** Moves the test clock a second at a time (letting fibers run) until the run is terminal. */
const driveUntilTerminal = (name: string, maxSeconds = 600) =>
  Effect.gen(function*() {
    for (let second = 0; second < maxSeconds; second++) {
      const phase = (yield* runStatus(name))?.phase
      if (phase === "Succeeded" || phase === "Failed") return phase
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow
    }
    return (yield* runStatus(name))?.phase
  })

const settle = Effect.gen(function*() {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})

const stepsOf = (status: ComplianceScanRun["status"]) =>
  Object.fromEntries((status?.conditions ?? []).map((condition) => [condition.type, condition.status]))

describe("Resumable steps", () => {
  it.effect("a Result write that keeps failing is retried at the write, until the deadline: the scan runs once", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      const scans = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      const gated: Scanner = {
        name: "cel",
        scan: () =>
          Ref.update(scans, (n) => n + 1).pipe(Effect.andThen(Deferred.await(release)), Effect.as({ checks: [failingCheck("r", "high")] }))
      }
      yield* startOperator({ kube, scanners: [gated] })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("stubborn", { backend: "cel", timeout: "10m" }))
      while ((yield* Ref.get(scans)) === 0) yield* settle
      // The scan is under way; the next 40 creates (the Result's) fail as an API server that is down would.
      for (let i = 0; i < 40; i++) yield* sim.failNext("create", new Transient({ message: "connect ECONNREFUSED 127.0.0.1:6443" }))
      yield* Deferred.succeed(release, undefined)
      yield* settle
      // While the write is retried, the status says so: scanned, not written, still Running.
      const waiting = yield* runStatus("stubborn")
      expect(waiting?.phase).toBe("Running")
      expect(stepsOf(waiting)).toEqual({ Succeeded: "Unknown", Scanned: "True", ResultWritten: "False" })
      expect(waiting?.conditions?.find((condition) => condition.type === "ResultWritten")).toMatchObject({
        reason: "Retrying",
        message: expect.stringContaining("ECONNREFUSED")
      })
      expect(yield* listResults).toHaveLength(0)
      expect(yield* driveUntilTerminal("stubborn")).toBe("Succeeded")
      expect(yield* Ref.get(scans)).toBe(1)
      expect(stepsOf(yield* runStatus("stubborn"))).toEqual({
        Succeeded: "True",
        Scanned: "True",
        ResultWritten: "True",
        ReportsWritten: "True",
        EventsEmitted: "True"
      })
      expect(yield* listResults).toHaveLength(1)
    }).pipe(Effect.provide(testCluster)))

  it.effect("a Result refused as too large ends the run Failed/ResultTooLarge at once and frees its slot", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      const release = yield* Deferred.make<void>()
      const scans = yield* Ref.make(0)
      const gated: Scanner = {
        name: "cel",
        scan: () =>
          Ref.update(scans, (n) => n + 1).pipe(Effect.andThen(Deferred.await(release)), Effect.as({ checks: [passingCheck("p")] }))
      }
      yield* startOperator({ kube, scanners: [gated], config: { maxConcurrentRuns: 1 } })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("huge", { backend: "cel", timeout: "30m" }))
      while ((yield* Ref.get(scans)) === 0) yield* settle
      yield* kube.create(Resources.ComplianceScanRun, runManifest("next", { backend: "cel" }))
      yield* sim.failNext("create", new TooLarge({ message: "etcdserver: request is too large" }))
      yield* Deferred.succeed(release, undefined)
      // Within seconds (of a 30 minute timeout), and the next run flows through the one slot.
      expect(yield* driveUntilTerminal("huge", 5)).toBe("Failed")
      const failed = yield* runStatus("huge")
      expect(failed).toMatchObject({ phase: "Failed", reason: "ResultTooLarge", summary: { pass: 1 } })
      expect(failed?.message).toContain("etcdserver: request is too large")
      expect(stepsOf(failed)).toMatchObject({ Scanned: "True", ResultWritten: "False" })
      expect(yield* driveUntilTerminal("next", 5)).toBe("Succeeded")
      const events = yield* listSecurityEvents
      expect(events.filter((event) => event.spec.subject.name === "huge").map((event) => event.spec.type).sort()).toEqual([
        "ComplianceScanFailed",
        "ComplianceScanStarted"
      ])
    }).pipe(Effect.provide(testCluster)))

  it.live("a run whose Result is already written (a previous leader's work) is finished without scanning again", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const scans = yield* Ref.make(0)
      const created = yield* kube.create(Resources.ComplianceScanRun, runManifest("resumed", { backend: "cel" }))
      const now = new Date().toISOString()
      const condition = (type: string, reason: string) => ({ type, status: "True", reason, message: "", lastTransitionTime: now })
      yield* kube.patch(Resources.ComplianceScanRun, testNamespace, "resumed", {
        status: {
          phase: "Running",
          startTime: now,
          summary: { pass: 3, fail: 2, warn: 0, skip: 0, error: 0 },
          worstSeverity: "critical",
          resultRef: { name: "resumed" },
          conditions: [
            { ...condition("Succeeded", "Running"), status: "Unknown" },
            condition("Scanned", "ScanCompleted"),
            condition("ResultWritten", "ResultWritten")
          ]
        }
      }, { subresource: "status" })
      yield* startOperator({ kube, scanners: [instantScanner("cel", [passingCheck("p")], scans)] })
      const run = yield* waitForPhase("resumed", ["Succeeded"])
      expect(yield* Ref.get(scans)).toBe(0)
      expect(run.status).toMatchObject({ reason: "ScanCompleted", worstSeverity: "critical", summary: { fail: 2 } })
      const completed = (yield* listSecurityEvents).filter((event) => event.spec.subject.uid === created.metadata.uid && event.spec.type === "ComplianceScanCompleted")
      expect(completed).toHaveLength(1)
      expect(completed[0]!.spec).toMatchObject({ class: "Detection", severity: "critical" })
    }).pipe(Effect.provide(testCluster)))

  it.live("a crash after the Result's status is written: the next process finishes the run from the stored Result, without scanning", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(Resources.ComplianceScanRun, runManifest("stored", { backend: "cel" }))
      // The first process hangs (then dies) on the first write after the Result: the Completed event.
      const hangsAfterResult: KubeClient["Service"] = {
        ...kube,
        create: (resource, object) =>
          resource.kind === "SecurityEvent" && (object.spec as { type?: string }).type === "ComplianceScanCompleted" ? Effect.never : kube.create(resource, object)
      }
      const firstScans = yield* Ref.make(0)
      const first = yield* startOperator({ kube: hangsAfterResult, scanners: [instantScanner("cel", [failingCheck("f", "high"), passingCheck("p")], firstScans)] })
      const stored = yield* listResults.pipe(
        Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (results) => results[0]?.status?.conditions?.some((condition) => condition.type === "Scanned") === true }),
        Effect.timeout("10 seconds")
      )
      yield* Fiber.interrupt(first.fiber)
      expect(yield* Ref.get(firstScans)).toBe(1)
      // Nothing in the run's status says the Result is written: it is found by its name and run uid.
      expect(stepsOf(yield* runStatus("stored"))).toEqual({ Succeeded: "Unknown" })

      const secondScans = yield* Ref.make(0)
      yield* startOperator({ kube, scanners: [instantScanner("cel", [passingCheck("p")], secondScans)] })
      const run = yield* waitForPhase("stored", ["Succeeded"])
      expect(yield* Ref.get(secondScans)).toBe(0)
      expect(run.status).toMatchObject({ reason: "ScanCompleted", worstSeverity: "high", summary: { fail: 1, pass: 1 }, resultRef: { name: "stored" } })
      const scanned = stored[0]!.status!.conditions!.find((condition) => condition.type === "Scanned")!
      expect(run.status?.conditions?.find((condition) => condition.type === "Scanned")).toEqual(scanned)
      expect(stepsOf(run.status)).toMatchObject({ Scanned: "True", ResultWritten: "True", EventsEmitted: "True" })
      expect(yield* listResults).toHaveLength(1)
      const completed = (yield* listSecurityEvents).filter((event) => event.spec.subject.uid === created.metadata.uid && event.spec.type === "ComplianceScanCompleted")
      expect(completed).toHaveLength(1)
    }).pipe(Effect.provide(testCluster)))

  it.live("a crash between the Result's create and its status: the next process scans again and overwrites it", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(Resources.ComplianceScanRun, runManifest("half", { backend: "cel" }))
      const hangsOnResultStatus: KubeClient["Service"] = {
        ...kube,
        patch: (resource, namespace, name, patch, options) =>
          resource.kind === "ComplianceScanResult" ? Effect.never : kube.patch(resource, namespace, name, patch, options)
      }
      const first = yield* startOperator({ kube: hangsOnResultStatus, scanners: [instantScanner("cel", [failingCheck("f", "high")])] })
      yield* listResults.pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (results) => results.length === 1 }), Effect.timeout("10 seconds"))
      yield* Fiber.interrupt(first.fiber)

      const scans = yield* Ref.make(0)
      yield* startOperator({ kube, scanners: [instantScanner("cel", [passingCheck("p")], scans)] })
      const run = yield* waitForPhase("half", ["Succeeded"])
      // The stored Result had no Scanned condition (its status was never written): not a resume point.
      expect(yield* Ref.get(scans)).toBe(1)
      expect(run.status).toMatchObject({ summary: { pass: 1, fail: 0 } })
      const results = yield* listResults
      expect(results.map((result) => result.spec.summary.pass)).toEqual([1])
      expect(results[0]!.status?.conditions?.some((condition) => condition.type === "Scanned")).toBe(true)
    }).pipe(Effect.provide(testCluster)))

  it.effect("kube-bench: a Result write failing after the scan resumes at the write; each Job is created once", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      const scanner = yield* KubeBenchScanner
      const executions = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      yield* sim.apply([namespace(testNamespace)])
      yield* sim.setJobExecutor(() =>
        Ref.update(executions, (n) => n + 1).pipe(
          Effect.andThen(Deferred.await(release)),
          Effect.as({ _tag: "Succeeded" as const, log: sampleReport })
        )
      )
      yield* startOperator({ kube, scanners: [scanner], config: { jobNamespace: "ugallu-system-privileged" } })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("cis", { backend: "kube-bench", benchmark: "cis-1.10", timeout: "10m" }))
      while ((yield* Ref.get(executions)) < 2) {
        yield* TestClock.adjust("10 millis")
        yield* settle
      }
      for (let i = 0; i < 40; i++) yield* sim.failNext("create", new Transient({ message: "HTTP 503: the server is currently unable to handle the request" }))
      yield* Deferred.succeed(release, undefined)
      expect(yield* driveUntilTerminal("cis")).toBe("Succeeded")
      // One Job per node, each run once: the scan was not repeated when the write failed.
      expect(yield* Ref.get(executions)).toBe(2)
      expect(stepsOf(yield* runStatus("cis"))).toMatchObject({ Scanned: "True", ResultWritten: "True" })
    }).pipe(Effect.provide(simulation({ nodes: [node("node-1"), node("node-2")], executor: () => Effect.never }))))
})
