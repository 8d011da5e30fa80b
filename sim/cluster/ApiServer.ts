import type { DeleteOptions, ListOptions, LogOptions, PatchOptions, WatchOptions } from "../../src/services/kube/KubeClient.ts"
import { AlreadyExists, Conflict, Gone, Invalid, NotFound } from "../../src/services/kube/KubeErrors.ts"
import type { KubeObject, ObjectList } from "../../src/services/kube/KubeObject.ts"
import { type ResourceType, Resources } from "../../src/services/kube/Resources.ts"
import {
  admitCreate,
  admitUpdate,
  allowsUnconditionalUpdate,
  initialStatus,
  invalid,
  qualifiedResource,
  validateName
} from "./Admission.ts"
import { asRecord, copy, freezeDeep, isRecord, jsonEqual, mergePatch } from "./Json.ts"
import { makeObjectStore, type ObjectRef, resourceKeyOf } from "./ObjectStore.ts"
import { parseFieldSelector, parseLabelSelector } from "./Selectors.ts"
import { type Change, makeWatchHub, matchesWatchFilter, type WatchFilter, type WatchSink } from "./WatchHub.ts"

export interface ApiServerOptions {
  /** How many recent changes a watch can resume across before it gets Gone. */
  readonly historySize: number
  /** Kinds whose status is a separate subresource. */
  readonly statusSubresources: ReadonlyArray<ResourceType>
  /** The cluster's seeded generator (generated name suffixes), so runs reproduce. */
  readonly random: () => number
  /** Epoch milliseconds for timestamps. */
  readonly now: () => number
  /** Told about every committed change (the simulated controllers react to some). */
  readonly onChange: (change: Change, resource: ResourceType) => void
}

type Mutable = Record<string, unknown>

/** The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes). */
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

const randomSuffix = (random: () => number): string =>
  Array.from({ length: 5 }, () => suffixAlphabet[Math.floor(random() * suffixAlphabet.length)]).join("")

interface ContinueToken {
  readonly resourceVersion: number
  readonly namespace: string
  readonly name: string
}

const encodeContinue = (token: ContinueToken) => Buffer.from(JSON.stringify(token)).toString("base64url")

const decodeContinue = (text: string): ContinueToken => {
  try {
    const token = asRecord(JSON.parse(Buffer.from(text, "base64url").toString("utf8")))
    if (
      typeof token.resourceVersion === "number" && typeof token.namespace === "string" &&
      typeof token.name === "string"
    ) {
      return { resourceVersion: token.resourceVersion, namespace: token.namespace, name: token.name }
    }
  } catch {
    // falls through to the error below
  }
  throw new Invalid({ message: `continue key is not valid: ${text}` })
}

/** Removes keys whose value is `undefined`, so stored objects are plain JSON. */
const withoutUndefined = (object: Mutable): Mutable => {
  const result: Mutable = {}
  for (const [key, value] of Object.entries(object)) if (value !== undefined) result[key] = value
  return result
}

/**
 * The simulated API server's request handling, synchronous over an in-memory store: every
 * verb of KubeClient with the server's semantics (admission, optimistic concurrency,
 * subresources, garbage collection, list paging, watch history). Failures are thrown as
 * KubeErrors; the Effect layer above turns them into typed failures.
 */
export const makeApiServer = (options: ApiServerOptions) => {
  const store = makeObjectStore()
  const hub = makeWatchHub(options.historySize)
  const statusSubresources = new Set(options.statusSubresources.map(resourceKeyOf))
  /** Container logs by Pod uid, written by the simulated kubelet. */
  const logs = new Map<string, string>()
  let revision = 0

  const timestamp = () => new Date(options.now()).toISOString().replace(/\.\d{3}Z$/u, "Z")
  const hasStatusSubresource = (resource: ResourceType) => statusSubresources.has(resourceKeyOf(resource))

  const notFound = (resource: ResourceType, name: string) =>
    new NotFound({ message: `${qualifiedResource(resource)} "${name}" not found` })

  const conflict = (resource: ResourceType, name: string) =>
    new Conflict({
      message: `Operation cannot be fulfilled on ${qualifiedResource(resource)} "${name}": the object has been modified; please apply your changes to the latest version and try again`
    })

  const refOf = (resource: ResourceType, namespace: string | undefined, name: string): ObjectRef => ({
    resource,
    namespace: resource.namespaced ? (namespace ?? "") : "",
    name
  })

  const lookup = (ref: ObjectRef): KubeObject => {
    const stored = store.get(ref.resource, ref.namespace, ref.name)
    if (stored === undefined) throw notFound(ref.resource, ref.name)
    return stored
  }

  /** Gives the write the next resourceVersion, stores it, records it and tells the controllers. */
  const commit = (
    ref: ObjectRef,
    type: Change["type"],
    object: KubeObject,
    previous: KubeObject | undefined
  ): KubeObject => {
    revision++
    const stored: KubeObject = freezeDeep({ ...object, metadata: { ...object.metadata, resourceVersion: String(revision) } })
    if (type === "DELETED") {
      store.remove(ref)
      if (stored.metadata.uid !== undefined) logs.delete(stored.metadata.uid)
    } else {
      store.put(ref, stored)
    }
    const change: Change = { resourceVersion: revision, resourceKey: resourceKeyOf(ref.resource), type, object: stored, previous }
    hub.record(change)
    options.onChange(change, ref.resource)
    return stored
  }

  const requireNamespace = (resource: ResourceType, name: string, namespace: unknown): string => {
    if (!resource.namespaced) return ""
    if (typeof namespace !== "string" || namespace === "") {
      throw invalid(resource, name, "metadata.namespace: Required value")
    }
    return namespace
  }

  // ---- reads ----

  const get = (resource: ResourceType, namespace: string | undefined, name: string): KubeObject =>
    lookup(refOf(resource, namespace, name))

  const list = (resource: ResourceType, listOptions: ListOptions = {}): ObjectList => {
    const requirements = parseLabelSelector(listOptions.labelSelector)
    const fieldFilter = parseFieldSelector(resource, listOptions.fieldSelector)
    const namespace = resource.namespaced ? listOptions.namespace : undefined
    const token = listOptions.continue ? decodeContinue(listOptions.continue) : undefined
    if (token !== undefined && !hub.covers(token.resourceVersion)) {
      throw new Gone({
        message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
      })
    }
    const filter: WatchFilter = { resourceKey: resourceKeyOf(resource), namespace, requirements }
    const limit = listOptions.limit !== undefined && listOptions.limit > 0 ? listOptions.limit : Number.POSITIVE_INFINITY
    const page: Array<KubeObject> = []
    let more = false
    for (const object of store.scan(resource, namespace, token)) {
      if (!matchesWatchFilter(filter, object) || !fieldFilter(object)) continue
      if (page.length >= limit) {
        more = true
        break
      }
      page.push(object)
    }
    // A continued list reports the version of its first page: a watch from there replays
    // whatever changed while the pages were read.
    const listVersion = token?.resourceVersion ?? revision
    const last = page.at(-1)
    return {
      items: page,
      resourceVersion: String(listVersion),
      ...(more && last !== undefined
        ? {
          continue: encodeContinue({
            resourceVersion: listVersion,
            namespace: last.metadata.namespace ?? "",
            name: last.metadata.name
          })
        }
        : {})
    }
  }

  /** Every object of a kind (optionally in one namespace), for the control handle. */
  const snapshot = (resource: ResourceType, namespace?: string): Array<KubeObject> =>
    [...store.scan(resource, resource.namespaced ? namespace : undefined)]

  // ---- create ----

  const create = (resource: ResourceType, input: KubeObject, seed = false): KubeObject => {
    const object = copy(input) as Mutable
    const metadata: Mutable = { ...asRecord(object.metadata) }
    const generateName = typeof metadata.generateName === "string" ? metadata.generateName : undefined
    if (typeof metadata.name !== "string" || metadata.name === "") {
      if (generateName === undefined || generateName === "") {
        throw invalid(resource, "", "metadata.name: Required value: name or generateName is required")
      }
      // Like the server, retry generated names that happen to collide.
      let candidate = generateName + randomSuffix(options.random)
      const namespace = resource.namespaced ? String(metadata.namespace ?? "") : ""
      while (store.get(resource, namespace, candidate) !== undefined) candidate = generateName + randomSuffix(options.random)
      metadata.name = candidate
    }
    const name = metadata.name as string
    validateName(resource, name)
    const namespace = requireNamespace(resource, name, metadata.namespace)
    if (resource.namespaced) {
      if (store.get(Resources.Namespace, "", namespace) === undefined) {
        throw new NotFound({ message: `namespaces "${namespace}" not found` })
      }
    } else {
      delete metadata.namespace
    }
    const ref = refOf(resource, namespace, name)
    if (store.get(resource, ref.namespace, name) !== undefined) {
      throw new AlreadyExists({ message: `${qualifiedResource(resource)} "${name}" already exists` })
    }
    delete metadata.resourceVersion
    delete metadata.deletionTimestamp
    metadata.uid = globalThis.crypto.randomUUID()
    metadata.creationTimestamp = timestamp()
    metadata.generation = 1
    const fresh: Mutable = { ...object, apiVersion: resource.apiVersion, kind: resource.kind, metadata }
    if (hasStatusSubresource(resource) && !seed) fresh.status = initialStatus(resource)
    else if (!("status" in object) && initialStatus(resource) !== undefined) fresh.status = initialStatus(resource)
    const admitted = withoutUndefined(admitCreate(resource, withoutUndefined(fresh)))
    return commit(ref, "ADDED", admitted as unknown as KubeObject, undefined)
  }

  // ---- updates ----

  interface UpdateMode {
    /** A write to the status subresource: only status changes. */
    readonly status: boolean
    /** A PUT: custom resources insist on a resourceVersion. */
    readonly put: boolean
    /** The seed path (`apply`): no preconditions, status written as given. */
    readonly force: boolean
  }

  const update = (ref: ObjectRef, build: (stored: KubeObject) => Mutable, mode: UpdateMode): KubeObject => {
    const { resource, name } = ref
    const stored = lookup(ref)
    const candidate = build(stored)
    const candidateMetadata = asRecord(candidate.metadata)
    if (!mode.force) {
      const version = candidateMetadata.resourceVersion
      if (version === undefined || version === "") {
        if (mode.put && !allowsUnconditionalUpdate(resource)) {
          throw invalid(resource, name, "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update")
        }
      } else if (version !== stored.metadata.resourceVersion) {
        throw conflict(resource, name)
      }
      const uid = candidateMetadata.uid
      if (typeof uid === "string" && uid !== "" && uid !== stored.metadata.uid) {
        throw new Conflict({
          message: `Operation cannot be fulfilled on ${qualifiedResource(resource)} "${name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${stored.metadata.uid}`
        })
      }
    }
    let next: Mutable
    if (mode.status) {
      next = { ...stored, status: candidate.status }
    } else {
      next = {
        ...candidate,
        apiVersion: resource.apiVersion,
        kind: resource.kind,
        metadata: {
          ...candidateMetadata,
          name: stored.metadata.name,
          namespace: stored.metadata.namespace,
          uid: stored.metadata.uid,
          creationTimestamp: stored.metadata.creationTimestamp,
          deletionTimestamp: stored.metadata.deletionTimestamp,
          resourceVersion: stored.metadata.resourceVersion
        }
      }
      const keepStoredStatus = hasStatusSubresource(resource) && !(mode.force && "status" in candidate)
      if (keepStoredStatus) next.status = stored.status
    }
    next.metadata = withoutUndefined(asRecord(next.metadata))
    const admitted = withoutUndefined(admitUpdate(resource, stored, withoutUndefined(next)))
    const generation = stored.metadata.generation ?? 1
    const final = {
      ...admitted,
      metadata: {
        ...asRecord(admitted.metadata),
        generation: jsonEqual(stored.spec, admitted.spec) ? generation : generation + 1
      }
    } as unknown as KubeObject
    // An update that changes nothing is not written: no new resourceVersion, no event.
    if (jsonEqual(final, stored)) return stored
    return commit(ref, "MODIFIED", final, stored)
  }

  const targetOf = (resource: ResourceType, object: KubeObject): ObjectRef => {
    const name = object.metadata?.name
    if (typeof name !== "string" || name === "") throw invalid(resource, "", "metadata.name: Required value: name is required")
    return refOf(resource, requireNamespace(resource, name, object.metadata.namespace), name)
  }

  const requireStatusSubresource = (resource: ResourceType) => {
    if (!hasStatusSubresource(resource)) {
      throw new NotFound({ message: `the server could not find the requested resource (${qualifiedResource(resource)}/status)` })
    }
  }

  const replace = (resource: ResourceType, object: KubeObject): KubeObject =>
    update(targetOf(resource, object), () => copy(object) as Mutable, { status: false, put: true, force: false })

  const replaceStatus = (resource: ResourceType, object: KubeObject): KubeObject => {
    requireStatusSubresource(resource)
    return update(targetOf(resource, object), () => copy(object) as Mutable, { status: true, put: true, force: false })
  }

  const patch = (
    resource: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    patchOptions: PatchOptions = {}
  ): KubeObject => {
    const status = patchOptions.subresource === "status"
    if (status) requireStatusSubresource(resource)
    if (!isRecord(body)) throw new Invalid({ message: "a JSON merge patch must be a JSON object" })
    const patchBody = copy(body)
    return update(refOf(resource, namespace, name), (stored) => asRecord(mergePatch(stored, patchBody)), {
      status,
      put: false,
      force: false
    })
  }

  /** Create-or-replace without preconditions, status included: how tests and the demo seed the world. */
  const apply = (resource: ResourceType, object: KubeObject): KubeObject => {
    const ref = targetOf(resource, object)
    if (store.get(resource, ref.namespace, ref.name) === undefined) return create(resource, object, true)
    return update(ref, () => copy(object) as Mutable, { status: false, put: true, force: true })
  }

  /**
   * Replaces the status of the object with this uid (the simulated controllers' writes);
   * undefined when that object is gone.
   */
  const mutateStatus = (
    resource: ResourceType,
    namespace: string,
    name: string,
    uid: string,
    change: (status: Mutable) => Mutable
  ): KubeObject | undefined => {
    const ref = refOf(resource, namespace, name)
    const stored = store.get(resource, ref.namespace, name)
    if (stored === undefined || stored.metadata.uid !== uid) return undefined
    const next = { ...stored, status: change(asRecord(copy(stored.status))) }
    return commit(ref, "MODIFIED", next, stored)
  }

  // ---- delete and garbage collection ----

  const withoutOwner = (object: KubeObject, ownerUid: string): KubeObject => {
    const owners = (object.metadata.ownerReferences ?? []).filter((owner) => owner.uid !== ownerUid)
    const { ownerReferences: _dropped, ...metadata } = object.metadata
    return { ...object, metadata: owners.length > 0 ? { ...metadata, ownerReferences: owners } : metadata }
  }

  /** What the garbage collector does once an owner is gone. */
  const collectDependents = (ownerUid: string): void => {
    for (const ref of store.dependentsOf(ownerUid)) {
      const dependent = store.get(ref.resource, ref.namespace, ref.name)
      if (dependent === undefined) continue
      const otherOwnerAlive = (dependent.metadata.ownerReferences ?? []).some(
        (owner) => owner.uid !== ownerUid && store.findByUid(owner.uid) !== undefined
      )
      if (otherOwnerAlive) commit(ref, "MODIFIED", withoutOwner(dependent, ownerUid), dependent)
      else remove(ref, "Background")
    }
  }

  const remove = (ref: ObjectRef, policy: NonNullable<DeleteOptions["propagationPolicy"]>): void => {
    let stored = store.get(ref.resource, ref.namespace, ref.name)
    if (stored === undefined) return
    if (resourceKeyOf(ref.resource) === resourceKeyOf(Resources.Namespace)) {
      for (const contained of store.inNamespace(ref.name)) remove(contained, "Background")
    }
    const uid = stored.metadata.uid ?? ""
    switch (policy) {
      case "Orphan":
        for (const dependentRef of store.dependentsOf(uid)) {
          const dependent = store.get(dependentRef.resource, dependentRef.namespace, dependentRef.name)
          if (dependent !== undefined) commit(dependentRef, "MODIFIED", withoutOwner(dependent, uid), dependent)
        }
        commit(ref, "DELETED", stored, undefined)
        return
      case "Foreground": {
        // The owner stays visible, marked for deletion, until its dependents are gone.
        const marked: KubeObject = {
          ...stored,
          metadata: {
            ...stored.metadata,
            deletionTimestamp: timestamp(),
            finalizers: ["foregroundDeletion"]
          }
        }
        stored = commit(ref, "MODIFIED", marked, stored)
        collectDependents(uid)
        commit(ref, "DELETED", stored, undefined)
        return
      }
      case "Background":
        commit(ref, "DELETED", stored, undefined)
        collectDependents(uid)
        return
    }
  }

  const deleteObject = (
    resource: ResourceType,
    namespace: string | undefined,
    name: string,
    deleteOptions: DeleteOptions = {}
  ): void => {
    const ref = refOf(resource, namespace, name)
    lookup(ref)
    // batch/v1 Jobs orphan their Pods unless told otherwise (kept for compatibility upstream).
    const defaultPolicy = resourceKeyOf(resource) === resourceKeyOf(Resources.Job) ? "Orphan" : "Background"
    remove(ref, deleteOptions.propagationPolicy ?? defaultPolicy)
  }

  // ---- watch ----

  /**
   * Opens a watch: replays the changes after `resourceVersion` ("0" or "": the current
   * state as ADDED events), then delivers live ones. Throws Gone when the history no
   * longer reaches back that far.
   */
  const watch = (resource: ResourceType, watchOptions: WatchOptions, sink: WatchSink): (() => void) => {
    const filter: WatchFilter = {
      resourceKey: resourceKeyOf(resource),
      namespace: resource.namespaced ? watchOptions.namespace : undefined,
      requirements: parseLabelSelector(watchOptions.labelSelector)
    }
    const text = watchOptions.resourceVersion
    if (text === "" || text === "0") {
      for (const object of store.scan(resource, filter.namespace)) {
        if (matchesWatchFilter(filter, object)) sink.emit({ type: "ADDED", object })
      }
      return hub.subscribe(filter, revision, sink)
    }
    const version = /^[0-9]+$/u.test(text) ? Number(text) : Number.NaN
    if (!Number.isSafeInteger(version)) {
      throw new Invalid({ message: `resourceVersion: Invalid value: "${text}": must be an integer` })
    }
    if (!hub.covers(version)) {
      throw new Gone({ message: `too old resource version: ${version} (${hub.oldestAvailable() + 1})` })
    }
    return hub.subscribe(filter, version, sink)
  }

  // ---- pod logs ----

  const waitingMessage = (reason: string) =>
    reason === "ErrImagePull" || reason === "ImagePullBackOff" ? "trying and failing to pull image" : reason

  const podLogs = (namespace: string, name: string, logOptions: LogOptions = {}): string => {
    const pod = lookup(refOf(Resources.Pod, namespace, name))
    const containers = (Array.isArray(asRecord(pod.spec).containers) ? (asRecord(pod.spec).containers as Array<unknown>) : [])
      .map((container) => String(asRecord(container).name))
    let container = logOptions.container
    if (container === undefined) {
      if (containers.length > 1) {
        throw new Invalid({
          message: `a container name must be specified for pod ${name}, choose one of: [${containers.join(" ")}]`
        })
      }
      container = containers[0] ?? ""
    } else if (!containers.includes(container)) {
      throw new Invalid({ message: `container ${container} is not valid for pod ${name}` })
    }
    const status = asRecord(pod.status)
    const statuses = Array.isArray(status.containerStatuses) ? (status.containerStatuses as Array<unknown>) : []
    const own = asRecord(statuses.find((entry) => asRecord(entry).name === container) ?? statuses[0])
    const state = asRecord(own.state)
    const started = state.running !== undefined || state.terminated !== undefined ||
      ((status.phase === "Running" || status.phase === "Succeeded" || status.phase === "Failed") &&
        state.waiting === undefined)
    if (!started) {
      const reason = String(asRecord(state.waiting).reason ?? "ContainerCreating")
      throw new Invalid({ message: `container "${container}" in pod "${name}" is waiting to start: ${waitingMessage(reason)}` })
    }
    const text = logs.get(pod.metadata.uid ?? "") ?? ""
    if (logOptions.limitBytes === undefined) return text
    return Buffer.from(text, "utf8").subarray(0, Math.max(0, logOptions.limitBytes)).toString("utf8")
  }

  const setPodLog = (namespace: string, name: string, text: string): void => {
    const pod = lookup(refOf(Resources.Pod, namespace, name))
    logs.set(pod.metadata.uid ?? "", text)
  }

  /** The stored object itself, for the simulated controllers (callers must not mutate it). */
  const peek = (resource: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined => {
    const ref = refOf(resource, namespace, name)
    return store.get(resource, ref.namespace, name)
  }

  return {
    get,
    peek,
    findByUid: store.findByUid,
    list,
    snapshot,
    create,
    replace,
    replaceStatus,
    patch,
    apply,
    mutateStatus,
    delete: deleteObject,
    watch,
    dropWatches: hub.dropAll,
    openWatches: hub.openCount,
    podLogs,
    setPodLog,
    resourceVersion: () => String(revision),
    timestamp
  }
}

export type ApiServer = ReturnType<typeof makeApiServer>
