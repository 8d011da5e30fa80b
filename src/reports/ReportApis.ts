import type { ResourceType } from "../services/kube/Resources.ts"

/**
 * The two report APIs the operator can write: OpenReports (`openreports.io/v1alpha1`) and
 * its predecessor from the policy working group (`wgpolicyk8s.io/v1alpha2`), which tools
 * that predate OpenReports still read. Both have the same shape of results.
 */
export const reportApiNames = ["openreports", "wgpolicyk8s"] as const
export type ReportApiName = (typeof reportApiNames)[number]

export interface ReportApi {
  readonly name: ReportApiName
  /** Findings about objects of one namespace. */
  readonly namespaced: ResourceType
  /** Findings about nodes, hosts and cluster-scoped objects. */
  readonly cluster: ResourceType
  /** OpenReports has a report-level `source`; v1alpha2 does not. */
  readonly reportSource: boolean
}

export const reportApis: Record<ReportApiName, ReportApi> = {
  openreports: {
    name: "openreports",
    namespaced: { apiVersion: "openreports.io/v1alpha1", kind: "Report", plural: "reports", namespaced: true },
    cluster: { apiVersion: "openreports.io/v1alpha1", kind: "ClusterReport", plural: "clusterreports", namespaced: false },
    reportSource: true
  },
  wgpolicyk8s: {
    name: "wgpolicyk8s",
    namespaced: { apiVersion: "wgpolicyk8s.io/v1alpha2", kind: "PolicyReport", plural: "policyreports", namespaced: true },
    cluster: {
      apiVersion: "wgpolicyk8s.io/v1alpha2",
      kind: "ClusterPolicyReport",
      plural: "clusterpolicyreports",
      namespaced: false
    },
    reportSource: false
  }
}

/** The `--report-api` choices: `auto` takes OpenReports when served, else wgpolicyk8s when served, else none. */
export const reportApiChoices = ["auto", "openreports", "wgpolicyk8s", "both", "none"] as const
export type ReportApiChoice = (typeof reportApiChoices)[number]

/** The APIs to write for a choice, given which ones the API server serves. */
export const selectReportApis = (
  choice: ReportApiChoice,
  served: ReadonlySet<ReportApiName>
): ReadonlyArray<ReportApiName> => {
  switch (choice) {
    case "none":
      return []
    case "both":
      return ["openreports", "wgpolicyk8s"]
    case "openreports":
    case "wgpolicyk8s":
      return [choice]
    case "auto":
      return served.has("openreports") ? ["openreports"] : served.has("wgpolicyk8s") ? ["wgpolicyk8s"] : []
  }
}
