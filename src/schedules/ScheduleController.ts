import { Cause, Clock, Context, Deferred, Effect, Exit, FiberMap, Layer, Option, Queue, Stream } from "effect"
import { ScheduleLabel } from "../api/SeriesLabels.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { watchResource } from "../services/kube/ListWatch.ts"
import { Resources } from "../services/kube/Resources.ts"
import { OperatorConfig } from "../services/OperatorConfig.ts"
import { ScheduleMetrics } from "./ScheduleMetrics.ts"
import { ScheduleReconciler } from "./ScheduleReconciler.ts"

/** Schedules reconciled at once: passes are short (a create, a status patch), so a few suffice. */
const workers = 4

/** After a failed pass (an outage, a refused write) the schedule is looked at again this much later. */
const retryMillis = 5_000

const idOf = (namespace: string | undefined, name: string) => `${namespace ?? ""}/${name}`

/** resourceVersions are opaque, but the API server's are increasing integers: newer wins, else keep. */
const isNewer = (candidate: KubeObject, current: KubeObject | undefined) => {
  if (current === undefined) return true
  try {
    return BigInt(candidate.metadata.resourceVersion ?? "0") >= BigInt(current.metadata.resourceVersion ?? "0")
  } catch {
    return false
  }
}

/**
 * Schedules -> runs. Two watches (schedules; runs carrying the schedule label) keep what the
 * reconciler needs in memory, so a scheduled run costs the API a create and a status patch.
 * Each schedule is looked at when it or one of its runs changes, and at the time its pass
 * asked for (the next scheduled time plus jitter, or when it would turn Stale): one timer
 * fiber per schedule in a FiberMap, replaced by each pass. Passes start only once both
 * watches have listed everything, so a new leader sees the runs its predecessor created.
 */
export class ScheduleController extends Context.Service<
  ScheduleController,
  { readonly run: Effect.Effect<never> }
>()("compliance-scan/schedules/ScheduleController") {
  static readonly layer = Layer.effect(
    ScheduleController,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const reconciler = yield* ScheduleReconciler
      const metrics = yield* ScheduleMetrics
      const config = yield* OperatorConfig
      const selection = config.watchNamespace === undefined ? {} : { namespace: config.watchNamespace }

      const run = Effect.scoped(
        Effect.gen(function*() {
          const schedules = new Map<string, KubeObject>()
          const runsOf = new Map<string, Map<string, KubeObject>>()
          const queue = yield* Queue.unbounded<string>()
          const queued = new Set<string>()
          const processing = new Set<string>()
          const dirty = new Set<string>()
          const timers = yield* FiberMap.make<string>()
          const synced = new Set<string>()
          const ready = yield* Deferred.make<void>()
          // Leadership lost or shutdown: this process stops reporting schedules (the next leader does).
          yield* Effect.addFinalizer(() => Effect.sync(() => metrics.forgetAll()))

          const enqueue = (id: string) =>
            Effect.sync(() => {
              if (queued.has(id)) return
              queued.add(id)
              Queue.offerUnsafe(queue, id)
            })
          const markSynced = (what: string) =>
            Effect.suspend(() => {
              synced.add(what)
              return synced.size === 2 ? Deferred.succeed(ready, undefined) : Effect.void
            })

          yield* watchResource(Resources.ComplianceScanSchedule, selection).pipe(
            Stream.runForEach((event) => {
              if (event.type === "SYNCED") return markSynced("schedules")
              const id = idOf(event.object.metadata.namespace, event.object.metadata.name)
              if (event.type === "DELETED") {
                schedules.delete(id)
                metrics.forget({ namespace: event.object.metadata.namespace ?? "", schedule: event.object.metadata.name })
                return FiberMap.remove(timers, id)
              }
              schedules.set(id, event.object)
              return enqueue(id)
            }),
            Effect.provideService(KubeClient, kube),
            Effect.forkScoped
          )

          yield* watchResource(Resources.ComplianceScanRun, { ...selection, labelSelector: ScheduleLabel }).pipe(
            Stream.runForEach((event) => {
              if (event.type === "SYNCED") return markSynced("runs")
              const scheduleName = event.object.metadata.labels?.[ScheduleLabel]
              if (scheduleName === undefined) return Effect.void
              const id = idOf(event.object.metadata.namespace, scheduleName)
              const runs = runsOf.get(id) ?? new Map<string, KubeObject>()
              if (event.type === "DELETED") runs.delete(event.object.metadata.name)
              else runs.set(event.object.metadata.name, event.object)
              if (runs.size === 0) runsOf.delete(id)
              else runsOf.set(id, runs)
              return schedules.has(id) ? enqueue(id) : Effect.void
            }),
            Effect.provideService(KubeClient, kube),
            Effect.forkScoped
          )

          const wakeUpAt = (id: string, at: number) =>
            Effect.gen(function*() {
              const now = yield* Clock.currentTimeMillis
              yield* FiberMap.run(timers, id, Effect.sleep(Math.max(0, at - now)).pipe(Effect.andThen(enqueue(id))))
            })

          const pass = (id: string) =>
            Effect.gen(function*() {
              const schedule = schedules.get(id)
              if (schedule === undefined) return
              const exit = yield* Effect.exit(reconciler.reconcile(schedule, [...(runsOf.get(id)?.values() ?? [])]))
              if (Exit.isSuccess(exit)) {
                const stored = exit.value.schedule
                if (stored !== undefined && schedules.has(id) && isNewer(stored, schedules.get(id))) schedules.set(id, stored)
                if (exit.value.wakeAt === undefined) yield* FiberMap.remove(timers, id)
                else yield* wakeUpAt(id, exit.value.wakeAt)
                return
              }
              if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
              const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause))
              // No longer the leader: this fiber is about to be interrupted.
              if (error?._tag === "NotLeader") return
              yield* Effect.logWarning("schedule pass failed; trying again", {
                schedule: id,
                error: error === undefined ? Cause.pretty(exit.cause) : `${error._tag}: ${error.message}`
              })
              yield* wakeUpAt(id, (yield* Clock.currentTimeMillis) + retryMillis)
            })

          const worker = Effect.forever(
            Effect.gen(function*() {
              const id = yield* Queue.take(queue)
              queued.delete(id)
              // One pass per schedule at a time: a change during a pass runs another after it.
              if (processing.has(id)) {
                dirty.add(id)
                return
              }
              processing.add(id)
              yield* pass(id).pipe(
                Effect.ensuring(Effect.suspend(() => {
                  processing.delete(id)
                  return dirty.delete(id) ? enqueue(id) : Effect.void
                }))
              )
            })
          )

          yield* Deferred.await(ready)
          yield* Effect.logInfo("schedules listed; scheduling runs", { schedules: schedules.size })
          return yield* Effect.all(Array.from({ length: workers }, () => worker), { concurrency: "unbounded" }).pipe(
            Effect.andThen(Effect.never)
          )
        })
      )
      return ScheduleController.of({ run })
    })
  )
}
