import { Invalid } from "../../src/services/kube/KubeErrors.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { parseSelector, SelectorSyntaxError } from "../../src/services/kube/LabelSelector.ts"
import type { ResourceType } from "../../src/services/kube/Resources.ts"
import { asRecord } from "./Json.ts"

/** A label selector in the string syntax; a malformed one is a bad request, as on the server. */
export const parseLabelSelector = (selector: string | undefined): ReturnType<typeof parseSelector> => {
  try {
    return parseSelector(selector)
  } catch (error) {
    if (error instanceof SelectorSyntaxError) {
      throw new Invalid({ message: `unable to parse requirement: ${error.message}` })
    }
    throw error
  }
}

/** The fields each kind can be selected by (the server's field label conversion functions). */
const extraFields: Record<string, ReadonlyArray<string>> = {
  Pod: [
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
    "status.phase", "status.podIP", "status.nominatedNodeName"
  ],
  Event: [
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
    "reportingComponent", "source", "type"
  ],
  Node: ["spec.unschedulable"],
  Namespace: ["status.phase"],
  Job: ["status.successful"]
}

const valueAt = (object: KubeObject, path: string): string => {
  let current: unknown = object
  for (const segment of path.split(".")) current = asRecord(current)[segment]
  return current === undefined || current === null ? "" : String(current)
}

export type FieldFilter = (object: KubeObject) => boolean

/** `metadata.name=x,spec.nodeName!=y` as a predicate; unsupported fields are rejected. */
export const parseFieldSelector = (resource: ResourceType, selector: string | undefined): FieldFilter => {
  const terms = (selector ?? "")
    .split(",")
    .map((term) => term.trim())
    .filter((term) => term.length > 0)
    .map((term) => {
      const match = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/u.exec(term)
      if (match === null) throw new Invalid({ message: `invalid field selector: ${JSON.stringify(term)}` })
      const field = match[1]!
      const allowed = field === "metadata.name" || field === "metadata.namespace" ||
        (extraFields[resource.kind] ?? []).includes(field)
      if (!allowed) throw new Invalid({ message: `field label not supported: ${field}` })
      return { field, equal: match[2] !== "!=", value: match[3]! }
    })
  if (terms.length === 0) return () => true
  return (object) => terms.every((term) => (valueAt(object, term.field) === term.value) === term.equal)
}
