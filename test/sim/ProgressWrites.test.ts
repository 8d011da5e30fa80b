import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { NodeScanStatus } from "../../src/api/ComplianceScanRun.ts"
import { ScanFailed, type ScanReport, type Scanner } from "../../src/backends/Scanner.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { getRun, runManifest, startOperator, testCluster, waitForPhase } from "../support/TestOperator.ts"
import { failingCheck } from "../support/TestScanners.ts"

const nodeCount = 50

/**
 * A kube-bench-like scanner: every node goes Pending -> Running -> Succeeded at once (150
 * progress changes within a few milliseconds, after the first), then the scan fails or succeeds.
 */
const busyScanner = (ends: "fails" | "succeeds"): Scanner => ({
  name: "kube-bench",
  scan: ({ reportProgress }) =>
    Effect.gen(function*() {
      const entries: Array<NodeScanStatus> = Array.from({ length: nodeCount }, (_, index) => ({ name: `node-${index}`, job: `job-${index}`, phase: "Pending" }))
      const current = Effect.sync(() => ({ nodes: entries.slice() }))
      yield* reportProgress(current)
      yield* Effect.sleep("20 millis")
      for (const [index, entry] of entries.entries()) {
        for (const phase of ["Running", "Succeeded"] as const) {
          entries[index] = { ...entry, phase }
          yield* reportProgress(current)
        }
      }
      if (ends === "fails") return yield* new ScanFailed({ reason: "NodeScanFailed", message: "one node failed" })
      return { checks: [failingCheck("1.1.1", "high")], backendStatus: { nodes: entries.slice() } } satisfies ScanReport
    })
})

/** The operator's KubeClient, counting the status patches that carry status.nodes. */
const countingNodePatches = (kube: KubeClient["Service"]) => {
  let count = 0
  const client: KubeClient["Service"] = {
    ...kube,
    patch: (resource, namespace, name, patch, options) =>
      Effect.suspend(() => {
        const status = (patch as { status?: { nodes?: unknown } }).status
        if (resource === Resources.ComplianceScanRun && status?.nodes !== undefined) count += 1
        return kube.patch(resource, namespace, name, patch, options)
      })
  }
  return { client, count: () => count }
}

/** Runs one busy scan to its end: the run as it ends and the writes of status.nodes it took. */
const runBusy = (name: string, ends: "fails" | "succeeds") =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const counting = countingNodePatches(kube)
    yield* startOperator({ kube: counting.client, scanners: [busyScanner(ends)] })
    yield* kube.create(Resources.ComplianceScanRun, runManifest(name, { backend: "kube-bench" }))
    yield* waitForPhase(name, [ends === "fails" ? "Failed" : "Succeeded"])
    const run = yield* getRun(name)
    return { nodes: run.status?.nodes ?? [], writes: counting.count() }
  })

describe("Reconciler: progress writes", () => {
  it.live("150 progress changes of a scan that then fails reach the run as two writes, the last with the final state", () =>
    Effect.gen(function*() {
      const { nodes, writes } = yield* runBusy("busy-failing", "fails")
      // The first change at once, the rest (inside the first interval) when the scan ended
      // (151 writes of the whole list before coalescing).
      expect(writes).toBeLessThanOrEqual(2)
      expect(nodes).toHaveLength(nodeCount)
      expect(new Set(nodes.map((node) => node.phase))).toEqual(new Set(["Succeeded"]))
    }).pipe(Effect.provide(testCluster)))

  it.live("a scan that succeeds has its final node list written with the Result, after one progress write", () =>
    Effect.gen(function*() {
      const { nodes, writes } = yield* runBusy("busy", "succeeds")
      // The first progress write, then the ResultWritten and terminal status writes (both carry
      // status.nodes); no progress write at the end.
      expect(writes).toBeLessThanOrEqual(3)
      expect(nodes).toHaveLength(nodeCount)
      expect(new Set(nodes.map((node) => node.phase))).toEqual(new Set(["Succeeded"]))
    }).pipe(Effect.provide(testCluster)))
})
