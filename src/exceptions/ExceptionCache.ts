import { Context, Effect, Layer, Ref, Stream } from "effect"
import type { ComplianceException } from "../api/ComplianceException.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import type { KubeError } from "../services/kube/KubeErrors.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { watchResource } from "../services/kube/ListWatch.ts"
import { Resources } from "../services/kube/Resources.ts"
import { decodeExceptions, listExceptions } from "./ExceptionList.ts"

const keyOf = (object: KubeObject) => `${object.metadata.namespace ?? ""}/${object.metadata.name}`

/**
 * Every ComplianceException as the operator's watch last delivered it (an informer's store,
 * as controller-runtime's cached client reads), so that a run applies exceptions without a
 * list request of its own. The watch is the ExceptionStatusController's (it runs while this
 * process leads); until it has synced, and once it stopped, `current` lists instead.
 */
export class ExceptionCache extends Context.Service<
  ExceptionCache,
  {
    /** The exceptions now: from the watch's store when it is synced, else a list. */
    readonly current: Effect.Effect<ReadonlyArray<ComplianceException>, KubeError>
    /** Watches exceptions into the store, `onChange` after each change, until interrupted. */
    readonly follow: (onChange: Effect.Effect<void>) => Effect.Effect<never>
  }
>()("compliance-scan/exceptions/ExceptionCache") {
  static readonly layer = Layer.effect(
    ExceptionCache,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      // undefined: not synced (no watch running, or its first list not done).
      const store = yield* Ref.make<ReadonlyMap<string, KubeObject> | undefined>(undefined)

      const current = Effect.gen(function*() {
        const stored = yield* Ref.get(store)
        return stored === undefined ? yield* listExceptions : yield* decodeExceptions([...stored.values()])
      }).pipe(Effect.provideService(KubeClient, kube))

      const follow = (onChange: Effect.Effect<void>) =>
        Effect.gen(function*() {
          // What the watch delivered so far; published at its first SYNCED, then kept current.
          let known = new Map<string, KubeObject>()
          let synced = false
          yield* watchResource(Resources.ComplianceException).pipe(
            Stream.runForEach((event) => {
              if (event.type === "SYNCED") {
                synced = true
                return Ref.set(store, known)
              }
              known = new Map(known)
              if (event.type === "DELETED") known.delete(keyOf(event.object))
              else known.set(keyOf(event.object), event.object)
              return synced ? Ref.set(store, known).pipe(Effect.andThen(onChange)) : onChange
            })
          )
          return yield* Effect.never
        }).pipe(
          Effect.ensuring(Ref.set(store, undefined)),
          Effect.provideService(KubeClient, kube)
        )

      return ExceptionCache.of({ current, follow })
    })
  )
}
