import type { KubeObject } from "../../services/kube/KubeObject.ts"
import type { CelActivation } from "./CelEngine.ts"
import type { CelResource } from "./CompiledRule.ts"

/**
 * One object the rules are evaluated against, converted once (every rule shares it):
 * `object` and `namespaceObject` as CEL values, plus the labels the selectors match on.
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

export const celTargets = (
  fromJson: (json: unknown) => unknown,
  pods: ReadonlyArray<KubeObject>,
  namespaces: ReadonlyArray<KubeObject>
): Array<CelTarget> => {
  const targets: Array<CelTarget> = []
  const namespaceValues = new Map<string, { readonly value: unknown; readonly labels: Readonly<Record<string, string>> | undefined }>()
  for (const namespace of namespaces) {
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
      activation: { object: value, namespaceObject: null }
    })
  }
  for (const pod of pods) {
    const namespace = pod.metadata.namespace === undefined ? undefined : namespaceValues.get(pod.metadata.namespace)
    targets.push({
      resource: "pods",
      kind: "Pod",
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      labels: pod.metadata.labels,
      namespaceLabels: namespace?.labels,
      activation: { object: fromJson(pod), namespaceObject: namespace?.value ?? null }
    })
  }
  return targets
}
