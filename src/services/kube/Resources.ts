import { apiVersion } from "../../api/ObjectMeta.ts"

/** Where a kind lives in the API: enough to build its REST paths. */
export interface ResourceType {
  readonly apiVersion: string
  readonly kind: string
  readonly plural: string
  readonly namespaced: boolean
}

const resource = (apiVersion: string, kind: string, plural: string, namespaced = true): ResourceType => ({
  apiVersion,
  kind,
  plural,
  namespaced
})

export const Resources = {
  ComplianceScanRun: resource(apiVersion, "ComplianceScanRun", "compliancescanruns"),
  ComplianceScanResult: resource(apiVersion, "ComplianceScanResult", "compliancescanresults"),
  SecurityEvent: resource(apiVersion, "SecurityEvent", "securityevents", false),
  Job: resource("batch/v1", "Job", "jobs"),
  Pod: resource("v1", "Pod", "pods"),
  Namespace: resource("v1", "Namespace", "namespaces", false),
  Node: resource("v1", "Node", "nodes", false),
  Event: resource("v1", "Event", "events"),
  Lease: resource("coordination.k8s.io/v1", "Lease", "leases"),
  EndpointSlice: resource("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
  ComplianceException: resource(apiVersion, "ComplianceException", "complianceexceptions"),
  ComplianceScanSchedule: resource(apiVersion, "ComplianceScanSchedule", "compliancescanschedules")
} as const

/** `group` of an apiVersion ("" for the core group). */
export const groupOf = (apiVersion: string): string => (apiVersion.includes("/") ? apiVersion.split("/")[0]! : "")
