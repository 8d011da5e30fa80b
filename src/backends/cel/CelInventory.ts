import { Effect } from "effect"
import type { KubeClient } from "../../services/kube/KubeClient.ts"
import type { KubeError } from "../../services/kube/KubeErrors.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"
import { listAll } from "../../services/kube/ListWatch.ts"
import { type ResourceType, Resources } from "../../services/kube/Resources.ts"
import { retryTransient } from "../../services/kube/Retry.ts"
import { CelInventoryFailed } from "./CelErrors.ts"
import type { CompiledRule } from "./CompiledRule.ts"

/**
 * Lists what the rules need, once per run whatever the number of rules: Pods when a rule
 * matches pods, NetworkPolicies when a rule reads `networkPolicies`, and Namespaces always
 * (they are few, and every pod rule sees its `namespaceObject`). Paginated. When every pod
 * rule has the same labelSelector, the API server filters; otherwise each rule filters on
 * the client.
 */
export interface CelInventory {
  readonly pods: ReadonlyArray<KubeObject>
  readonly namespaces: ReadonlyArray<KubeObject>
  /** Undefined when no rule reads them (they were not listed). */
  readonly networkPolicies: ReadonlyArray<KubeObject> | undefined
}

export interface InventoryOptions {
  readonly pageSize: number
  /** Attempts for Transient API errors before the run fails. */
  readonly retries: number
}

export const NetworkPolicy: ResourceType = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true }

const describe = (what: string, error: KubeError) => new CelInventoryFailed({ message: `cannot list ${what}: ${error._tag}: ${error.message}` })

export const loadInventory = (rules: ReadonlyArray<CompiledRule>, options: InventoryOptions): Effect.Effect<CelInventory, CelInventoryFailed, KubeClient> =>
  Effect.gen(function*() {
    const podRules = rules.filter((rule) => rule.resources.has("pods"))
    const selectors = new Set(podRules.map((rule) => rule.labelSelector))
    const sharedSelector = selectors.size === 1 ? ([...selectors][0] ?? "") : ""
    const list = (resource: ResourceType, labelSelector: string) =>
      retryTransient(listAll(resource, { limit: options.pageSize, ...(labelSelector === "" ? {} : { labelSelector }) }), options.retries).pipe(
        Effect.map((listed) => listed.items),
        Effect.mapError((error) => describe(resource.plural, error))
      )
    const nothing = Effect.succeed(undefined)
    const [pods, namespaces, networkPolicies] = yield* Effect.all(
      [
        podRules.length === 0 ? Effect.succeed([] as ReadonlyArray<KubeObject>) : list(Resources.Pod, sharedSelector),
        list(Resources.Namespace, ""),
        rules.some((rule) => rule.readsNetworkPolicies) ? list(NetworkPolicy, "") : nothing
      ],
      { concurrency: 3 }
    )
    return { pods, namespaces, networkPolicies }
  })
