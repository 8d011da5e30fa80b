import { Context, Duration, Effect, Layer, Ref, Schedule } from "effect"
import { KubeClient } from "./kube/KubeClient.ts"
import { Resources } from "./kube/Resources.ts"

/** How often the API server is probed, and how long one probe may take. */
const probeInterval = Duration.seconds(5)
const probeTimeout = Duration.seconds(5)

/**
 * Whether the operator can reach and authenticate to the API server, for `/readyz`: every
 * few seconds one small authenticated, authorized read (a list of at most one Namespace,
 * which its RBAC allows; not of runs: a standby does not read those). A bad token (401) or a missing permission (403) is logged at error
 * level, an unreachable server as a warning, each once per change of state.
 */
export class ApiHealth extends Context.Service<
  ApiHealth,
  {
    /** True once the last probe succeeded. */
    readonly reachable: Effect.Effect<boolean>
  }
>()("compliance-scan/services/ApiHealth") {
  static readonly layer = Layer.effect(
    ApiHealth,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const state = yield* Ref.make<"unknown" | "ok" | string>("unknown")
      const probe = kube.list(Resources.Namespace, { limit: 1 }).pipe(
        Effect.timeoutOrElse({
          duration: probeTimeout,
          orElse: () => Effect.fail({ _tag: "Transient" as const, message: `no answer within ${Duration.format(probeTimeout)}` })
        }),
        Effect.matchEffect({
          onSuccess: () =>
            Effect.gen(function*() {
              const before = yield* Ref.getAndSet(state, "ok")
              if (before !== "ok" && before !== "unknown") yield* Effect.logInfo("the API server is reachable again")
            }),
          onFailure: (error) =>
            Effect.gen(function*() {
              const now = `${error._tag}: ${error.message}`
              const before = yield* Ref.getAndSet(state, now)
              if (before === now) return
              yield* error._tag === "Forbidden"
                ? Effect.logError("the API server refuses the operator's credentials or permissions; not ready", { error: now })
                : Effect.logWarning("the API server cannot be reached; not ready", { error: now })
            })
        })
      )
      yield* probe.pipe(Effect.repeat(Schedule.spaced(probeInterval)), Effect.forkScoped)
      return ApiHealth.of({ reachable: Effect.map(Ref.get(state), (current) => current === "ok") })
    })
  )
}
