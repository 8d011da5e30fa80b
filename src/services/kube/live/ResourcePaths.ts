import type { ResourceType } from "../Resources.ts"

/**
 * REST paths built from a ResourceType. The client speaks plain HTTP to these paths rather
 * than through client-node's generated per-kind APIs: KubeClient is generic over resource
 * types (our CRDs, Jobs, Pods, Leases, ...), and one path builder covers every kind with
 * the same code, where the typed APIs would need a switch per kind and per verb and still
 * hide the Status body, the abort signal and the watch stream we need to control.
 */
export interface ResourceLocation {
  readonly namespace?: string | undefined
  readonly name?: string | undefined
  readonly subresource?: "status" | "log" | undefined
}

/** `/api/v1` for the core group, `/apis/<group>/<version>` otherwise. */
export const apiRoot = (apiVersion: string): string =>
  apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`

/**
 * The path of a collection (no name) or of one object. A namespaced resource without a
 * namespace addresses every namespace (list and watch only); cluster-scoped resources
 * ignore the namespace.
 */
export const resourcePath = (resource: ResourceType, location: ResourceLocation = {}): string => {
  const segments = [apiRoot(resource.apiVersion)]
  if (resource.namespaced && location.namespace !== undefined && location.namespace !== "") {
    segments.push("namespaces", encodeURIComponent(location.namespace))
  }
  segments.push(resource.plural)
  if (location.name !== undefined) segments.push(encodeURIComponent(location.name))
  if (location.subresource !== undefined) segments.push(location.subresource)
  return segments.join("/")
}

/** `?a=1&b=2` from the defined entries, or "" when none. */
export const queryString = (params: Readonly<Record<string, string | number | boolean | undefined>>): string => {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(key, String(value))
  }
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}
