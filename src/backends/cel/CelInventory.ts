import { Effect } from "effect"
import type { KubeClient } from "../../services/kube/KubeClient.ts"
import type { KubeError } from "../../services/kube/KubeErrors.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"
import { listAll } from "../../services/kube/ListWatch.ts"
import { Resources } from "../../services/kube/Resources.ts"
import { retryTransientUntil } from "../../services/kube/Retry.ts"
import { CelInventoryFailed } from "./CelErrors.ts"
import type { CompiledRule } from "./CompiledRule.ts"

/**
 * Lists what the rules need, once per run whatever the number of rules: Pods when a rule
 * matches pods, and Namespaces always (they are few, and every pod rule sees its
 * `namespaceObject`). Paginated. When every pod rule has the same labelSelector, the API
 * server filters; otherwise each rule filters on the client.
 */
export interface CelInventory {
  readonly pods: ReadonlyArray<KubeObject>
  readonly namespaces: ReadonlyArray<KubeObject>
}

export interface InventoryOptions {
  readonly pageSize: number
  /** Transient API errors (an API server down or restarting) are retried until this time (epoch millis): the run's deadline. */
  readonly deadline: number
}

const describe = (what: string, error: KubeError) => new CelInventoryFailed({ message: `cannot list ${what}: ${error._tag}: ${error.message}` })

export const loadInventory = (rules: ReadonlyArray<CompiledRule>, options: InventoryOptions): Effect.Effect<CelInventory, CelInventoryFailed, KubeClient> =>
  Effect.gen(function*() {
    const podRules = rules.filter((rule) => rule.resources.has("pods"))
    const selectors = new Set(podRules.map((rule) => rule.labelSelector))
    const sharedSelector = selectors.size === 1 ? [...selectors][0]! : ""
    const list = (resource: typeof Resources.Pod, labelSelector: string) =>
      retryTransientUntil(listAll(resource, { limit: options.pageSize, ...(labelSelector === "" ? {} : { labelSelector }) }), options.deadline)
    const [pods, namespaces] = yield* Effect.all(
      [
        podRules.length === 0
          ? Effect.succeed([] as ReadonlyArray<KubeObject>)
          : list(Resources.Pod, sharedSelector).pipe(
            Effect.map((listed) => listed.items),
            Effect.mapError((error) => describe("pods", error))
          ),
        list(Resources.Namespace, "").pipe(
          Effect.map((listed) => listed.items),
          Effect.mapError((error) => describe("namespaces", error))
        )
      ],
      { concurrency: 2 }
    )
    return { pods, namespaces }
  })
