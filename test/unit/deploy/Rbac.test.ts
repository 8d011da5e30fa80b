import { describe, expect, it } from "vitest"
import { containerEnvironment, contractRules, endpointSlicesRule, findManifest, grants, kustomizeResources, networkPoliciesRule, nodesRule } from "./DeployFiles.ts"

const objects = kustomizeResources()
const deployment = findManifest(objects, "Deployment", "compliance-scan")
const serviceAccount = findManifest(objects, "ServiceAccount")
const clusterRole = findManifest(objects, "ClusterRole", "ugallu-compliance-scan")
const role = findManifest(objects, "Role", "ugallu-compliance-scan-jobs")
const leaderElectionRole = findManifest(objects, "Role", "ugallu-compliance-scan-leader-election")
const endpointsRole = findManifest(objects, "Role", "ugallu-compliance-scan-endpoints")
const roles = objects.filter((object) => object.kind === "Role")
const env = containerEnvironment(deployment, { name: "compliance-scan-0", namespace: deployment.metadata.namespace! })

describe("deploy/ RBAC", () => {
  it("grants exactly the rules of the API contract nothing wider", () => {
    expect(roles).toHaveLength(3)
    expect(grants([...clusterRole.rules, ...roles.flatMap((entry) => entry.rules)])).toEqual(grants([...contractRules(), nodesRule, networkPoliciesRule, endpointSlicesRule]))
    for (const rule of [...clusterRole.rules, ...roles.flatMap((entry) => entry.rules)]) {
      expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain("*")
    }
  })

  it("creates Jobs and reads Pod logs only in the kube-bench Job namespace (cluster-wide Jobs and CronJobs are only listed)", () => {
    expect(grants(clusterRole.rules).filter((grant) => grant.startsWith("batch/") || grant.startsWith("core/pods/log"))).toEqual([
      "batch/cronjobs:list", "batch/jobs:list"
    ])
    expect(role.metadata.namespace).toBe(env.JOB_NAMESPACE)
    expect(grants(role.rules)).toEqual([
      "batch/jobs:create", "batch/jobs:delete", "batch/jobs:get", "batch/jobs:list", "batch/jobs:watch", "core/pods/log:get", "core/pods:watch"
    ])
  })

  it("binds every role to the Deployment's ServiceAccount", () => {
    expect(deployment.spec.template.spec.serviceAccountName).toBe(serviceAccount.metadata.name)
    expect(serviceAccount.metadata.namespace).toBe(deployment.metadata.namespace)
    const subject = { kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace: serviceAccount.metadata.namespace }
    const clusterBinding = findManifest(objects, "ClusterRoleBinding")
    expect(clusterBinding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole.metadata.name })
    expect(clusterBinding.subjects).toEqual([subject])
    for (const bound of [role, leaderElectionRole, endpointsRole]) {
      const roleBinding = findManifest(objects, "RoleBinding", bound.metadata.name)
      expect(roleBinding.metadata.namespace).toBe(bound.metadata.namespace)
      expect(roleBinding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: bound.metadata.name })
      expect(roleBinding.subjects).toEqual([subject])
    }
  })

  it("writes EndpointSlices only in its own namespace (the receiver Service's), never cluster-wide", () => {
    expect(endpointsRole.metadata.namespace).toBe(deployment.metadata.namespace)
    expect(grants(endpointsRole.rules)).toEqual(grants([endpointSlicesRule]))
    expect(grants(clusterRole.rules).filter((grant) => grant.startsWith("discovery.k8s.io/"))).toEqual([])
    const receiverService = findManifest(objects, "Service", "compliance-scan-falco")
    expect(receiverService.metadata.namespace).toBe(deployment.metadata.namespace)
    expect(receiverService.spec.selector).toBeUndefined()
    expect(receiverService.spec.ports.map((port: { name: string }) => port.name)).toEqual(["https"])
  })

  it("lists the built-in kinds CEL rules match, list only, never Secrets", () => {
    const builtIn = [
      "apps/daemonsets", "apps/deployments", "apps/replicasets", "apps/statefulsets", "batch/cronjobs", "batch/jobs",
      "core/configmaps", "core/namespaces", "core/nodes", "core/persistentvolumes", "core/pods", "core/serviceaccounts", "core/services",
      "networking.k8s.io/ingresses", "networking.k8s.io/networkpolicies",
      "rbac.authorization.k8s.io/clusterrolebindings", "rbac.authorization.k8s.io/clusterroles",
      "rbac.authorization.k8s.io/rolebindings", "rbac.authorization.k8s.io/roles"
    ]
    const clusterGrants = grants(clusterRole.rules)
    expect(clusterGrants.filter((grant) => builtIn.some((resource) => grant.startsWith(`${resource}:`)))).toEqual(builtIn.map((resource) => `${resource}:list`))
    expect([...clusterGrants, ...grants(roles.flatMap((entry) => entry.rules))].filter((grant) => grant.startsWith("core/secrets"))).toEqual([])
  })

  it("leader election's Lease namespace is the operator's own, where a Role (not the ClusterRole) allows Leases", () => {
    expect(env.LEADER_ELECTION_NAMESPACE).toBe(deployment.metadata.namespace)
    expect(leaderElectionRole.metadata.namespace).toBe(deployment.metadata.namespace)
    expect(grants(leaderElectionRole.rules)).toEqual([
      "coordination.k8s.io/leases:create", "coordination.k8s.io/leases:get", "coordination.k8s.io/leases:update"
    ])
    expect(grants(clusterRole.rules).filter((grant) => grant.startsWith("coordination.k8s.io/"))).toEqual([])
  })
})

describe("deploy/ namespaces", () => {
  it("only the kube-bench Job namespace allows privileged Pods; the operator's enforces restricted", () => {
    const levels = Object.fromEntries(
      objects.filter((object) => object.kind === "Namespace").map((namespace) => [
        namespace.metadata.name,
        (namespace.metadata.labels as Record<string, string>)["pod-security.kubernetes.io/enforce"]
      ])
    )
    expect(levels).toEqual({ [deployment.metadata.namespace!]: "restricted", [env.JOB_NAMESPACE!]: "privileged" })
    expect(env.JOB_NAMESPACE).toBe("ugallu-system-privileged")
    expect(deployment.metadata.namespace).toBe("ugallu-system")
  })
})
