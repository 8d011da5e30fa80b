import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { ComplianceScanResult } from "../../src/api/ComplianceScanResult.ts"
import { BaselineLabel } from "../../src/api/SeriesLabels.ts"
import { CelScanner } from "../../src/backends/cel/CelScanner.ts"
import { Scanners, scannersOf } from "../../src/backends/Scanner.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { securityEventName } from "../../src/services/SecurityEvents.ts"
import { eventsOf, namespaceObject, runManifest, startOperator, testNamespace, waitForPhase } from "../support/TestOperator.ts"

const pod = (name: string, image: string, runAsNonRoot?: boolean): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: testNamespace },
  spec: {
    ...(runAsNonRoot === undefined ? {} : { securityContext: { runAsNonRoot } }),
    containers: [{ name: "main", image }]
  }
})

/** Two rules over the Pods; `latestSeverity` is the severity of the image rule in that run. */
const celRun = (name: string, latestSeverity: string, labels: Record<string, string> = { [BaselineLabel]: "web" }) => {
  const manifest = runManifest(name, {
    backend: "cel",
    cel: {
      rules: [
        { id: "no-latest", severity: latestSeverity, expression: "!object.spec.containers.exists(c, c.image.endsWith(':latest'))" },
        {
          id: "run-as-non-root",
          severity: "high",
          expression: "has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot"
        }
      ]
    }
  })
  return { ...manifest, metadata: { ...manifest.metadata, labels } }
}

const scan = (name: string, latestSeverity: string, labels?: Record<string, string>) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    yield* kube.create(Resources.ComplianceScanRun, celRun(name, latestSeverity, labels))
    const run = yield* waitForPhase(name, ["Succeeded"])
    const result = (yield* kube.get(Resources.ComplianceScanResult, testNamespace, name)) as unknown as ComplianceScanResult
    const drift = yield* eventsOf(run).pipe(Effect.map((events) => events.filter((event) => event.spec.type === "ComplianceDriftDetected")))
    return { run, result, driftEvents: drift }
  })

/** An entry as `check subject` (severity, previous severity when it changed). */
const described = (entries: ReadonlyArray<{ checkID: string; subject?: string; severity: string; previousSeverity?: string }> | undefined) =>
  (entries ?? []).map((entry) => `${entry.checkID} ${entry.subject} ${entry.severity}${entry.previousSeverity === undefined ? "" : `<-${entry.previousSeverity}`}`)

const scanners = Layer.effect(Scanners, Effect.gen(function*() {
  return scannersOf([yield* CelScanner])
})).pipe(Layer.provide(CelScanner.layer()))

describe("Drift between the Results of a series", () => {
  it.live("CEL runs over Pods that change between scans: exact new/resolved/regressed/improved, one ComplianceDriftDetected per regressing run", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      yield* startOperator({ kube, scanners })

      // 1: both images pinned (the image rule passes as a whole); b runs as root.
      yield* sim.apply([pod("a", "nginx:1.25", true), pod("b", "nginx:1.25", false)])
      const first = yield* scan("web-1", "medium")
      expect(first.result.metadata.labels?.[BaselineLabel]).toBe("web")
      expect(first.result.status?.drift).toBeUndefined()
      expect(first.driftEvents).toEqual([])

      // 2: a now :latest (regressed: the image rule passed before), b non-root (resolved), c new and root (new).
      yield* sim.apply([pod("a", "nginx:latest", true), pod("b", "nginx:1.25", true), pod("c", "busybox:1.36")])
      const second = yield* scan("web-2", "medium")
      const drift2 = second.result.status?.drift
      expect(drift2?.previous.name).toBe("web-1")
      expect(drift2?.previous.completionTime).toBe(first.run.status?.completionTime)
      expect(described(drift2?.new)).toEqual(["run-as-non-root Pod/scans/c high"])
      expect(described(drift2?.resolved)).toEqual(["run-as-non-root Pod/scans/b high"])
      expect(described(drift2?.regressed)).toEqual(["no-latest Pod/scans/a medium"])
      expect(drift2?.improved).toEqual([])
      expect(drift2?.counts).toEqual({ new: 1, resolved: 1, regressed: 1, improved: 0, unchanged: 0 })
      expect(second.driftEvents).toHaveLength(1)
      expect(second.driftEvents[0]!.metadata.name).toBe(securityEventName(second.run.metadata.uid!, "ComplianceDriftDetected"))
      // medium is below alertOn (high): a compliance matter, not a detection.
      expect(second.driftEvents[0]!.spec).toMatchObject({
        class: "Compliance",
        severity: "medium",
        signals: { previousResult: "web-1", regressed: "1", new: "1", resolved: "1", improved: "0", regressedChecks: "no-latest Pod/scans/a" }
      })

      // 3: nothing changes but the image rule is now critical: a's finding regresses by severity.
      const third = yield* scan("web-3", "critical")
      expect(described(third.result.status?.drift?.regressed)).toEqual(["no-latest Pod/scans/a critical<-medium"])
      expect(third.result.status?.drift?.counts).toEqual({ new: 0, resolved: 0, regressed: 1, improved: 0, unchanged: 1 })
      expect(third.driftEvents.map((event) => [event.spec.class, event.spec.severity])).toEqual([["Detection", "critical"]])

      // 4: back to medium: improved, no regression, no event.
      const fourth = yield* scan("web-4", "medium")
      expect(described(fourth.result.status?.drift?.improved)).toEqual(["no-latest Pod/scans/a medium<-critical"])
      expect(fourth.result.status?.drift?.counts).toEqual({ new: 0, resolved: 0, regressed: 0, improved: 1, unchanged: 1 })
      expect(fourth.driftEvents).toEqual([])

      // 5: unchanged: an empty drift, no event.
      const fifth = yield* scan("web-5", "medium")
      expect(fifth.result.status?.drift?.counts).toEqual({ new: 0, resolved: 0, regressed: 0, improved: 0, unchanged: 2 })
      expect(fifth.driftEvents).toEqual([])

      // A run outside the series (no label) and one of another baseline: no drift, whatever changed.
      yield* sim.apply([pod("d", "redis:latest", true)])
      const loose = yield* scan("loose", "medium", {})
      expect(loose.result.status?.drift).toBeUndefined()
      const other = yield* scan("other-1", "medium", { [BaselineLabel]: "other" })
      expect(other.result.status?.drift).toBeUndefined()
      expect(other.driftEvents).toEqual([])
      // Exactly one drift event per regressing run across the whole sequence.
      const all = (yield* kube.list(Resources.SecurityEvent)).items.filter((event) => (event.spec as { type: string }).type === "ComplianceDriftDetected")
      expect(all).toHaveLength(2)
    }).pipe(Effect.provide(SimulatedCluster.layer({ objects: [namespaceObject(testNamespace)] }))), 60_000)
})
