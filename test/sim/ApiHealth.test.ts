import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { ApiHealth } from "../../src/services/ApiHealth.ts"
import { Forbidden } from "../../src/services/kube/KubeErrors.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { testCluster } from "../support/TestOperator.ts"

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

describe("API health for /readyz", () => {
  it.effect("not reachable while the API server refuses the credentials or cannot be reached; reachable again after", () =>
    Effect.gen(function*() {
      const sim = yield* SimulatedCluster
      const health = yield* ApiHealth
      yield* settle
      expect(yield* health.reachable).toBe(true)

      yield* sim.failNext("list", new Forbidden({ message: "Unauthorized" }))
      yield* TestClock.adjust("5 seconds")
      yield* settle
      expect(yield* health.reachable).toBe(false)

      yield* TestClock.adjust("5 seconds")
      yield* settle
      expect(yield* health.reachable).toBe(true)

      yield* sim.setFaults({ errorRate: 1 })
      yield* TestClock.adjust("5 seconds")
      yield* settle
      expect(yield* health.reachable).toBe(false)
    }).pipe(Effect.provide(ApiHealth.layer.pipe(Layer.provideMerge(testCluster)))))
})
