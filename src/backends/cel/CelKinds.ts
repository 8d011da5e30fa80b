import type { CelRule } from "../../api/ComplianceScanRun.ts"
import { celDefaultResources } from "../../api/ComplianceScanRun.ts"
import type { ResourceType } from "../../services/kube/Resources.ts"

/**
 * The kinds rules can match: `match.resources` (plural names) with `match.apiGroups` and
 * `match.apiVersions`, like a ValidatingAdmissionPolicy's resourceRules. Built-in kinds
 * are known (their group is inferred when `apiGroups` is absent); any other resource, a
 * CRD's, is named by group, version and plural. A resource is identified by
 * `<plural>.<group>` (`deployments.apps`, `pods` for the core group), as kubectl does.
 */

export interface CelKind extends ResourceType {
  readonly group: string
  /** `<plural>.<group>`, or the plural alone for the core group. */
  readonly key: string
}

const kind = (group: string, version: string, kindName: string, plural: string, namespaced: boolean): CelKind => ({
  group,
  apiVersion: group === "" ? version : `${group}/${version}`,
  kind: kindName,
  plural,
  namespaced,
  key: group === "" ? plural : `${plural}.${group}`
})

export const builtInKinds: ReadonlyArray<CelKind> = [
  kind("", "v1", "Pod", "pods", true),
  kind("", "v1", "Namespace", "namespaces", false),
  kind("", "v1", "Service", "services", true),
  kind("", "v1", "ServiceAccount", "serviceaccounts", true),
  kind("", "v1", "ConfigMap", "configmaps", true),
  kind("", "v1", "Secret", "secrets", true),
  kind("", "v1", "Node", "nodes", false),
  kind("", "v1", "PersistentVolume", "persistentvolumes", false),
  kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true),
  kind("apps", "v1", "Deployment", "deployments", true),
  kind("apps", "v1", "StatefulSet", "statefulsets", true),
  kind("apps", "v1", "DaemonSet", "daemonsets", true),
  kind("apps", "v1", "ReplicaSet", "replicasets", true),
  kind("batch", "v1", "Job", "jobs", true),
  kind("batch", "v1", "CronJob", "cronjobs", true),
  kind("networking.k8s.io", "v1", "Ingress", "ingresses", true),
  kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true),
  kind("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
  kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false),
  kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true),
  kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false)
]

export const namespaceKind = builtInKinds.find((known) => known.plural === "namespaces")!
export const networkPolicyKind = builtInKinds.find((known) => known.plural === "networkpolicies")!

const builtInByGroupAndPlural = new Map(builtInKinds.map((known) => [`${known.group}|${known.plural}`, known]))

/** Objects whose content a rule never sees: only their metadata (Secret data stays unread). */
export const metadataOnlyKinds: ReadonlySet<string> = new Set(["secrets"])

/** What rules see of a metadata-only kind's object besides apiVersion, kind and metadata. */
export const metadataOnlyMembers: ReadonlyArray<string> = ["type"]

/** The kinds a rule matches, or why it names one that cannot be resolved. */
export const kindsOfRule = (rule: CelRule): ReadonlyArray<CelKind> | string => {
  const resources = rule.match?.resources !== undefined && rule.match.resources.length > 0 ? rule.match.resources : celDefaultResources
  const versions = rule.match?.apiVersions ?? []
  const kinds: Array<CelKind> = []
  for (const plural of resources) {
    const groups = rule.match?.apiGroups ?? builtInKinds.filter((known) => known.plural === plural).map((known) => known.group)
    if (groups.length === 0) {
      return `resource "${plural}" is not a built-in kind: name its apiGroups and apiVersions (a custom resource)`
    }
    for (const group of groups) {
      const builtIn = builtInByGroupAndPlural.get(`${group}|${plural}`)
      if (builtIn !== undefined && (versions.length === 0 || versions.includes(builtIn.apiVersion.split("/").at(-1)!))) {
        kinds.push(builtIn)
        continue
      }
      const [version, ...more] = versions
      if (version === undefined || more.length > 0) {
        return `resource "${plural}" in group "${group}" is not a built-in kind: give exactly one of its apiVersions`
      }
      // The kind's name comes from the list the API server answers; namespaced or not, a
      // list over all namespaces has the same path.
      kinds.push(kind(group, version, "", plural, false))
    }
  }
  return kinds
}
