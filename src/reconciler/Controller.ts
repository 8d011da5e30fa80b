import { Cause, Context, Duration, Effect, Exit, FiberMap, Layer, Option, Queue, Semaphore, Stream } from "effect"
import { isTerminal, type RunPhase } from "../api/ComplianceScanRun.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import { listAll, watchResource } from "../services/kube/ListWatch.ts"
import { Resources } from "../services/kube/Resources.ts"
import { OperatorConfig } from "../services/OperatorConfig.ts"
import { type RunKey, RunReconciler, runKeyString } from "./RunReconciler.ts"

/** Failures (other than API outages) after which a run ends Failed/InternalError. */
export const maxFailedAttempts = 5

/** A run that has not reached a terminal phase is work to do. */
const needsWork = (object: KubeObject) => !isTerminal((object.status as { phase?: RunPhase } | undefined)?.phase)

/**
 * watch -> de-duplicating queue -> one supervised fiber per run (a FiberMap keyed by
 * namespace/name), at most `maxConcurrentRuns` at once. A run's fiber drives it to its
 * terminal phase; if it fails (the API server gone for minutes, say) it is retried with
 * back-off. Interrupting `run` (lost leadership, shutdown) interrupts every run fiber, whose
 * scanners' finalizers clean up; the next leader picks the runs up from their status.
 */
export class Controller extends Context.Service<
  Controller,
  { readonly run: Effect.Effect<never> }
>()("compliance-scan/reconciler/Controller") {
  static readonly layer = Layer.effect(
    Controller,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const reconciler = yield* RunReconciler
      const config = yield* OperatorConfig

      const run = Effect.scoped(
        Effect.gen(function*() {
          const queue = yield* Queue.unbounded<RunKey>()
          const queued = new Set<string>()
          // What the watch last said of each run with work (finished and deleted runs absent): a
          // key that waited in the queue while its run finished, or went away, needs no fiber and
          // no GET; a new run's fiber starts from this object instead of reading it again.
          const runsWithWork = new Map<string, KubeObject>()
          const active = yield* FiberMap.make<string>()
          const permits = yield* Semaphore.make(config.maxConcurrentRuns)
          const scope = yield* Effect.scope

          const enqueue = (key: RunKey) =>
            Effect.sync(() => {
              const id = runKeyString(key)
              if (queued.has(id)) return
              queued.add(id)
              Queue.offerUnsafe(queue, key)
            })

          /**
           * The error policy around a run's fiber: any failure, defects included, is logged with
           * the run's key and retried with back-off. API outages (Transient) are retried for as
           * long as they last; after `maxFailedAttempts` other failures the run ends
           * Failed/InternalError with the cause, so it never stays Running unnoticed.
           */
          const reconcileUntilDone = (key: RunKey, seen: KubeObject | undefined) =>
            Effect.gen(function*() {
              let attempts = 0
              let failures = 0
              while (true) {
                // The watched object on the first attempt only: a retry reads the run again.
                const exit = yield* Effect.exit(reconciler.reconcile(key, attempts === 0 ? seen : undefined))
                if (Exit.isSuccess(exit)) return
                const cause = exit.cause
                if (Cause.hasInterruptsOnly(cause)) return yield* Effect.failCause(cause)
                const error = Option.getOrUndefined(Cause.findErrorOption(cause))
                // Gone, or no longer ours to write (leadership lost: this fiber is about to stop).
                if (error?._tag === "NotFound" || error?._tag === "NotLeader") return
                attempts++
                if (error?._tag !== "Transient") failures++
                const described = error === undefined ? String(Cause.squash(cause)) : `${error._tag}: ${error.message}`
                if (failures >= maxFailedAttempts) {
                  yield* Effect.logError("reconcile failed too often; the run ends Failed/InternalError", {
                    attempts,
                    cause: Cause.pretty(cause)
                  })
                  return yield* reconciler.failInternal(
                    key,
                    `The operator failed ${failures} times to drive this run; last: ${described}`
                  ).pipe(Effect.catch((failed) => Effect.logError("could not end the run Failed", { error: failed.message })))
                }
                yield* (error?._tag === "Transient"
                  ? Effect.logWarning("reconcile failed on an API error; retrying with back-off", { attempts, error: described })
                  : Effect.logError("reconcile failed; retrying with back-off", { attempts, failures, cause: Cause.pretty(cause) }))
                yield* Effect.sleep(Duration.millis(Math.min(60_000, 1_000 * 2 ** Math.min(attempts - 1, 6))))
              }
            }).pipe(Effect.annotateLogs({ run: runKeyString(key) }))

          // A periodic re-list (controller-runtime's sync period): picks up any run a missed
          // event or a fiber that ended early left with work.
          const resync = Effect.gen(function*() {
            const { items } = yield* listAll(Resources.ComplianceScanRun, {
              ...(config.watchNamespace === undefined ? {} : { namespace: config.watchNamespace })
            })
            for (const object of items) {
              const id = runKeyString({ namespace: object.metadata.namespace!, name: object.metadata.name })
              if (!needsWork(object) || (yield* FiberMap.has(active, id))) continue
              runsWithWork.set(id, object)
              yield* enqueue({ namespace: object.metadata.namespace!, name: object.metadata.name })
            }
          }).pipe(
            Effect.catch((error) => Effect.logWarning("periodic resync failed", { error: error._tag, message: error.message })),
            Effect.provideService(KubeClient, kube)
          )
          yield* Effect.sleep(Duration.millis(config.resyncPeriodMillis)).pipe(
            Effect.andThen(resync),
            Effect.forever,
            Effect.forkScoped
          )

          yield* watchResource(Resources.ComplianceScanRun, {
            ...(config.watchNamespace === undefined ? {} : { namespace: config.watchNamespace })
          }).pipe(
            Stream.runForEach((event) => {
              if (event.type === "SYNCED") return Effect.void
              const key = { namespace: event.object.metadata.namespace!, name: event.object.metadata.name }
              const id = runKeyString(key)
              if (event.type === "DELETED") {
                runsWithWork.delete(id)
                // A deleted run stops scanning at once; its scanner's cleanup deletes its Jobs.
                // Then it is reported (in the background: the watch must not wait on the API).
                return FiberMap.remove(active, id).pipe(
                  Effect.andThen(Effect.forkIn(reconciler.deleted(event.object), scope))
                )
              }
              if (!needsWork(event.object)) {
                runsWithWork.delete(id)
                return Effect.void
              }
              runsWithWork.set(id, event.object)
              return enqueue(key)
            }),
            Effect.provideService(KubeClient, kube),
            Effect.forkScoped
          )

          return yield* Effect.forever(
            Effect.gen(function*() {
              const key = yield* Queue.take(queue)
              const id = runKeyString(key)
              queued.delete(id)
              yield* Semaphore.take(permits, 1)
              // Checked after the wait for a permit, since the run may have moved on meanwhile:
              // already driven by its own fiber, finished, or deleted.
              const seen = runsWithWork.get(id)
              if ((yield* FiberMap.has(active, id)) || seen === undefined) {
                return yield* Semaphore.release(permits, 1)
              }
              yield* FiberMap.run(
                active,
                id,
                reconcileUntilDone(key, seen).pipe(Effect.ensuring(Semaphore.release(permits, 1)))
              )
            })
          )
        })
      )
      return Controller.of({ run })
    })
  )
}
