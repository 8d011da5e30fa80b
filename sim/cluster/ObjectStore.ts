import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import type { ResourceType } from "../../src/services/kube/Resources.ts"

/** `apiVersion/plural`: the identity of a resource type in the store. */
export const resourceKeyOf = (resource: ResourceType): string => `${resource.apiVersion}/${resource.plural}`

/** Where one object lives; `namespace` is "" for cluster-scoped objects. */
export interface ObjectRef {
  readonly resource: ResourceType
  readonly namespace: string
  readonly name: string
}

const refKey = (ref: ObjectRef) => `${resourceKeyOf(ref.resource)}\u0000${ref.namespace}\u0000${ref.name}`

/** One resource type in one namespace; the sorted name list is cached until a name comes or goes. */
interface Bucket {
  readonly objects: Map<string, KubeObject>
  sortedNames: Array<string> | undefined
}

interface ResourceTable {
  readonly resource: ResourceType
  readonly buckets: Map<string, Bucket>
  sortedNamespaces: Array<string> | undefined
}

const byCodePoint = (left: string, right: string) => (left < right ? -1 : left > right ? 1 : 0)

/** First index in a sorted array whose element is greater than `value`. */
const upperBound = (sorted: ReadonlyArray<string>, value: string): number => {
  let low = 0
  let high = sorted.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (sorted[middle]! <= value) low = middle + 1
    else high = middle
  }
  return low
}

/**
 * The simulated etcd: objects indexed by resource type and namespace (so a namespaced list
 * touches only its namespace), listed in stable key order (namespace, then name) without
 * re-sorting the whole store, plus the uid and owner-uid indexes garbage collection needs.
 * Stored objects are never mutated: a write stores a new object.
 */
export const makeObjectStore = () => {
  const tables = new Map<string, ResourceTable>()
  const byUid = new Map<string, ObjectRef>()
  const dependentsByOwnerUid = new Map<string, Map<string, ObjectRef>>()

  const tableOf = (resource: ResourceType): ResourceTable => {
    const key = resourceKeyOf(resource)
    let table = tables.get(key)
    if (table === undefined) {
      table = { resource, buckets: new Map(), sortedNamespaces: undefined }
      tables.set(key, table)
    }
    return table
  }

  const bucketOf = (table: ResourceTable, namespace: string): Bucket => {
    let bucket = table.buckets.get(namespace)
    if (bucket === undefined) {
      bucket = { objects: new Map(), sortedNames: undefined }
      table.buckets.set(namespace, bucket)
      table.sortedNamespaces = undefined
    }
    return bucket
  }

  const sortedNames = (bucket: Bucket): Array<string> =>
    (bucket.sortedNames ??= [...bucket.objects.keys()].sort(byCodePoint))

  const sortedNamespaces = (table: ResourceTable): Array<string> =>
    (table.sortedNamespaces ??= [...table.buckets.keys()].sort(byCodePoint))

  const indexOwners = (ref: ObjectRef, object: KubeObject | undefined, add: boolean) => {
    for (const owner of object?.metadata.ownerReferences ?? []) {
      let dependents = dependentsByOwnerUid.get(owner.uid)
      if (add) {
        if (dependents === undefined) {
          dependents = new Map()
          dependentsByOwnerUid.set(owner.uid, dependents)
        }
        dependents.set(refKey(ref), ref)
      } else if (dependents !== undefined) {
        dependents.delete(refKey(ref))
        if (dependents.size === 0) dependentsByOwnerUid.delete(owner.uid)
      }
    }
  }

  const get = (resource: ResourceType, namespace: string, name: string): KubeObject | undefined =>
    tables.get(resourceKeyOf(resource))?.buckets.get(namespace)?.objects.get(name)

  /** Stores the object (a new one or a new version), keeping every index in step. */
  const put = (ref: ObjectRef, object: KubeObject): void => {
    const bucket = bucketOf(tableOf(ref.resource), ref.namespace)
    const previous = bucket.objects.get(ref.name)
    if (previous === undefined) bucket.sortedNames = undefined
    indexOwners(ref, previous, false)
    if (previous?.metadata.uid !== undefined) byUid.delete(previous.metadata.uid)
    bucket.objects.set(ref.name, object)
    indexOwners(ref, object, true)
    if (object.metadata.uid !== undefined) byUid.set(object.metadata.uid, ref)
  }

  const remove = (ref: ObjectRef): KubeObject | undefined => {
    const table = tables.get(resourceKeyOf(ref.resource))
    const bucket = table?.buckets.get(ref.namespace)
    const previous = bucket?.objects.get(ref.name)
    if (table === undefined || bucket === undefined || previous === undefined) return undefined
    bucket.objects.delete(ref.name)
    bucket.sortedNames = undefined
    if (bucket.objects.size === 0) {
      table.buckets.delete(ref.namespace)
      table.sortedNamespaces = undefined
    }
    indexOwners(ref, previous, false)
    if (previous.metadata.uid !== undefined) byUid.delete(previous.metadata.uid)
    return previous
  }

  /**
   * Objects of one resource type in key order, optionally within one namespace, starting
   * after `after` (the position a continue token remembers).
   */
  function* scan(
    resource: ResourceType,
    namespace: string | undefined,
    after?: { readonly namespace: string; readonly name: string }
  ): Generator<KubeObject> {
    const table = tables.get(resourceKeyOf(resource))
    if (table === undefined) return
    const namespaces = namespace === undefined ? sortedNamespaces(table) : [namespace]
    const firstNamespace = after === undefined ? 0 : upperBound(namespaces, after.namespace) - 1
    for (let index = Math.max(0, firstNamespace); index < namespaces.length; index++) {
      const currentNamespace = namespaces[index]!
      if (after !== undefined && currentNamespace < after.namespace) continue
      const bucket = table.buckets.get(currentNamespace)
      if (bucket === undefined) continue
      const names = sortedNames(bucket)
      const start = after !== undefined && currentNamespace === after.namespace ? upperBound(names, after.name) : 0
      for (let position = start; position < names.length; position++) {
        const object = bucket.objects.get(names[position]!)
        if (object !== undefined) yield object
      }
    }
  }

  /** Every namespaced object in a namespace, across all resource types. */
  const inNamespace = (namespace: string): Array<ObjectRef> => {
    const refs: Array<ObjectRef> = []
    for (const table of tables.values()) {
      if (!table.resource.namespaced) continue
      for (const name of table.buckets.get(namespace)?.objects.keys() ?? []) {
        refs.push({ resource: table.resource, namespace, name })
      }
    }
    return refs
  }

  const dependentsOf = (ownerUid: string): Array<ObjectRef> => [...(dependentsByOwnerUid.get(ownerUid)?.values() ?? [])]

  const findByUid = (uid: string): ObjectRef | undefined => byUid.get(uid)

  return { get, put, remove, scan, inNamespace, dependentsOf, findByUid }
}

export type ObjectStore = ReturnType<typeof makeObjectStore>
