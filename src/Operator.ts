import { Effect, Layer } from "effect"
import { Controller } from "./reconciler/Controller.ts"
import { RunReconciler } from "./reconciler/RunReconciler.ts"
import { EventRecorder } from "./services/EventRecorder.ts"
import { LeaderElection } from "./services/LeaderElection.ts"
import { SecurityEvents } from "./services/SecurityEvents.ts"

/**
 * The operator's own services over a KubeClient, Scanners, Metrics and OperatorConfig:
 * swap those Layers to run it against a real API server or the simulated cluster.
 */
export const OperatorLayer = Controller.layer.pipe(
  Layer.provideMerge(RunReconciler.layer),
  Layer.provideMerge(Layer.mergeAll(SecurityEvents.layer, EventRecorder.layer, LeaderElection.layer))
)

/** Reconciles runs while this process leads (always, with leader election off); never returns. */
export const runOperator = Effect.gen(function*() {
  const leaderElection = yield* LeaderElection
  const controller = yield* Controller
  yield* Effect.logInfo("compliance-scan operator started")
  return yield* leaderElection.whileLeader(controller.run)
})
