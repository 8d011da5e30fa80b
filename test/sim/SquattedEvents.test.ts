import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { securityEventName } from "../../src/services/SecurityEvents.ts"
import { listSecurityEvents, runManifest, startOperator, testCluster, testNamespace, waitForPhase } from "../support/TestOperator.ts"
import { squatter } from "../support/ForeignEvents.ts"
import { failingCheck, failingScanner, instantScanner } from "../support/TestScanners.ts"

describe("Unforgeable SecurityEvents", () => {
  it.live("foreign objects under a run's event names do not suppress its events: they go under the next name, counted", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const run = yield* kube.create(Resources.ComplianceScanRun, runManifest("squatted", { backend: "cel" }))
      const uid = run.metadata.uid!
      for (const type of ["ComplianceScanStarted", "ComplianceScanFailed"] as const) {
        yield* kube.create(Resources.SecurityEvent, squatter(securityEventName(uid, type), uid))
      }
      const operator = yield* startOperator({ kube, scanners: [failingScanner("cel", "CELCompileError", "bad rule")] })
      yield* waitForPhase("squatted", ["Failed"])

      const events = (yield* listSecurityEvents).filter((event) => event.spec.source.name === "compliance-scan")
      expect(events.map((event) => [event.metadata.name, event.spec.type]).sort()).toEqual([
        [`${securityEventName(uid, "ComplianceScanFailed")}-1`, "ComplianceScanFailed"],
        [`${securityEventName(uid, "ComplianceScanStarted")}-1`, "ComplianceScanStarted"]
      ])
      const failed = events.find((event) => event.spec.type === "ComplianceScanFailed")!
      expect(failed.spec).toMatchObject({ class: "Anomaly", severity: "high", subject: { uid } })
      // The squatters are left as they were.
      const foreign = (yield* listSecurityEvents).filter((event) => event.spec.source.name === "mallory")
      expect(foreign).toHaveLength(2)
      const squatted = (yield* Effect.promise(() => operator.metrics.securityEventsSquattedTotal.get())).values
      expect(Object.fromEntries(squatted.map((sample) => [sample.labels.type, sample.value]))).toEqual({
        ComplianceScanStarted: 1,
        ComplianceScanFailed: 1
      })
    }).pipe(Effect.provide(testCluster)))

  it.live("the operator's own event found under its name (a retry, another leader) counts as sent: no copy", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const run = yield* kube.create(Resources.ComplianceScanRun, runManifest("twice", { backend: "cel" }))
      const uid = run.metadata.uid!
      // As a previous leader wrote it before it died.
      const own = squatter(securityEventName(uid, "ComplianceScanStarted"), uid)
      yield* kube.create(Resources.SecurityEvent, {
        ...own,
        spec: {
          ...own.spec,
          source: { apiVersion: "security.ugallu.io/v1alpha1", kind: "Operator", name: "compliance-scan", version: "0.1.0", instance: "old-leader" },
          subject: { apiVersion: "security.ugallu.io/v1alpha1", kind: "ComplianceScanRun", name: "twice", namespace: testNamespace, uid }
        }
      })
      const operator = yield* startOperator({ kube, scanners: [instantScanner("cel", [failingCheck("r", "low")])] })
      yield* waitForPhase("twice", ["Succeeded"])
      const events = (yield* listSecurityEvents).filter((event) => event.spec.subject.uid === uid)
      expect(events.map((event) => [event.spec.type, event.spec.source.instance]).sort()).toEqual([
        ["ComplianceScanCompleted", "compliance-scan"],
        ["ComplianceScanStarted", "old-leader"]
      ])
      expect((yield* Effect.promise(() => operator.metrics.securityEventsSquattedTotal.get())).values).toEqual([])
    }).pipe(Effect.provide(testCluster)))
})
