import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { securityEventName } from "../../src/services/SecurityEvents.ts"
import { squatter } from "../support/ForeignEvents.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import { KubeApiError, type Json, type KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { apiVersions, objectPath, resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, eventsOfRun, resultPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * Writes the real API server refuses for good: a Result denied by an admission policy ends
 * its run Failed at once (other runs keep flowing through the one slot), and a foreign
 * SecurityEvent squatting the run's event name does not suppress the operator's own.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
const operators: Array<OperatorProcess> = []
const refusedName = `refused-${randomBytes(3).toString("hex")}`

const policy: Json = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "ValidatingAdmissionPolicy",
  metadata: { name: `cluster-tests-${refusedName}` },
  spec: {
    failurePolicy: "Fail",
    matchConstraints: {
      resourceRules: [{ apiGroups: ["security.ugallu.io"], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources: ["compliancescanresults"] }]
    },
    validations: [{ expression: `object.metadata.name != '${refusedName}'`, message: "this Result is refused by a test policy", reason: "Invalid" }]
  }
}
const binding: Json = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "ValidatingAdmissionPolicyBinding",
  metadata: { name: `cluster-tests-${refusedName}` },
  spec: { policyName: `cluster-tests-${refusedName}`, validationActions: ["Deny"] }
}

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "refused")
  for (const object of [policy, binding]) await admin.apply(objectPath(object), object)
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  for (const object of [binding, policy]) await admin.remove(objectPath(object)).catch(() => undefined)
  await deleteNamespace(admin, namespace)
  admin.close()
})

describe("writes the API server refuses for good", () => {
  it("a refused Result ends the run Failed/ResultInvalid within seconds, the next run flows, and a squatted event name does not suppress the Failed event", async () => {
    // The policy is loaded once the API server refuses such a Result from anyone.
    await eventually(
      async () => {
        const attempt = await admin.create(resultPath(namespace), {
          apiVersion: apiVersions.ComplianceScanResult,
          kind: "ComplianceScanResult",
          metadata: { name: refusedName, namespace },
          spec: { derivedFromRun: { name: refusedName, uid: "x" }, backend: "cel", checks: [], summary: { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 } }
        }).then(async () => {
          await admin.remove(resultPath(namespace, refusedName))
          return undefined
        }, (error: unknown) => error)
        return attempt instanceof KubeApiError && attempt.status === 422 ? true : undefined
      },
      { what: "the test policy to refuse the Result", timeoutMillis: 30_000, intervalMillis: 500 }
    )
    const run = await createRun(admin, namespace, refusedName, { backend: "cel", profile: "pod-security-baseline", timeout: "30m" })
    const uid = String(run.metadata.uid)
    const squatted = securityEventName(uid, "ComplianceScanFailed")
    await admin.create(resourcePath(apiVersions.SecurityEvent, "SecurityEvent"), squatter(squatted, uid))
    await createRun(admin, namespace, "after", { backend: "cel", profile: "pod-security-baseline" })

    const operator = await startTestOperator(cluster, identity, { name: "refused", namespace, flags: ["--max-concurrent-runs=1"] })
    operators.push(operator)
    await withOperatorLogs(operators, async () => {
      const failed = await waitForRun(admin, namespace, refusedName, { timeoutMillis: 60_000 })
      expect(failed.status).toMatchObject({ phase: "Failed", reason: "ResultInvalid" })
      expect(failed.status.message).toContain("this Result is refused by a test policy")
      // Well within the run's 30 m timeout: the slot is freed at once.
      const took = (Date.parse(failed.status.completionTime) - Date.parse(failed.status.startTime)) / 1000
      expect(took).toBeLessThan(30)
      const steps = Object.fromEntries((failed.status.conditions as Array<Json>).map((condition) => [condition.type, condition.status]))
      expect(steps).toMatchObject({ Succeeded: "False", Scanned: "True", ResultWritten: "False" })
      expect((await waitForRun(admin, namespace, "after")).status.phase).toBe("Succeeded")

      // The operator's own Failed event exists beside the squatter's.
      const events = await eventsOfRun(admin, uid)
      const own = events.filter((event) => event.spec.source.name === "compliance-scan")
      expect(own.map((event) => [event.metadata.name, event.spec.type]).sort()).toEqual([
        [`${securityEventName(uid, "ComplianceScanFailed")}-1`, "ComplianceScanFailed"],
        [securityEventName(uid, "ComplianceScanStarted"), "ComplianceScanStarted"]
      ])
      expect(own.find((event) => event.spec.type === "ComplianceScanFailed")!.spec).toMatchObject({ class: "Anomaly", severity: "high" })
      expect((await admin.get(resourcePath(apiVersions.SecurityEvent, "SecurityEvent", undefined, squatted))).spec.source.name).toBe("mallory")
      expect(await operator.metricSum("ugallu_compliance_scan_security_events_squatted_total", { type: "ComplianceScanFailed" })).toBe(1)
      console.log(`[refused] the refused run ended Failed ${took.toFixed(1)} s after it started`)
    })
  })
})
