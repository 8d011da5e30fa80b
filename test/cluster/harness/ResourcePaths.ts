import type { Json } from "./KubeHttp.ts"

/** The kinds the cluster tests touch: plural and scope, enough to build REST paths. */
const kinds: Record<string, { readonly plural: string; readonly namespaced: boolean }> = {
  Namespace: { plural: "namespaces", namespaced: false },
  Node: { plural: "nodes", namespaced: false },
  Pod: { plural: "pods", namespaced: true },
  ServiceAccount: { plural: "serviceaccounts", namespaced: true },
  ConfigMap: { plural: "configmaps", namespaced: true },
  Event: { plural: "events", namespaced: true },
  Job: { plural: "jobs", namespaced: true },
  Lease: { plural: "leases", namespaced: true },
  ClusterRole: { plural: "clusterroles", namespaced: false },
  ClusterRoleBinding: { plural: "clusterrolebindings", namespaced: false },
  Role: { plural: "roles", namespaced: true },
  RoleBinding: { plural: "rolebindings", namespaced: true },
  CustomResourceDefinition: { plural: "customresourcedefinitions", namespaced: false },
  ValidatingAdmissionPolicy: { plural: "validatingadmissionpolicies", namespaced: false },
  ValidatingAdmissionPolicyBinding: { plural: "validatingadmissionpolicybindings", namespaced: false },
  ValidatingWebhookConfiguration: { plural: "validatingwebhookconfigurations", namespaced: false },
  ComplianceScanRun: { plural: "compliancescanruns", namespaced: true },
  ComplianceScanResult: { plural: "compliancescanresults", namespaced: true },
  SecurityEvent: { plural: "securityevents", namespaced: false },
  ComplianceException: { plural: "complianceexceptions", namespaced: true },
  Service: { plural: "services", namespaced: true },
  EndpointSlice: { plural: "endpointslices", namespaced: true },
  Deployment: { plural: "deployments", namespaced: true },
  PodDisruptionBudget: { plural: "poddisruptionbudgets", namespaced: true },
  ServiceMonitor: { plural: "servicemonitors", namespaced: true },
  PrometheusRule: { plural: "prometheusrules", namespaced: true },
  PriorityClass: { plural: "priorityclasses", namespaced: false },
  ComplianceScanSchedule: { plural: "compliancescanschedules", namespaced: true }
}

/** Whether objects of a kind live in a namespace. */
export const isNamespacedKind = (kind: string): boolean => {
  const entry = kinds[kind]
  if (entry === undefined) throw new Error(`unknown kind ${kind}`)
  return entry.namespaced
}

export const apiVersions = {
  ComplianceScanRun: "security.ugallu.io/v1alpha1",
  ComplianceScanResult: "security.ugallu.io/v1alpha1",
  SecurityEvent: "security.ugallu.io/v1alpha1",
  Job: "batch/v1",
  Lease: "coordination.k8s.io/v1",
  ComplianceException: "security.ugallu.io/v1alpha1",
  ComplianceScanSchedule: "security.ugallu.io/v1alpha1"
} as const

/**
 * `/api/v1/namespaces/ns/pods/name`, `/apis/batch/v1/namespaces/ns/jobs` (no name: the
 * collection; no namespace for a namespaced kind: across all namespaces).
 */
export const resourcePath = (apiVersion: string, kind: string, namespace?: string, name?: string): string => {
  const entry = kinds[kind]
  if (entry === undefined) throw new Error(`resourcePath: unknown kind ${kind}`)
  const base = apiVersion === "v1" ? "/api/v1" : `/apis/${apiVersion}`
  const scope = entry.namespaced && namespace !== undefined ? `/namespaces/${namespace}` : ""
  return `${base}${scope}/${entry.plural}${name === undefined ? "" : `/${name}`}`
}

/** The path of an object (manifest) itself. */
export const objectPath = (object: Json): string => {
  const kind = String(object.kind)
  const namespaced = kinds[kind]?.namespaced ?? false
  return resourcePath(String(object.apiVersion), kind, namespaced ? String(object.metadata?.namespace ?? "default") : undefined, String(object.metadata?.name))
}
