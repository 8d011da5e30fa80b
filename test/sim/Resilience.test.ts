import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { type ResourceType, Resources } from "../../src/services/kube/Resources.ts"
import {
  eventsOf,
  getRun,
  listResults,
  listSecurityEvents,
  runManifest,
  startOperator,
  testCluster,
  waitForPhase
} from "../support/TestOperator.ts"
import { failingCheck, hangingScanner, instantScanner, passingCheck } from "../support/TestScanners.ts"

type Write = { readonly verb: "create" | "patch" | "replace"; readonly resource: ResourceType; readonly body: unknown }

/**
 * A KubeClient that "crashes" the process right after the first write `at` matches: the
 * write lands, then the caller hangs forever (the test interrupts it), so nothing after
 * that point runs: exactly what a SIGKILL between two steps leaves behind.
 */
const crashingClient = (kube: KubeClient["Service"], at: (write: Write) => boolean, crashed: Deferred.Deferred<void>) => {
  let tripped = false
  const guard = <A, E>(write: Write, effect: Effect.Effect<A, E>) =>
    tripped
      ? Effect.never
      : Effect.tap(effect, () => {
        if (!at(write)) return Effect.void
        tripped = true
        return Deferred.succeed(crashed, undefined).pipe(Effect.andThen(Effect.never))
      })
  return KubeClient.of({
    ...kube,
    create: (resource, object) => guard({ verb: "create", resource, body: object }, kube.create(resource, object)),
    replace: (resource, object) => guard({ verb: "replace", resource, body: object }, kube.replace(resource, object)),
    patch: (resource, namespace, name, patch, options) =>
      guard({ verb: "patch", resource, body: patch }, kube.patch(resource, namespace, name, patch, options))
  })
}

const statusPhase = (body: unknown) => (body as { status?: { phase?: string } }).status?.phase
const eventType = (body: unknown) => ((body as KubeObject).spec as { type?: string } | undefined)?.type

const crashPoints: ReadonlyArray<readonly [string, (write: Write) => boolean]> = [
  ["after the Running patch", (w) => w.resource === Resources.ComplianceScanRun && statusPhase(w.body) === "Running"],
  ["after the Started event", (w) => eventType(w.body) === "ComplianceScanStarted"],
  ["after the Result", (w) => w.resource === Resources.ComplianceScanResult && w.verb === "patch"],
  ["after the Completed event, before the terminal patch", (w) => eventType(w.body) === "ComplianceScanCompleted"],
  ["after the terminal patch", (w) => w.resource === Resources.ComplianceScanRun && statusPhase(w.body) === "Succeeded"]
]

describe("Crash safety: an operator stopped at any step, then a new one", () => {
  for (const [step, at] of crashPoints) {
    it.live(`${step}: exactly one Result, one Started and one Completed event, Succeeded`, () =>
      Effect.gen(function*() {
        const kube = yield* KubeClient
        const checks = [failingCheck("rule-a", "high"), passingCheck("rule-b")]
        const crashed = yield* Deferred.make<void>()
        const firstScope = yield* Scope.make()
        yield* startOperator({ kube: crashingClient(kube, at, crashed), scanners: [instantScanner("cel", checks)] }).pipe(
          Scope.provide(firstScope)
        )
        yield* kube.create(Resources.ComplianceScanRun, runManifest("nightly", { backend: "cel" }))
        yield* Deferred.await(crashed)
        yield* Scope.close(firstScope, { _tag: "Success", value: undefined } as never)

        yield* startOperator({ kube, scanners: [instantScanner("cel", checks)] })
        const run = yield* waitForPhase("nightly", ["Succeeded"])
        expect(run.status).toMatchObject({ worstSeverity: "high", summary: { fail: 1, pass: 1 } })
        expect((yield* listResults).map((result) => result.metadata.name)).toEqual(["nightly"])
        const events = yield* eventsOf(run)
        expect(events.map((event) => event.spec.type).sort()).toEqual(["ComplianceScanCompleted", "ComplianceScanStarted"])
      }).pipe(Effect.provide(testCluster)))
  }
})

describe("Timeout", () => {
  it.effect("a hanging scan is interrupted at startTime + timeout, its cleanup runs, the run ends Failed/Timeout", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cleanups = yield* Ref.make(0)
      yield* startOperator({ kube, scanners: [hangingScanner("kube-bench", cleanups)] })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("stuck", { backend: "kube-bench", timeout: "5m" }))
      yield* settle
      expect((yield* getRun("stuck")).status?.phase).toBe("Running")
      yield* TestClock.adjust("4 minutes")
      yield* settle
      expect((yield* getRun("stuck")).status?.phase).toBe("Running")
      expect(yield* Ref.get(cleanups)).toBe(0)
      yield* TestClock.adjust("1 minute")
      yield* settle
      const run = yield* getRun("stuck")
      expect(run.status).toMatchObject({ phase: "Failed", reason: "Timeout" })
      expect(run.status?.message).toContain("5m")
      expect(yield* Ref.get(cleanups)).toBe(1)
      const [result] = yield* listResults
      expect(result!.spec.checks[0]).toMatchObject({ checkID: "scan.Timeout", outcome: "error" })
      expect((yield* listSecurityEvents).map((event) => event.spec.type).sort()).toEqual([
        "ComplianceScanFailed",
        "ComplianceScanStarted"
      ])
    }).pipe(Effect.provide(testCluster)))

  it.effect("after a restart the remaining time counts from status.startTime, not from the restart", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cleanups = yield* Ref.make(0)
      const starts = yield* Ref.make(0)
      const first = yield* startOperator({ kube, scanners: [hangingScanner("kube-bench", cleanups, starts)] })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("stuck", { backend: "kube-bench", timeout: "10m" }))
      yield* settle
      yield* TestClock.adjust("6 minutes")
      yield* Fiber.interrupt(first.fiber)
      expect((yield* getRun("stuck")).status?.phase).toBe("Running")

      yield* startOperator({ kube, scanners: [hangingScanner("kube-bench", cleanups, starts)] })
      yield* settle
      expect(yield* Ref.get(starts)).toBe(2)
      yield* TestClock.adjust("3 minutes")
      yield* settle
      expect((yield* getRun("stuck")).status?.phase).toBe("Running")
      yield* TestClock.adjust("1 minute")
      yield* settle
      expect((yield* getRun("stuck")).status).toMatchObject({ phase: "Failed", reason: "Timeout" })
    }).pipe(Effect.provide(testCluster)))
})

/** Lets every runnable fiber progress (the simulated API answers synchronously). */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})
