import type { KubeObject } from "../../services/kube/KubeObject.ts"
import type { CelActivation } from "./CelEngine.ts"
import type { CelInventory } from "./CelInventory.ts"
import { type CelKind, metadataOnlyKinds, metadataOnlyMembers, namespaceKind } from "./CelKinds.ts"

/**
 * One object the rules are evaluated against, converted once (every rule shares it):
 * `object`, `namespaceObject` and `networkPolicies` as CEL values, plus the labels the
 * selectors match on.
 */
export interface CelTarget {
  /** The kind's key (`deployments.apps`, `pods`), as `CompiledRule.resources` holds it. */
  readonly resource: string
  readonly kind: string
  readonly name: string
  readonly namespace: string | undefined
  readonly labels: Readonly<Record<string, string>> | undefined
  /**
   * What a namespaceSelector matches: the labels of the object's Namespace, or of the
   * Namespace itself when the object is one (as admission policies do). Undefined for
   * other cluster-scoped objects, which every namespaceSelector matches (as admission
   * policies do).
   */
  readonly namespaceLabels: Readonly<Record<string, string>> | undefined
  readonly clusterScoped: boolean
  readonly activation: CelActivation
}

/** The NetworkPolicies of each namespace as one CEL list (converted once per namespace). */
const policiesByNamespace = (fromJson: (json: unknown) => unknown, policies: ReadonlyArray<KubeObject>) => {
  const grouped = new Map<string, Array<KubeObject>>()
  for (const policy of policies) {
    const namespace = policy.metadata.namespace ?? ""
    const list = grouped.get(namespace)
    if (list === undefined) grouped.set(namespace, [policy])
    else list.push(policy)
  }
  return new Map([...grouped].map(([namespace, list]) => [namespace, fromJson(list)]))
}

/** Secrets (and any metadata-only kind) reach rules without their data. */
const visible = (resource: string, object: KubeObject): KubeObject => {
  if (!metadataOnlyKinds.has(resource)) return object
  const members = object as Record<string, unknown>
  const kept = metadataOnlyMembers.filter((member) => members[member] !== undefined).map((member) => [member, members[member]])
  return { apiVersion: object.apiVersion, kind: object.kind, metadata: object.metadata, ...Object.fromEntries(kept) } as KubeObject
}

/**
 * What every object of a scan shares, converted once per scan: the Namespaces (as targets
 * of their own and as `namespaceObject`) and the NetworkPolicies of each namespace.
 */
export interface TargetContext {
  readonly fromJson: (json: unknown) => unknown
  /** How each object becomes a CEL value: `fromJson`, or converted in place when the caller owns the objects. */
  readonly convert: (json: unknown) => unknown
  readonly namespaceTargets: ReadonlyArray<CelTarget>
  readonly namespaceOf: (name: string) => { readonly value: unknown; readonly labels: Readonly<Record<string, string>> | undefined } | undefined
  /** `{ networkPolicies }` for an object of the namespace, or `{}` when no rule reads them. */
  readonly policiesOf: (namespace: string | undefined) => { readonly networkPolicies?: unknown }
}

export const targetContext = (
  fromJson: (json: unknown) => unknown,
  namespaces: ReadonlyArray<KubeObject>,
  networkPolicies: ReadonlyArray<KubeObject> | undefined,
  convert: (json: unknown) => unknown = fromJson
): TargetContext => {
  const policies = networkPolicies === undefined ? undefined : policiesByNamespace(fromJson, networkPolicies)
  const noPolicies = fromJson([])
  // Absent (not an empty list) when no rule reads them, so nothing pays for the conversion.
  const policiesOf = (namespace: string | undefined) =>
    policies === undefined ? {} : { networkPolicies: policies.get(namespace ?? "") ?? noPolicies }
  const namespaceValues = new Map<string, { readonly value: unknown; readonly labels: Readonly<Record<string, string>> | undefined }>()
  const namespaceTargets: Array<CelTarget> = []
  for (const namespace of namespaces) {
    const value = fromJson(namespace)
    const labels = namespace.metadata.labels
    namespaceValues.set(namespace.metadata.name, { value, labels })
    namespaceTargets.push({
      resource: namespaceKind.key,
      kind: "Namespace",
      name: namespace.metadata.name,
      namespace: undefined,
      labels,
      namespaceLabels: labels,
      clusterScoped: true,
      activation: { object: value, namespaceObject: null, ...policiesOf(namespace.metadata.name) }
    })
  }
  return { fromJson, convert, namespaceTargets, namespaceOf: (name) => namespaceValues.get(name), policiesOf }
}

/** The targets of one page of objects of a kind, converted lazily as they are evaluated. */
export function* objectTargets(context: TargetContext, kind: CelKind, items: Iterable<KubeObject>): Generator<CelTarget> {
  for (const object of items) {
    const namespaceName = object.metadata.namespace
    const namespace = namespaceName === undefined || namespaceName === "" ? undefined : context.namespaceOf(namespaceName)
    yield {
      resource: kind.key,
      kind: object.kind ?? kind.kind,
      name: object.metadata.name,
      namespace: namespaceName === "" ? undefined : namespaceName,
      labels: object.metadata.labels,
      namespaceLabels: namespace?.labels,
      clusterScoped: namespaceName === undefined || namespaceName === "",
      activation: { object: context.convert(visible(kind.key, object)), namespaceObject: namespace?.value ?? null, ...context.policiesOf(namespaceName) }
    }
  }
}

/** Every target of an inventory held in memory (`cel test`, tests). */
export function* celTargets(
  fromJson: (json: unknown) => unknown,
  inventory: CelInventory,
  convert: (json: unknown) => unknown = fromJson
): Generator<CelTarget> {
  const context = targetContext(fromJson, inventory.namespaces, inventory.networkPolicies, convert)
  yield* context.namespaceTargets
  for (const { kind, items } of inventory.objects) yield* objectTargets(context, kind, items)
}
