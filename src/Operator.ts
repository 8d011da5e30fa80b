import { Effect, Layer } from "effect"
import type { Scanners } from "./backends/Scanner.ts"
import { ExceptionCache } from "./exceptions/ExceptionCache.ts"
import { ExceptionStatusController } from "./exceptions/ExceptionStatusController.ts"
import { Controller } from "./reconciler/Controller.ts"
import { RunReconciler } from "./reconciler/RunReconciler.ts"
import { ReportWriter } from "./reports/ReportWriter.ts"
import { ScheduleController } from "./schedules/ScheduleController.ts"
import { ScheduleMetrics } from "./schedules/ScheduleMetrics.ts"
import { ScheduleReconciler } from "./schedules/ScheduleReconciler.ts"
import { EventRecorder } from "./services/EventRecorder.ts"
import { FencedKubeClient } from "./services/kube/FencedKubeClient.ts"
import { LeaderElection } from "./services/LeaderElection.ts"
import { SecurityEvents } from "./services/SecurityEvents.ts"

/** ComplianceScanSchedules: runs on their schedules (src/schedules). */
const Scheduling = ScheduleController.layer.pipe(
  Layer.provideMerge(ScheduleReconciler.layer),
  Layer.provideMerge(ScheduleMetrics.layer)
)

const Reconciling = Layer.mergeAll(Controller.layer, ExceptionStatusController.layer, Scheduling).pipe(
  Layer.provideMerge(RunReconciler.layer),
  Layer.provideMerge(Layer.mergeAll(SecurityEvents.layer, EventRecorder.layer, ReportWriter.layer, ExceptionCache.layer))
)

/**
 * The operator's own services and the given Scanners over a KubeClient, Metrics and
 * OperatorConfig: swap those Layers to run it against a real API server or the simulated
 * cluster. Everything but leader election writes through the FencedKubeClient.
 */
export const operatorLayer = <E, R>(scanners: Layer.Layer<Scanners, E, R>) =>
  Reconciling.pipe(
    Layer.provideMerge(scanners),
    Layer.provide(FencedKubeClient.layer),
    Layer.provideMerge(LeaderElection.layer)
  )

/** Reconciles runs while this process leads (always, with leader election off); never returns. */
export const runOperator = Effect.gen(function*() {
  const leaderElection = yield* LeaderElection
  const controller = yield* Controller
  const exceptionStatus = yield* ExceptionStatusController
  const reports = yield* ReportWriter
  const schedules = yield* ScheduleController
  yield* Effect.logInfo("compliance-scan operator started")
  // Each new leader first looks for reports of runs deleted while no operator watched (in the background).
  return yield* leaderElection.whileLeader(
    Effect.andThen(
      Effect.forkChild(reports.sweepOrphans),
      Effect.raceAll([controller.run, exceptionStatus.run, schedules.run]) as Effect.Effect<never>
    )
  )
})
