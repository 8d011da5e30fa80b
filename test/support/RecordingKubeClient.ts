import { Effect, Stream } from "effect"
import type { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { groupOf, type ResourceType } from "../../src/services/kube/Resources.ts"

/** One API call as RBAC sees it: verb, `group/resource[/subresource]`, namespace ("" when cluster-wide). */
export interface ApiCall {
  readonly verb: string
  readonly resource: string
  readonly namespace: string
}

const resourceOf = (resource: ResourceType, subresource?: string) =>
  `${groupOf(resource.apiVersion) || "core"}/${resource.plural}${subresource === undefined ? "" : `/${subresource}`}`

/**
 * A KubeClient that logs every call it passes on, in RBAC terms (replace is `update`, pod
 * logs are `get pods/log`): the operator's request log, to hold its RBAC against.
 */
export const recordingKubeClient = (kube: KubeClient["Service"]) => {
  const calls: Array<ApiCall> = []
  const record = <A, E>(verb: string, resource: string, namespace: string | undefined, effect: Effect.Effect<A, E>) =>
    Effect.suspend(() => {
      calls.push({ verb, resource, namespace: namespace ?? "" })
      return effect
    })
  const client: KubeClient["Service"] = {
    get: (resource, namespace, name) => record("get", resourceOf(resource), namespace, kube.get(resource, namespace, name)),
    list: (resource, options) => record("list", resourceOf(resource), options?.namespace, kube.list(resource, options)),
    create: (resource, object) => record("create", resourceOf(resource), object.metadata.namespace, kube.create(resource, object)),
    replace: (resource, object) => record("update", resourceOf(resource), object.metadata.namespace, kube.replace(resource, object)),
    replaceStatus: (resource, object) =>
      record("update", resourceOf(resource, "status"), object.metadata.namespace, kube.replaceStatus(resource, object)),
    patch: (resource, namespace, name, patch, options) =>
      record("patch", resourceOf(resource, options?.subresource), namespace, kube.patch(resource, namespace, name, patch, options)),
    delete: (resource, namespace, name, options) =>
      record("delete", resourceOf(resource), namespace, kube.delete(resource, namespace, name, options)),
    watch: (resource, options) =>
      Stream.suspend(() => {
        calls.push({ verb: "watch", resource: resourceOf(resource), namespace: options.namespace ?? "" })
        return kube.watch(resource, options)
      }),
    podLogs: (namespace, name, options) => record("get", "core/pods/log", namespace, kube.podLogs(namespace, name, options))
  }
  return { client, calls: () => [...calls] }
}
