import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, resultPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * CEL rules over Deployments, RoleBindings, NetworkPolicies, CronJobs and a custom resource
 * on the real API server, evaluated by the operator as a real process with deploy/'s RBAC
 * (which lists the built-in kinds) plus a grant for the custom resource (as the chart's
 * `rbac.celReadRules` would add). LimitRanges are granted by neither: that rule's check is
 * an `error` naming Forbidden, the others are fine.
 */
const cluster = inject("cluster")
const crdName = "gadgets.cel-tests.example.com"
const extraRole = "cel-every-kind-test-reader"
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let operator: OperatorProcess | undefined

const deployment = (name: string, privileged: boolean): Json => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image: "registry.example.com/app:1", securityContext: { privileged } }] } }
  }
})

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "cel-every-kind")
  await admin.apply(resourcePath("apiextensions.k8s.io/v1", "CustomResourceDefinition", undefined, crdName), {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: crdName },
    spec: {
      group: "cel-tests.example.com",
      names: { kind: "Gadget", plural: "gadgets", singular: "gadget", listKind: "GadgetList" },
      scope: "Namespaced",
      versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", properties: { size: { type: "integer" } } } } } } }]
    }
  })
  await eventually(
    async () => {
      const crd = await admin.get(resourcePath("apiextensions.k8s.io/v1", "CustomResourceDefinition", undefined, crdName))
      return (crd.status?.conditions ?? []).some((condition: Json) => condition.type === "Established" && condition.status === "True") ? true : undefined
    },
    { what: "the Gadget CRD to be Established", timeoutMillis: 30_000 }
  )
  const { serviceAccount } = identity
  await admin.apply(resourcePath("rbac.authorization.k8s.io/v1", "ClusterRole", undefined, extraRole), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: extraRole },
    rules: [{ apiGroups: ["cel-tests.example.com"], resources: ["gadgets"], verbs: ["list"] }]
  })
  await admin.apply(resourcePath("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", undefined, extraRole), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: extraRole },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: extraRole },
    subjects: [{ kind: "ServiceAccount", name: serviceAccount.name, namespace: serviceAccount.namespace }]
  })
  const at = (kind: string, apiVersion: string) => resourcePath(apiVersion, kind, namespace)
  await admin.create(at("Deployment", "apps/v1"), deployment("web", false))
  await admin.create(at("Deployment", "apps/v1"), deployment("debug", true))
  await admin.create(at("RoleBinding", "rbac.authorization.k8s.io/v1"), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "everyone-admin" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:authenticated" }]
  })
  await admin.create(`/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`, {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "allow-all" },
    spec: { podSelector: {}, ingress: [{}], policyTypes: ["Ingress"] }
  })
  for (const [name, suspend] of [["nightly", true], ["hourly", false]] as const) {
    await admin.create(`/apis/batch/v1/namespaces/${namespace}/cronjobs`, {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name },
      spec: {
        schedule: "0 3 * * *",
        suspend,
        jobTemplate: { spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "task", image: "registry.example.com/task:1" }] } } } }
      }
    })
  }
  await admin.create(`/api/v1/namespaces/${namespace}/limitranges`, {
    apiVersion: "v1",
    kind: "LimitRange",
    metadata: { name: "defaults" },
    spec: { limits: [{ type: "Container", default: { memory: "256Mi" } }] }
  })
  for (const [name, size] of [["small", 3], ["huge", 300]] as const) {
    await admin.create(`/apis/cel-tests.example.com/v1/namespaces/${namespace}/gadgets`, { apiVersion: "cel-tests.example.com/v1", kind: "Gadget", metadata: { name }, spec: { size } })
  }
  operator = await startTestOperator(cluster, identity, { name: "cel-every-kind-operator", namespace })
})

afterAll(async () => {
  await operator?.stop()
  await deleteNamespace(admin, namespace)
  await admin.remove(resourcePath("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", undefined, extraRole))
  await admin.remove(resourcePath("rbac.authorization.k8s.io/v1", "ClusterRole", undefined, extraRole))
  await admin.remove(resourcePath("apiextensions.k8s.io/v1", "CustomResourceDefinition", undefined, crdName))
  admin.close()
})

const rule = (id: string, match: Json, expression: string): Json => ({
  id,
  severity: "high",
  match: { ...match, namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } },
  expression
})

describe("cel rules over every kind on the real API server", () => {
  it("gives per-object subjects for Deployments, RoleBindings, NetworkPolicies, CronJobs and a CRD; a kind without RBAC is that check's Forbidden error", async () => {
    await withOperatorLogs([operator], async () => {
      await createRun(admin, namespace, "kinds", {
        backend: "cel",
        cel: {
          rules: [
            rule("templates-unprivileged", { resources: ["deployments"] }, "object.spec.template.spec.containers.all(c, !c.?securityContext.?privileged.orValue(false))"),
            rule("no-broad-bindings", { apiGroups: ["rbac.authorization.k8s.io"], resources: ["rolebindings"] }, "!object.subjects.exists(s, s.name in ['system:authenticated', 'system:unauthenticated'])"),
            rule("no-allow-all-ingress", { resources: ["networkpolicies"] }, "!has(object.spec.ingress) || !object.spec.ingress.exists(r, !has(r.from) && !has(r.ports))"),
            rule("gadgets-small", { apiGroups: ["cel-tests.example.com"], apiVersions: ["v1"], resources: ["gadgets"] }, "object.spec.size < 10"),
            rule("cronjobs-suspended", { resources: ["cronjobs"] }, "object.spec.suspend"),
            rule("limitranges-cap-memory", { apiGroups: [""], apiVersions: ["v1"], resources: ["limitranges"] }, "object.spec.limits.all(l, has(l.max))")
          ]
        }
      })
      const run = await waitForRun(admin, namespace, "kinds", { timeoutMillis: 60_000 })
      expect(run.status.phase).toBe("Succeeded")
      const result = await admin.get(resultPath(namespace, "kinds"))
      const checks = Object.fromEntries((result.spec.checks as Array<Json>).map((check) => [check.checkID, check]))
      const subjects = (id: string) => ((checks[id]!.subjects ?? []) as Array<Json>).map((subject) => `${subject.kind} ${subject.namespace}/${subject.name} ${subject.outcome}`)

      expect(subjects("templates-unprivileged")).toEqual([`Deployment ${namespace}/debug fail`])
      expect(checks["templates-unprivileged"]!.subjectCounts).toMatchObject({ pass: 1, fail: 1 })
      expect(subjects("no-broad-bindings")).toEqual([`RoleBinding ${namespace}/everyone-admin fail`])
      expect(subjects("no-allow-all-ingress")).toEqual([`NetworkPolicy ${namespace}/allow-all fail`])
      expect(subjects("gadgets-small")).toEqual([`Gadget ${namespace}/huge fail`])
      expect(checks["gadgets-small"]!.subjectCounts).toMatchObject({ pass: 1, fail: 1 })
      // CronJobs: listed with deploy/'s RBAC alone, evaluated per object.
      expect(subjects("cronjobs-suspended")).toEqual([`CronJob ${namespace}/hourly fail`])
      expect(checks["cronjobs-suspended"]!.subjectCounts).toMatchObject({ pass: 1, fail: 1 })
      expect(checks["limitranges-cap-memory"]).toMatchObject({ outcome: "error" })
      expect(checks["limitranges-cap-memory"]!.detail).toMatch(/^cannot list limitranges: Forbidden: .*cannot list resource "limitranges"/)
    })
  })
})
