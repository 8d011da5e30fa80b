import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { Metrics } from "../../src/services/Metrics.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { LiveKubeClient } from "../../src/services/kube/LiveKubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import "./harness/ClusterInfo.ts"
import { createPods } from "./harness/BulkPods.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { createRun, resultPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * A cel scan on the real API server pages through the Pods (limit/continue: 500 in the first
 * page, later pages sized by their bytes, at most 2,000) and evaluates each page as it
 * arrives: the counts cover every Pod exactly once, and the operator's own request metrics
 * show the pages' list requests.
 */
const cluster = inject("cluster")
const podCount = 1_100
const firstPageSize = 500
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let operator: OperatorProcess | undefined

const names = Array.from({ length: podCount }, (_, index) => `pod-${String(index).padStart(4, "0")}`)
/**
 * Every tenth Pod is flagged by a label only this file's rule reads (not made privileged: the
 * files after this one scan every namespace with the built-in packs, and this namespace's
 * 1,100 Pods take a while to go).
 */
const flagged = (index: number) => index % 10 === 0
const flagLabel = "paging.compliance-scan.test/flagged"

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "cel-paging")
  await createPods(admin, namespace, names, (name, index) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { app: "paging", ...(flagged(index) ? { [flagLabel]: "yes" } : {}) } },
    spec: { containers: [{ name: "app", image: "registry.example.com/app:1" }] }
  }))
  operator = await startTestOperator(cluster, identity, { name: "cel-paging-operator", namespace })
}, 180_000)

afterAll(async () => {
  await operator?.stop()
  await deleteNamespace(admin, namespace)
  admin.close()
})

describe("paged cel scan on the real API server", () => {
  it("counts every Pod once over several pages, one list request per page", async () => {
    await withOperatorLogs([operator], async () => {
      const podLists = () => operator!.metricSum("ugallu_compliance_scan_api_requests_total", { verb: "list", resource: "pods" })
      const before = await podLists()
      await createRun(admin, namespace, "paged", {
        backend: "cel",
        cel: {
          rules: [{
            id: "not-flagged",
            severity: "critical",
            match: { resources: ["pods"], namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } },
            expression: `!("${flagLabel}" in object.metadata.labels)`,
            messageExpression: "'flagged pod ' + object.metadata.name"
          }]
        }
      })
      const run = await waitForRun(admin, namespace, "paged", { timeoutMillis: 120_000 })
      expect(run.status.phase).toBe("Succeeded")
      const result = await admin.get(resultPath(namespace, "paged"))
      const check = result.spec.checks.find((entry: Json) => entry.checkID === "not-flagged")
      expect(check.subjectCounts).toEqual({ pass: podCount - podCount / 10, fail: podCount / 10, warn: 0, skip: 0, error: 0 })
      // Subjects are capped at 100 per check; each failing Pod appears at most once.
      const subjects = (check.subjects as Array<Json>).map((subject) => subject.name as string)
      expect(subjects).toHaveLength(100)
      expect(new Set(subjects).size).toBe(100)
      expect(subjects.every((name) => flagged(Number(name.slice("pod-".length))))).toBe(true)
      expect(check.subjects[0].message).toMatch(/^flagged pod pod-\d{4}$/u)
      // Every Pod of the cluster (at least this namespace's): the first page of 500, then the rest.
      expect((await podLists()) - before).toBeGreaterThanOrEqual(Math.ceil(podCount / firstPageSize) - 1)
    })
  }, 180_000)

  it("keeps metadata.managedFields for a run whose rules read them (they are left out of the pages only when no rule may)", async () => {
    await withOperatorLogs([operator], async () => {
      // Every Pod has them: the API server's field manager wrote them on create.
      await createRun(admin, namespace, "managed-fields", {
        backend: "cel",
        cel: {
          rules: [{
            id: "has-managed-fields",
            severity: "low",
            match: { resources: ["pods"], namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } },
            expression: "object.metadata.managedFields.exists(entry, entry.operation == 'Update')"
          }, {
            id: "named",
            severity: "low",
            match: { resources: ["pods"], namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } },
            expression: "object.metadata.name.startsWith('pod-')"
          }]
        }
      })
      const run = await waitForRun(admin, namespace, "managed-fields", { timeoutMillis: 120_000 })
      expect(run.status.phase).toBe("Succeeded")
      const result = await admin.get(resultPath(namespace, "managed-fields"))
      for (const id of ["has-managed-fields", "named"]) {
        expect(result.spec.checks.find((entry: Json) => entry.checkID === id).subjectCounts).toEqual({ pass: podCount, fail: 0, warn: 0, skip: 0, error: 0 })
      }
    })
  }, 180_000)

  it("reads the real API server's pages without what the scan does not read: managedFields gone, other members null", async () => {
    const page = await Effect.runPromise(
      Effect.gen(function*() {
        const kube = yield* KubeClient
        const answer = yield* kube.listPage!(Resources.Pod, { namespace, limit: 50, omitManagedFields: true, onlyMembers: ["spec"] })
        return [...answer.objects()]
      }).pipe(Effect.provide(LiveKubeClient.layer({ kubeconfig: cluster.adminKubeconfig }).pipe(Layer.provide(Metrics.layerTest))))
    )
    const served = new Map((await admin.list(`/api/v1/namespaces/${namespace}/pods`)).map((pod) => [pod.metadata.name as string, pod]))
    expect(page).toHaveLength(50)
    for (const pod of page) {
      const { status, metadata: { managedFields, ...metadata }, ...rest } = served.get(pod.metadata.name)!
      // What was left out was there to leave out.
      expect(status).toMatchObject({ phase: expect.any(String) })
      expect(managedFields).toEqual(expect.arrayContaining([expect.objectContaining({ manager: expect.any(String) })]))
      // A list's items carry no apiVersion and kind: the client fills them in.
      expect(pod).toEqual({ apiVersion: "v1", kind: "Pod", ...rest, metadata, status: null })
    }
  }, 60_000)
})
