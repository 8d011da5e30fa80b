import type { KubeObject } from "../../services/kube/KubeObject.ts"
import type { CelActivation } from "./CelEngine.ts"
import type { CelInventory } from "./CelInventory.ts"
import type { CelResource } from "./CompiledRule.ts"

/**
 * One object the rules are evaluated against, converted once (every rule shares it):
 * `object`, `namespaceObject` and `networkPolicies` as CEL values, plus the labels the
 * selectors match on.
 */
export interface CelTarget {
  readonly resource: CelResource
  readonly kind: "Pod" | "Namespace"
  readonly name: string
  readonly namespace: string | undefined
  readonly labels: Readonly<Record<string, string>> | undefined
  /**
   * What a namespaceSelector matches: the labels of the object's Namespace, or of the
   * Namespace itself when the object is one (as admission policies do).
   */
  readonly namespaceLabels: Readonly<Record<string, string>> | undefined
  readonly activation: CelActivation
}

/** The NetworkPolicies of each namespace as one CEL list (converted once per namespace). */
const policiesByNamespace = (fromJson: (json: unknown) => unknown, policies: ReadonlyArray<KubeObject>) => {
  const grouped = new Map<string, Array<KubeObject>>()
  for (const policy of policies) {
    const namespace = policy.metadata.namespace ?? ""
    grouped.set(namespace, [...(grouped.get(namespace) ?? []), policy])
  }
  return new Map([...grouped].map(([namespace, list]) => [namespace, fromJson(list)]))
}

export const celTargets = (fromJson: (json: unknown) => unknown, inventory: CelInventory): Array<CelTarget> => {
  const targets: Array<CelTarget> = []
  const policies = inventory.networkPolicies === undefined ? undefined : policiesByNamespace(fromJson, inventory.networkPolicies)
  const noPolicies = fromJson([])
  // Absent (not an empty list) when no rule reads them, so nothing pays for the conversion.
  const policiesOf = (namespace: string | undefined) =>
    policies === undefined ? {} : { networkPolicies: policies.get(namespace ?? "") ?? noPolicies }
  const namespaceValues = new Map<string, { readonly value: unknown; readonly labels: Readonly<Record<string, string>> | undefined }>()
  for (const namespace of inventory.namespaces) {
    const value = fromJson(namespace)
    const labels = namespace.metadata.labels
    namespaceValues.set(namespace.metadata.name, { value, labels })
    targets.push({
      resource: "namespaces",
      kind: "Namespace",
      name: namespace.metadata.name,
      namespace: undefined,
      labels,
      namespaceLabels: labels,
      activation: { object: value, namespaceObject: null, ...policiesOf(namespace.metadata.name) }
    })
  }
  for (const pod of inventory.pods) {
    const namespace = pod.metadata.namespace === undefined ? undefined : namespaceValues.get(pod.metadata.namespace)
    targets.push({
      resource: "pods",
      kind: "Pod",
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      labels: pod.metadata.labels,
      namespaceLabels: namespace?.labels,
      activation: { object: fromJson(pod), namespaceObject: namespace?.value ?? null, ...policiesOf(pod.metadata.namespace) }
    })
  }
  return targets
}
