import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { NodeScanStatus } from "../../../src/api/ComplianceScanRun.ts"
import type { BackendStatus } from "../../../src/backends/Scanner.ts"
import { coalescedProgress, progressInterval } from "../../../src/reconciler/CoalescedProgress.ts"

const nodes = (count: number, phase: NodeScanStatus["phase"] = "Pending"): ReadonlyArray<NodeScanStatus> =>
  Array.from({ length: count }, (_, index) => ({ name: `node-${index}`, job: `job-${index}`, phase }))

/** A backend's live state as kube-bench keeps it, and the progress writes that reach the "API server". */
const setup = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const written = yield* Ref.make<ReadonlyArray<BackendStatus>>([])
  const progress = yield* coalescedProgress(
    (status) => Ref.update(written, (all) => [...all, status]),
    () => Duration.seconds(5)
  ).pipe(Scope.provide(scope))
  const state = yield* Ref.make<ReadonlyArray<NodeScanStatus>>(nodes(3))
  const current = Effect.map(Ref.get(state), (list) => ({ nodes: list }))
  /** One node changes, and the backend says so. */
  const change = (index: number, phase: NodeScanStatus["phase"]) =>
    Ref.update(state, (list) => list.map((entry, at) => (at === index ? { ...entry, phase } : entry))).pipe(
      Effect.andThen(progress.reportProgress(current))
    )
  const phasesWritten = Effect.map(Ref.get(written), (all) => all.map((status) => status.nodes!.map((entry) => entry.phase)))
  return { scope, progress, change, phasesWritten }
})

/** Lets the writer fiber run what it can without moving the clock. */
const settle = Effect.yieldNow.pipe(Effect.repeat({ times: 20 }))

describe("coalescedProgress", () => {
  it.effect("writes the first change at once, then N changes within one interval as one write of the final state", () =>
    Effect.gen(function*() {
      const { change, phasesWritten, scope } = yield* setup
      yield* change(0, "Running")
      yield* settle
      expect(yield* phasesWritten).toEqual([["Running", "Pending", "Pending"]])

      for (const [index, phase] of [[1, "Running"], [2, "Running"], [0, "Succeeded"], [1, "Succeeded"], [2, "Failed"]] as const) {
        yield* change(index, phase)
        yield* TestClock.adjust("500 millis")
      }
      // 2.5 s into the 5 s interval: nothing more yet.
      expect(yield* phasesWritten).toHaveLength(1)
      yield* TestClock.adjust("2500 millis")
      yield* settle
      expect(yield* phasesWritten).toEqual([["Running", "Pending", "Pending"], ["Succeeded", "Succeeded", "Failed"]])

      // No change, no write, however long.
      yield* TestClock.adjust("1 minute")
      expect(yield* phasesWritten).toHaveLength(2)
      yield* Scope.close(scope, Exit.void)
      expect(yield* phasesWritten).toHaveLength(2)
    }))

  it.effect("the last state is written when the scan ends inside an interval (it failed, or was interrupted)", () =>
    Effect.gen(function*() {
      for (const exit of [Exit.fail("ScanFailed"), Exit.interrupt(1)]) {
        const { change, phasesWritten, scope } = yield* setup
        yield* change(0, "Running")
        yield* settle
        yield* change(0, "Succeeded")
        yield* change(1, "Failed")
        yield* TestClock.adjust("1 second")
        yield* Scope.close(scope, exit)
        expect(yield* phasesWritten).toEqual([["Running", "Pending", "Pending"], ["Succeeded", "Failed", "Pending"]])
      }
    }))

  it.effect("a scan that returned its backend status (written next by the reconciler) ends without a progress write", () =>
    Effect.gen(function*() {
      const { change, phasesWritten, progress, scope } = yield* setup
      yield* change(0, "Running")
      yield* settle
      yield* change(0, "Succeeded")
      yield* progress.supersede
      yield* Scope.close(scope, Exit.void)
      expect(yield* phasesWritten).toEqual([["Running", "Pending", "Pending"]])
    }))

  it("the interval grows with the entries (bytes per second bounded), between 2 and 30 s", () => {
    const millis = (count: number) => Duration.toMillis(progressInterval({ nodes: nodes(count) }))
    expect([millis(0), millis(100), millis(300), millis(1_000), millis(10_000)]).toEqual([2_000, 2_000, 3_000, 10_000, 30_000])
  })
})
