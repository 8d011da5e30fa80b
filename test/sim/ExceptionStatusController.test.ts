import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import type { ComplianceException } from "../../src/api/ComplianceException.ts"
import { ExceptionCache } from "../../src/exceptions/ExceptionCache.ts"
import { ExceptionStatusController, exceptionSyncMillis } from "../../src/exceptions/ExceptionStatusController.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { exceptionStates } from "../../src/services/KnownLabelValues.ts"
import { Metrics } from "../../src/services/Metrics.ts"
import { OperatorConfig } from "../../src/services/OperatorConfig.ts"
import { namespaceObject } from "../support/TestOperator.ts"

const day = 86_400_000
const start = Date.parse("2026-12-01T00:00:00Z")
const expiresAt = start + 10 * day

const layer = ExceptionStatusController.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(Metrics.layerTest, OperatorConfig.layer({}), ExceptionCache.layer)),
  Layer.provideMerge(SimulatedCluster.layer({ objects: [namespaceObject("ugallu-system")] }))
)

const exceptionObject = (name: string, expires: number): KubeObject => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceException",
  metadata: { name, namespace: "ugallu-system" },
  spec: {
    match: { checks: ["pss-baseline-privileged"], subjects: { names: ["cilium-*"] } },
    mode: "waive",
    justification: "The CNI must be privileged.",
    approvedBy: "security-team",
    expiresAt: new Date(expires).toISOString()
  }
})

const gauge = Effect.gen(function*() {
  const metrics = yield* Metrics
  const { body } = yield* metrics.render
  return Object.fromEntries(
    exceptionStates.map((state) => {
      const line = body.split("\n").find((entry) => entry.startsWith(`ugallu_compliance_scan_exceptions{state="${state}"} `))
      return [state, line === undefined ? undefined : Number(line.split(" ")[1])]
    })
  )
})

const eventTypes = Effect.gen(function*() {
  const kube = yield* KubeClient
  const { items } = yield* kube.list(Resources.SecurityEvent)
  return items.map((event) => (event.spec as { type: string }).type).sort()
})

const statusOf = (name: string) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    return ((yield* kube.get(Resources.ComplianceException, "ugallu-system", name)) as unknown as ComplianceException).status
  })

describe("ExceptionStatusController (simulated cluster, TestClock)", () => {
  it.effect("the exceptions gauge has every state at 0 from start-up", () =>
    Effect.gen(function*() {
      expect(yield* gauge).toEqual({ active: 0, expiring: 0, expired: 0, unused: 0 })
    }).pipe(Effect.provide(layer)))

  it.effect("Expiring 7 days before and Expired at expiresAt, each exactly once; status and gauge follow", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const kube = yield* KubeClient
      const controller = yield* ExceptionStatusController
      yield* kube.create(Resources.ComplianceException, exceptionObject("cni", expiresAt))

      // The next pass: the regular interval (the expiring boundary is days away).
      expect(yield* controller.syncOnce).toBe(start + exceptionSyncMillis)
      expect(yield* eventTypes).toEqual([])
      expect(yield* gauge).toEqual({ active: 1, expiring: 0, expired: 0, unused: 0 })
      const active = yield* statusOf("cni")
      expect(active?.conditions?.map((condition) => [condition.type, condition.status, condition.reason])).toEqual([
        ["Active", "True", "Active"],
        ["Expired", "False", "NotExpired"],
        ["Unused", "Unknown", "TooFewRuns"]
      ])
      expect(active?.matched).toBe(0)

      yield* TestClock.setTime(expiresAt - 7 * day - 1)
      yield* controller.syncOnce
      expect(yield* eventTypes).toEqual([])

      yield* TestClock.setTime(expiresAt - 7 * day)
      yield* controller.syncOnce
      yield* controller.syncOnce
      expect(yield* eventTypes).toEqual(["ComplianceExceptionExpiring"])
      expect(yield* gauge).toEqual({ active: 1, expiring: 1, expired: 0, unused: 0 })

      // A pass a moment before expiry wakes exactly at it.
      yield* TestClock.setTime(expiresAt - 1_000)
      expect(yield* controller.syncOnce).toBe(expiresAt)
      expect(yield* eventTypes).toEqual(["ComplianceExceptionExpiring"])

      yield* TestClock.setTime(expiresAt)
      yield* controller.syncOnce
      yield* TestClock.adjust("1 hour")
      yield* controller.syncOnce
      expect(yield* eventTypes).toEqual(["ComplianceExceptionExpired", "ComplianceExceptionExpiring"])
      expect(yield* gauge).toEqual({ active: 0, expiring: 0, expired: 1, unused: 0 })
      const expired = yield* statusOf("cni")
      expect(expired?.conditions?.find((condition) => condition.type === "Expired")).toMatchObject({
        status: "True",
        lastTransitionTime: new Date(expiresAt).toISOString()
      })

      // Renewed (a new expiry): its own Expiring event, once.
      const current = yield* kube.get(Resources.ComplianceException, "ugallu-system", "cni")
      yield* kube.replace(Resources.ComplianceException, { ...current, spec: { ...(current.spec as object), expiresAt: new Date(expiresAt + 5 * day).toISOString() } })
      yield* controller.syncOnce
      yield* controller.syncOnce
      expect(yield* eventTypes).toEqual(["ComplianceExceptionExpired", "ComplianceExceptionExpiring", "ComplianceExceptionExpiring"])
      expect(yield* gauge).toEqual({ active: 1, expiring: 1, expired: 0, unused: 0 })
    }).pipe(Effect.provide(layer)))
})
