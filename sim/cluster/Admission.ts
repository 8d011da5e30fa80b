import { Result, Schema } from "effect"
import { ComplianceScanResult } from "../../src/api/ComplianceScanResult.ts"
import { ComplianceScanRun, specDefaults } from "../../src/api/ComplianceScanRun.ts"
import { SecurityEvent } from "../../src/api/SecurityEvent.ts"
import { Invalid } from "../../src/services/kube/KubeErrors.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { groupOf, type ResourceType, Resources } from "../../src/services/kube/Resources.ts"
import { ComplianceScanSchedule, scheduleDefaults } from "../../src/api/ComplianceScanSchedule.ts"
import { asRecord, isRecord, jsonEqual } from "./Json.ts"
import { resourceKeyOf } from "./ObjectStore.ts"

/**
 * What the API server does to an object before storing it: name checks, the defaulting of
 * each kind, the CRD schemas (validation and pruning of unknown fields), and the CRD's
 * transition rules. Only the parts the operator can observe are modelled.
 */

/** `ComplianceScanRun.security.ugallu.io`: how Invalid messages name a kind. */
export const qualifiedKind = (resource: ResourceType) => {
  const group = groupOf(resource.apiVersion)
  return group === "" ? resource.kind : `${resource.kind}.${group}`
}

/** `compliancescanruns.security.ugallu.io`: how NotFound/Conflict messages name a resource. */
export const qualifiedResource = (resource: ResourceType) => {
  const group = groupOf(resource.apiVersion)
  return group === "" ? resource.plural : `${resource.plural}.${group}`
}

export const invalid = (resource: ResourceType, name: string, detail: string) =>
  new Invalid({ message: `${qualifiedKind(resource)} "${name}" is invalid: ${detail}` })

/** Groups served by the API server itself; everything else is a custom resource. */
const builtInGroups = new Set([
  "", "apps", "batch", "coordination.k8s.io", "events.k8s.io", "policy", "rbac.authorization.k8s.io",
  "networking.k8s.io", "storage.k8s.io", "autoscaling", "admissionregistration.k8s.io", "apiextensions.k8s.io",
  "scheduling.k8s.io", "node.k8s.io", "discovery.k8s.io", "certificates.k8s.io"
])

/** Custom resources refuse an update without metadata.resourceVersion; built-in kinds allow it. */
export const allowsUnconditionalUpdate = (resource: ResourceType) => builtInGroups.has(groupOf(resource.apiVersion))

const subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/u
const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/u

export const validateName = (resource: ResourceType, name: string): void => {
  if (resource.kind === "Namespace") {
    if (name.length > 63 || !label.test(name)) {
      throw invalid(resource, name, `metadata.name: Invalid value: "${name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character`)
    }
    return
  }
  if (name.length > 253 || !subdomain.test(name)) {
    throw invalid(resource, name, `metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`)
  }
}

type Mutable = Record<string, unknown>

/** Decodes (validates) and re-encodes one CRD's object; re-encoding drops unknown fields. */
type Pruner = (object: unknown) => Result.Result<unknown, Schema.SchemaError>

const pruner = <S extends Schema.Codec<any, any, never, never>>(schema: S): Pruner => {
  const decode = Schema.decodeResult(schema, { errors: "all" })
  const encode = Schema.encodeResult(schema)
  return (object) => Result.flatMap(decode(object as S["Encoded"]), (value) => encode(value))
}

/** The CRD schemas, by resource: the CRDs in crds/ are generated from the same Schemas. */
const crdSchemas = new Map<string, Pruner>([
  [resourceKeyOf(Resources.ComplianceScanRun), pruner(ComplianceScanRun)],
  [resourceKeyOf(Resources.ComplianceScanResult), pruner(ComplianceScanResult)],
  [resourceKeyOf(Resources.SecurityEvent), pruner(SecurityEvent)],
  [resourceKeyOf(Resources.ComplianceScanSchedule), pruner(ComplianceScanSchedule)]
])

/**
 * Validates a custom resource against its schema and prunes unknown fields from spec and
 * status (the structural-schema behaviour); metadata is kept whole, as the server does.
 */
const validateAndPrune = (resource: ResourceType, object: Mutable, prune: Pruner): Mutable => {
  const outcome = prune(object)
  if (Result.isFailure(outcome)) {
    const name = String(asRecord(object.metadata).name ?? "")
    throw invalid(resource, name, outcome.failure.message.replace(/\s*\n\s*/gu, " "))
  }
  const pruned = asRecord(outcome.success)
  const result: Mutable = { ...object }
  for (const key of ["spec", "status"]) {
    if (key in pruned) result[key] = pruned[key]
    else delete result[key]
  }
  return result
}

const defaultRunSpec = (spec: unknown): unknown => {
  if (!isRecord(spec)) return spec
  const defaulted: Mutable = { alertOn: specDefaults.alertOn, timeout: specDefaults.timeout, ...spec }
  if (isRecord(spec.kubeBench)) {
    defaulted.kubeBench = { maxConcurrentNodes: specDefaults.maxConcurrentNodes, ...spec.kubeBench }
  }
  if (isRecord(spec.falco)) defaulted.falco = { window: specDefaults.falcoWindow, ...spec.falco }
  return defaulted
}

const defaultScheduleSpec = (spec: unknown): unknown => {
  if (!isRecord(spec)) return spec
  const { suspend, concurrencyPolicy, successfulRunsHistoryLimit, failedRunsHistoryLimit } = scheduleDefaults
  return {
    suspend,
    concurrencyPolicy,
    successfulRunsHistoryLimit,
    failedRunsHistoryLimit,
    ...spec,
    ...("runTemplate" in spec ? { runTemplate: defaultRunSpec(spec.runTemplate) } : {})
  }
}

const defaultJob = (object: Mutable): Mutable => {
  const metadata = asRecord(object.metadata)
  const uid = String(metadata.uid ?? "")
  const name = String(metadata.name ?? "")
  const spec = asRecord(object.spec)
  const template = asRecord(spec.template)
  const templateMetadata = asRecord(template.metadata)
  const controllerLabels = {
    "batch.kubernetes.io/controller-uid": uid,
    "batch.kubernetes.io/job-name": name,
    "controller-uid": uid,
    "job-name": name
  }
  return {
    ...object,
    spec: {
      parallelism: 1,
      completions: 1,
      backoffLimit: 6,
      completionMode: "NonIndexed",
      suspend: false,
      ...spec,
      selector: spec.selector ?? { matchLabels: { "batch.kubernetes.io/controller-uid": uid } },
      template: {
        ...template,
        metadata: { ...templateMetadata, labels: { ...asRecord(templateMetadata.labels), ...controllerLabels } }
      }
    }
  }
}

const validateContainers = (resource: ResourceType, name: string, path: string, podSpec: Mutable): void => {
  const containers = podSpec.containers
  if (!Array.isArray(containers) || containers.length === 0) {
    throw invalid(resource, name, `${path}.containers: Required value`)
  }
  containers.forEach((container, index) => {
    const fields = asRecord(container)
    if (typeof fields.name !== "string" || fields.name === "") {
      throw invalid(resource, name, `${path}.containers[${index}].name: Required value`)
    }
    if (typeof fields.image !== "string" || fields.image === "") {
      throw invalid(resource, name, `${path}.containers[${index}].image: Required value`)
    }
  })
}

const validateJob = (resource: ResourceType, object: Mutable): void => {
  const name = String(asRecord(object.metadata).name)
  const podSpec = asRecord(asRecord(asRecord(object.spec).template).spec)
  validateContainers(resource, name, "spec.template.spec", podSpec)
  const restartPolicy = podSpec.restartPolicy
  if (restartPolicy !== "Never" && restartPolicy !== "OnFailure") {
    throw invalid(
      resource,
      name,
      restartPolicy === undefined
        ? `spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`
        : `spec.template.spec.restartPolicy: Unsupported value: "${String(restartPolicy)}": supported values: "OnFailure", "Never"`
    )
  }
}

const isKind = (resource: ResourceType, known: ResourceType) => resourceKeyOf(resource) === resourceKeyOf(known)

/**
 * Defaulting and validation of a new object (metadata already filled in). Returns the
 * object to store; throws Invalid.
 */
export const admitCreate = (resource: ResourceType, input: Mutable): Mutable => {
  let object = admitAny(resource, input)
  const name = String(asRecord(object.metadata).name)
  if (isKind(resource, Resources.Job)) {
    object = defaultJob(object)
    validateJob(resource, object)
  } else if (isKind(resource, Resources.Pod)) {
    const spec = asRecord(object.spec)
    validateContainers(resource, name, "spec", spec)
    object = { ...object, spec: { restartPolicy: "Always", ...spec } }
  } else if (isKind(resource, Resources.Namespace)) {
    const metadata = asRecord(object.metadata)
    object = {
      ...object,
      metadata: { ...metadata, labels: { ...asRecord(metadata.labels), "kubernetes.io/metadata.name": name } },
      spec: { finalizers: ["kubernetes"], ...asRecord(object.spec) }
    }
  }
  return object
}

/** Defaulting and validation on every write (create and update): the CRD schemas. */
const admitAny = (resource: ResourceType, input: Mutable): Mutable => {
  let object = input
  if (isKind(resource, Resources.ComplianceScanRun) && "spec" in object) {
    object = { ...object, spec: defaultRunSpec(object.spec) }
  }
  if (isKind(resource, Resources.ComplianceScanSchedule) && "spec" in object) {
    object = { ...object, spec: defaultScheduleSpec(object.spec) }
  }
  const prune = crdSchemas.get(resourceKeyOf(resource))
  return prune === undefined ? object : validateAndPrune(resource, object, prune)
}

/**
 * Defaulting, validation and transition rules of an update from `stored` to `next`.
 * Returns the object to store; throws Invalid.
 */
export const admitUpdate = (resource: ResourceType, stored: KubeObject, next: Mutable): Mutable => {
  const object = admitAny(resource, next)
  const name = stored.metadata.name
  if (isKind(resource, Resources.ComplianceScanRun) && !jsonEqual(stored.spec, object.spec)) {
    throw invalid(resource, name, `spec: Invalid value: "object": spec is immutable`)
  }
  if (isKind(resource, Resources.Job)) {
    const before = asRecord(stored.spec)
    const after = asRecord(object.spec)
    if (!jsonEqual(before.template, after.template)) {
      throw invalid(resource, name, `spec.template: Invalid value: "object": field is immutable`)
    }
    if (!jsonEqual(before.selector, after.selector)) {
      throw invalid(resource, name, `spec.selector: Invalid value: "object": field is immutable`)
    }
  }
  return object
}

/** The status a kind starts with when created through the API (status sent by the client is dropped). */
export const initialStatus = (resource: ResourceType): unknown => {
  if (isKind(resource, Resources.Pod)) return { phase: "Pending", qosClass: "BestEffort" }
  if (isKind(resource, Resources.Namespace)) return { phase: "Active" }
  return undefined
}
