import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Check } from "../../../src/api/Check.ts"
import type { CelRule, ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { builtInKinds } from "../../../src/backends/cel/CelKinds.ts"
import { CelScanner } from "../../../src/backends/cel/CelScanner.ts"
import { KubeClient } from "../../../src/services/kube/KubeClient.ts"
import { Forbidden } from "../../../src/services/kube/KubeErrors.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { namespace } from "../../unit/cel/PodFixtures.ts"

/** Rules over workloads, RBAC, networking, Secrets (metadata only) and a custom resource; a kind without RBAC. */

const widgetKind = { apiVersion: "example.com/v1", kind: "Widget", plural: "widgets", namespaced: true }

const deployment = (name: string, privileged: boolean): KubeObject => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name, namespace: "shop", labels: { app: name } },
  spec: { replicas: 2, template: { spec: { containers: [{ name: "app", image: "app:1", securityContext: { privileged } }] } } }
})

const world: ReadonlyArray<KubeObject> = [
  namespace("shop", { team: "payments" }),
  namespace("lab", { team: "research" }),
  deployment("web", false),
  deployment("debug", true),
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "ops-admin" }, roleRef: { kind: "ClusterRole", name: "cluster-admin" }, subjects: [{ kind: "Group", name: "ops" }] },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "masters" }, roleRef: { kind: "ClusterRole", name: "cluster-admin" }, subjects: [{ kind: "Group", name: "system:masters" }] },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "viewers", namespace: "lab" }, roleRef: { kind: "ClusterRole", name: "view" }, subjects: [{ kind: "User", name: "ana" }] },
  { apiVersion: "v1", kind: "Secret", metadata: { name: "db", namespace: "shop" }, type: "Opaque", data: { password: "c2VjcmV0" } },
  { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w1", namespace: "lab" }, spec: { size: 3 } },
  { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w2", namespace: "lab" }, spec: { size: 30 } }
]

const rule = (id: string, match: CelRule["match"], expression: string): CelRule => ({ id, severity: "high", match, expression })

const run = (rules: ReadonlyArray<CelRule>): ComplianceScanRun => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "kinds", namespace: "ugallu-system", uid: "uid-kinds" },
  spec: { backend: "cel", cel: { rules } }
})

/** The simulated cluster, whose API server refuses to list CronJobs (as missing RBAC would). */
const cluster = () => {
  const simulated = SimulatedCluster.layer({ objects: world, resources: [...builtInKinds, widgetKind] })
  const refusingCronJobs = Layer.effect(
    KubeClient,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      return KubeClient.of({
        ...kube,
        list: (resource, options) =>
          resource.plural === "cronjobs"
            ? Effect.fail(new Forbidden({ message: 'cronjobs.batch is forbidden: User "system:serviceaccount:ugallu-system:compliance-scan" cannot list resource "cronjobs"' }))
            : kube.list(resource, options)
      })
    })
  ).pipe(Layer.provide(simulated))
  return CelScanner.layer().pipe(Layer.provideMerge(Layer.mergeAll(refusingCronJobs, Metrics.layerTest)))
}

const scan = (rules: ReadonlyArray<CelRule>) =>
  Effect.gen(function*() {
    const scanner = yield* CelScanner
    const report = yield* Effect.scoped(scanner.scan({ run: run(rules), deadline: Date.now() + 60_000, reportProgress: () => Effect.void }))
    return Object.fromEntries(report.checks.map((check) => [check.checkID, check])) as Record<string, Check>
  })

const failing = (check: Check | undefined) => (check?.subjects ?? []).map((subject) => `${subject.kind} ${subject.namespace ?? ""}/${subject.name}`)

describe("cel rules over every kind", () => {
  it.effect("gives per-object subjects for workloads, RBAC, Secrets and custom resources; a kind it may not list is that rule's error", () =>
    Effect.gen(function*() {
      const checks = yield* scan([
        rule("no-privileged-templates", { resources: ["deployments"] }, "object.spec.template.spec.containers.all(c, !c.?securityContext.?privileged.orValue(false))"),
        rule(
          "no-cluster-admin",
          { apiGroups: ["rbac.authorization.k8s.io"], resources: ["clusterrolebindings", "rolebindings"] },
          "object.roleRef.name != 'cluster-admin' || object.subjects.all(s, s.name.startsWith('system:'))"
        ),
        rule("secrets-unread", { resources: ["secrets"] }, "!has(object.data) && object.type == 'Opaque'"),
        rule("small-widgets", { apiGroups: ["example.com"], apiVersions: ["v1"], resources: ["widgets"] }, "object.spec.size < 10"),
        // Cluster-scoped objects pass every namespaceSelector, as in admission.
        rule("bindings-in-research", { resources: ["clusterrolebindings"], namespaceSelector: { matchLabels: { team: "research" } } }, "false"),
        rule("cronjobs-suspended", { resources: ["cronjobs"] }, "object.spec.suspend"),
        rule("namespaces-labelled", { resources: ["namespaces"] }, "has(object.metadata.labels.team)")
      ])
      expect(failing(checks["no-privileged-templates"])).toEqual(["Deployment shop/debug"])
      expect(checks["no-privileged-templates"]!.subjectCounts).toMatchObject({ pass: 1, fail: 1 })
      expect(failing(checks["no-cluster-admin"])).toEqual(["ClusterRoleBinding /ops-admin"])
      expect(checks["no-cluster-admin"]!.subjectCounts).toMatchObject({ pass: 2, fail: 1 })
      expect(checks["secrets-unread"]).toMatchObject({ outcome: "pass", subjectCounts: { pass: 1 } })
      expect(failing(checks["small-widgets"])).toEqual(["Widget lab/w2"])
      expect(checks["bindings-in-research"]!.subjectCounts).toMatchObject({ fail: 2 })
      expect(checks["cronjobs-suspended"]).toMatchObject({
        outcome: "error",
        detail: expect.stringMatching(/^cannot list cronjobs\.batch: Forbidden: cronjobs\.batch is forbidden/)
      })
      expect(checks["namespaces-labelled"]).toMatchObject({ outcome: "pass", subjectCounts: { pass: 2 } })
    }).pipe(Effect.provide(cluster())))

  it.effect("refuses a resource that is neither built in nor named with its group and version", () =>
    Effect.gen(function*() {
      const scanner = yield* CelScanner
      const failure = yield* Effect.flip(Effect.scoped(scanner.scan({ run: run([rule("w", { resources: ["widgets"] }, "true")]), deadline: Date.now() + 60_000, reportProgress: () => Effect.void })))
      expect(failure).toMatchObject({
        reason: "CELCompileError",
        message: 'rule "w": invalid match: resource "widgets" is not a built-in kind: name its apiGroups and apiVersions (a custom resource)'
      })
    }).pipe(Effect.provide(cluster())))
})
