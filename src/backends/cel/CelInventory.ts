import { Effect } from "effect"
import type { KubeClient } from "../../services/kube/KubeClient.ts"
import type { KubeError } from "../../services/kube/KubeErrors.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"
import { listAll } from "../../services/kube/ListWatch.ts"
import { retryTransientUntil } from "../../services/kube/Retry.ts"
import { CelInventoryFailed } from "./CelErrors.ts"
import { type CelKind, namespaceKind, networkPolicyKind } from "./CelKinds.ts"
import type { CompiledRule } from "./CompiledRule.ts"

/**
 * Lists what the rules need, once per run whatever the number of rules: every kind a rule
 * matches, NetworkPolicies when a rule reads `networkPolicies`, and Namespaces always (they
 * are few, and every namespaced object sees its `namespaceObject`). Paginated. When every
 * rule on a kind has the same labelSelector, the API server pre-filters that kind.
 *
 * A kind the API server refuses to list (Forbidden: no RBAC; NotFound: no such resource,
 * say a CRD that is not installed) is recorded in `unlisted`: only the rules on it end in
 * `error`. Namespaces, and any other failure, fail the run.
 */
export interface CelInventory {
  readonly namespaces: ReadonlyArray<KubeObject>
  /** The objects of every other listed kind, in the order the rules name the kinds. */
  readonly objects: ReadonlyArray<{ readonly kind: CelKind; readonly items: ReadonlyArray<KubeObject> }>
  /** Undefined when no rule reads them (they were not listed) or they could not be listed. */
  readonly networkPolicies: ReadonlyArray<KubeObject> | undefined
  /** Kinds that could not be listed, by key: why (`Forbidden: ...`). */
  readonly unlisted: ReadonlyMap<string, string>
}

export interface InventoryOptions {
  readonly pageSize: number
  /** Transient API errors (an API server down or restarting) are retried until this time (epoch millis): the run's deadline. */
  readonly deadline: number
}

const describe = (kind: CelKind, error: KubeError) => `cannot list ${kind.key}: ${error._tag}: ${error.message}`

/** Tolerated per kind: the rules on it fail, not the run. */
const isRefusal = (error: KubeError) => error._tag === "Forbidden" || error._tag === "NotFound"

export const loadInventory = (rules: ReadonlyArray<CompiledRule>, options: InventoryOptions): Effect.Effect<CelInventory, CelInventoryFailed, KubeClient> =>
  Effect.gen(function*() {
    const kinds = new Map<string, CelKind>()
    for (const rule of rules) for (const kind of rule.kinds) kinds.set(kind.key, kind)
    if (rules.some((rule) => rule.readsNetworkPolicies)) kinds.set(networkPolicyKind.key, networkPolicyKind)
    kinds.delete(namespaceKind.key)

    /** The label selector all rules on the kind share, for the server to pre-filter with ("" when they differ). */
    const sharedSelector = (kind: CelKind) => {
      const onKind = rules.filter((rule) => rule.resources.has(kind.key))
      const selectors = new Set(onKind.map((rule) => rule.labelSelector))
      // Listed only for the networkPolicies variable: every policy is needed.
      return onKind.length === 0 || selectors.size !== 1 ? "" : ([...selectors][0] ?? "")
    }
    const list = (kind: CelKind, labelSelector: string) =>
      retryTransientUntil(listAll(kind, { limit: options.pageSize, ...(labelSelector === "" ? {} : { labelSelector }) }), options.deadline).pipe(
        Effect.map((listed) => listed.items)
      )
    const refusedOrFailed = (kind: CelKind) => (error: KubeError) =>
      isRefusal(error) ? Effect.succeed(describe(kind, error)) : Effect.fail(new CelInventoryFailed({ message: describe(kind, error) }))
    const [namespaces, listed] = yield* Effect.all(
      [
        list(namespaceKind, "").pipe(Effect.mapError((error) => new CelInventoryFailed({ message: describe(namespaceKind, error) }))),
        Effect.forEach(
          [...kinds.values()],
          (kind) => list(kind, sharedSelector(kind)).pipe(Effect.map((items) => ({ kind, items })), Effect.catch(refusedOrFailed(kind))),
          { concurrency: 4 }
        )
      ],
      { concurrency: 2 }
    )
    const objects = listed.filter((entry) => typeof entry !== "string")
    const unlisted = new Map(
      listed.flatMap((entry, index) => (typeof entry === "string" ? [[[...kinds.values()][index]!.key, entry] as const] : []))
    )
    const policies = objects.find((entry) => entry.kind.key === networkPolicyKind.key)?.items
    return {
      namespaces,
      // A kind listed only for the networkPolicies variable is no target of its own.
      objects: objects.filter((entry) => rules.some((rule) => rule.resources.has(entry.kind.key))),
      networkPolicies: rules.some((rule) => rule.readsNetworkPolicies) ? policies : undefined,
      unlisted
    }
  })

/**
 * The inventory of objects given as manifests (`cel test`, tests): each object goes to the
 * kind a rule names with its apiVersion and kind (a custom resource's plural is taken to be
 * its kind in lower case plus "s"); namespaced objects without a namespace are in
 * `default`, as kubectl puts them. Returns the objects no rule looks at, too.
 */
export const inventoryOfObjects = (
  rules: ReadonlyArray<CompiledRule>,
  objects: ReadonlyArray<KubeObject>
): { readonly inventory: CelInventory; readonly unmatched: ReadonlyArray<KubeObject> } => {
  const ruleKinds = new Map<string, CelKind>()
  for (const rule of rules) for (const kind of rule.kinds) ruleKinds.set(kind.key, kind)
  const kindOf = (object: KubeObject): CelKind | undefined =>
    [...ruleKinds.values(), networkPolicyKind].find((kind) =>
      kind.apiVersion === object.apiVersion && (kind.kind === "" ? kind.plural === `${String(object.kind).toLowerCase()}s` : kind.kind === object.kind)
    )
  const namespaces: Array<KubeObject> = []
  const byKind = new Map<string, { readonly kind: CelKind; readonly items: Array<KubeObject> }>()
  const unmatched: Array<KubeObject> = []
  for (const object of objects) {
    const kind = object.kind === "Namespace" ? namespaceKind : kindOf(object)
    if (kind === namespaceKind) namespaces.push(object)
    else if (kind === undefined) unmatched.push(object)
    else {
      const placed = kind.namespaced && object.metadata.namespace === undefined ? { ...object, metadata: { ...object.metadata, namespace: "default" } } : object
      const entry = byKind.get(kind.key) ?? { kind, items: [] }
      entry.items.push(placed)
      byKind.set(kind.key, entry)
    }
  }
  const policies = byKind.get(networkPolicyKind.key)?.items ?? []
  return {
    inventory: {
      namespaces,
      objects: [...byKind.values()].filter((entry) => ruleKinds.has(entry.kind.key)),
      networkPolicies: rules.some((rule) => rule.readsNetworkPolicies) ? policies : undefined,
      unlisted: new Map()
    },
    unmatched: unmatched.concat(ruleKinds.has(networkPolicyKind.key) || rules.some((rule) => rule.readsNetworkPolicies) ? [] : policies)
  }
}
