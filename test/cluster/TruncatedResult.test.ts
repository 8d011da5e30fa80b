import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { createRun, podsPath, resultPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * A cel run whose findings are far over the Result's byte budget (100 rules x 40 Pods, each
 * failing with a long message: about 1.6 MB, more than etcd takes): the real API server stores a
 * truncated Result that says what was cut, and the run Succeeds with its full counts.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let operator: OperatorProcess | undefined

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "truncated")
  for (let i = 0; i < 40; i++) {
    await admin.create(podsPath(namespace), {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `bulk-${i}`, labels: { app: "bulk" } },
      spec: { containers: [{ name: "app", image: "example.invalid/app:1" }] }
    })
  }
})

afterAll(async () => {
  await operator?.stop()
  await deleteNamespace(admin, namespace)
  admin.close()
})

describe("a Result over the byte budget", () => {
  it("is truncated, says so in a Truncated condition, and is written; the run Succeeds with the full counts", async () => {
    const message = `'${"finding text that is long on purpose ".repeat(50)}'`
    const rules = Array.from({ length: 100 }, (_, i) => ({
      id: `bulk-rule-${i}`,
      severity: "low",
      match: { resources: ["pods"], labelSelector: { matchLabels: { app: "bulk" } } },
      expression: "false",
      messageExpression: message
    }))
    operator = await startTestOperator(cluster, identity, { name: "truncated", namespace })
    await withOperatorLogs([operator], async () => {
      await createRun(admin, namespace, "bulk", { backend: "cel", cel: { rules } })
      const run = await waitForRun(admin, namespace, "bulk", { timeoutMillis: 90_000 })
      expect(run.status.phase, `${run.status.reason}: ${run.status.message}`).toBe("Succeeded")
      expect(run.status.summary).toMatchObject({ fail: 100 })
      const result = await admin.get(resultPath(namespace, "bulk"))
      const bytes = Buffer.byteLength(JSON.stringify(result))
      console.log(`[truncated] stored Result: ${bytes} bytes`)
      expect(bytes).toBeLessThan(1024 * 1024 + 4096)
      expect(result.status.truncated).toBe(true)
      const truncated = (result.status.conditions as Array<Json>).find((condition) => condition.type === "Truncated")
      expect(truncated).toMatchObject({ status: "True", reason: "ByteBudgetExceeded" })
      expect(truncated!.message).toContain("subjects")
      expect(result.spec.summary).toMatchObject({ fail: 100 })
      for (const check of result.spec.checks as Array<Json>) expect(check.subjectCounts.fail).toBe(40)
    })
  })
})
