import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { createRun, eventsOfRun, podsPath, resultPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * A cel run end to end: the operator as a real process, with its ServiceAccount's RBAC,
 * evaluates the Pod Security baseline pack against real Pods that kwok runs.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let operator: OperatorProcess | undefined

const pod = (name: string, spec: Json = {}, container: Json = {}): Json => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels: { app: name } },
  spec: { containers: [{ name: "app", image: `registry.example.com/${name}:1`, ...container }], ...spec }
})

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "cel-run")
  for (const object of [
    pod("web"),
    pod("debug-shell", {}, { securityContext: { privileged: true } }),
    pod("metrics-agent", { hostNetwork: true })
  ]) {
    await admin.create(podsPath(namespace), object)
  }
  // The scheduler places them on the workers, kwok runs them.
  await eventually(
    async () => {
      const pods = await admin.list(podsPath(namespace))
      return pods.length === 3 && pods.every((entry) => entry.status?.phase === "Running") ? pods : undefined
    },
    { what: "the test Pods to be Running", timeoutMillis: 60_000 }
  )
  operator = await startTestOperator(cluster, identity, { name: "cel-operator", namespace })
})

afterAll(async () => {
  await operator?.stop()
  await deleteNamespace(admin, namespace)
  admin.close()
})

const checkOf = (result: Json, checkID: string): Json => {
  const check = result.spec.checks.find((entry: Json) => entry.checkID === checkID)
  if (check === undefined) throw new Error(`no check ${checkID} in the Result`)
  return check
}

/** The check's listed subjects (those that did not pass) in the test's namespace: name -> outcome. */
const findingsIn = (check: Json): Record<string, string> =>
  Object.fromEntries(
    ((check.subjects ?? []) as Array<Json>).filter((subject) => subject.namespace === namespace).map((subject) => [subject.name, subject.outcome])
  )

describe("cel run", () => {
  it("reaches Succeeded with a Result written through the status subresource and one Started and one Completed event", async () => {
    await withOperatorLogs([operator], async () => {
      const created = await createRun(admin, namespace, "baseline", { backend: "cel", profile: "pod-security-baseline" })
      const run = await waitForRun(admin, namespace, "baseline", { timeoutMillis: 60_000 })

      expect(run.status.phase).toBe("Succeeded")
      expect(run.status.resultRef).toEqual({ name: "baseline" })
      // The privileged Pod is the worst finding: critical.
      expect(run.status.worstSeverity).toBe("critical")
      expect(run.status.summary.fail).toBeGreaterThanOrEqual(2)

      const result = await admin.get(resultPath(namespace, "baseline"))
      expect(result.spec.derivedFromRun).toEqual({ name: "baseline", uid: created.metadata.uid })
      expect(result.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: "ComplianceScanRun", name: "baseline", uid: created.metadata.uid })
      ])
      expect(result.status.worstSeverity).toBe("critical")
      // The status was written through the /status subresource (the only way it can be set
      // with the subresource on), by the operator's own field manager.
      const statusWrites = (result.metadata.managedFields as Array<Json>).filter((entry) => entry.subresource === "status")
      expect(statusWrites.some((entry) => JSON.stringify(entry.fieldsV1).includes("f:worstSeverity"))).toBe(true)

      const privileged = checkOf(result, "pss-baseline-privileged")
      expect(privileged).toMatchObject({ outcome: "fail", severity: "critical" })
      expect(findingsIn(privileged)).toEqual({ "debug-shell": "fail" })
      const hostNetwork = checkOf(result, "pss-baseline-host-network")
      expect(hostNetwork).toMatchObject({ outcome: "fail", severity: "high" })
      expect(findingsIn(hostNetwork)).toEqual({ "metrics-agent": "fail" })
      // The compliant Pods were evaluated too: counted as passing, not listed.
      expect(privileged.subjectCounts.pass).toBeGreaterThanOrEqual(2)
      expect(findingsIn(checkOf(result, "pss-baseline-host-pid"))).toEqual({})

      const events = await eventsOfRun(admin, created.metadata.uid)
      expect(events.map((event) => event.spec.type)).toEqual(["ComplianceScanCompleted", "ComplianceScanStarted"])
      const [completed, started] = events
      expect(started!.spec).toMatchObject({ class: "Compliance", severity: "info", correlationID: created.metadata.uid })
      expect(completed!.spec).toMatchObject({
        class: "Detection",
        severity: "critical",
        subject: { kind: "ComplianceScanRun", name: "baseline", namespace, uid: created.metadata.uid },
        clusterIdentity: { clusterName: "cluster-tests", clusterID: "cluster-tests-id" }
      })
      expect(completed!.spec.source.instance).toMatch(/^cel-operator_/u)

      expect(await operator!.metricSum("ugallu_compliance_scan_runs_total", { backend: "cel", outcome: "Succeeded" })).toBe(1)
    })
  })
})
