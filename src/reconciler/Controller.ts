import { Context, Effect, FiberMap, Layer, Queue, Semaphore, Stream } from "effect"
import { isTerminal, type RunPhase } from "../api/ComplianceScanRun.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import { watchResource } from "../services/kube/ListWatch.ts"
import { Resources } from "../services/kube/Resources.ts"
import { backoff } from "../services/kube/Retry.ts"
import { OperatorConfig } from "../services/OperatorConfig.ts"
import { type RunKey, RunReconciler, runKeyString } from "./RunReconciler.ts"

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
          // What the watch last said of each run (deleted runs absent): a key that waited in
          // the queue while its run finished, or went away, needs no fiber and no GET.
          const runsWithWork = new Map<string, boolean>()
          const active = yield* FiberMap.make<string>()
          const permits = yield* Semaphore.make(config.maxConcurrentRuns)

          const enqueue = (key: RunKey) =>
            Effect.sync(() => {
              const id = runKeyString(key)
              if (queued.has(id)) return
              queued.add(id)
              Queue.offerUnsafe(queue, key)
            })

          const reconcileUntilDone = (key: RunKey) =>
            reconciler.reconcile(key).pipe(
              Effect.catchTag("NotFound", () => Effect.void),
              Effect.tapError((error) =>
                Effect.logWarning("reconcile failed; retrying with back-off", { error: error._tag, message: error.message })
              ),
              Effect.retry(backoff({ base: "1 second", cap: "1 minute" })),
              Effect.annotateLogs({ run: runKeyString(key) })
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
                return FiberMap.remove(active, id)
              }
              const hasWork = needsWork(event.object)
              runsWithWork.set(id, hasWork)
              return hasWork ? enqueue(key) : Effect.void
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
              if ((yield* FiberMap.has(active, id)) || runsWithWork.get(id) !== true) {
                return yield* Semaphore.release(permits, 1)
              }
              yield* FiberMap.run(
                active,
                id,
                reconcileUntilDone(key).pipe(Effect.ensuring(Semaphore.release(permits, 1)))
              )
            })
          )
        })
      )
      return Controller.of({ run })
    })
  )
}
