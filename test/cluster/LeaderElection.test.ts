import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually, sleep } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { apiVersions, resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, eventsOfRun, waitForRun } from "./harness/Scans.ts"
import { shortLease, startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/** Two operator processes and one Lease on the real API server. */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
const operators: Array<OperatorProcess> = []

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "leader")
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await deleteNamespace(admin, namespace)
  admin.close()
})

const lease = () => admin.get(resourcePath(apiVersions.Lease, "Lease", namespace, "ugallu-compliance-scan-leader"))
const holder = async () => String((await lease()).spec.holderIdentity ?? "")

const celRun = (name: string) => createRun(admin, namespace, name, { backend: "cel", profile: "pod-security-baseline" })

/** Who sent the run's events (the `instance` of their source: the process identity). */
const senders = async (run: Json) => [...new Set((await eventsOfRun(admin, run.metadata.uid)).map((event) => String(event.spec.source.instance)))]

describe("leader election", () => {
  it("lets only the Lease holder act, and the other process takes over within the lease duration after a SIGKILL", async () => {
    const first = await startTestOperator(cluster, identity, { name: "leader-a", namespace })
    operators.push(first)
    await withOperatorLogs(operators, async () => {
      await eventually(async () => ((await holder()).startsWith("leader-a_") ? true : undefined), {
        what: "leader-a to take the Lease",
        timeoutMillis: 30_000
      })
      const second = await startTestOperator(cluster, identity, { name: "leader-b", namespace })
      operators.push(second)
      // A few retry periods: the Lease stays with leader-a, which keeps renewing it.
      await sleep(3 * shortLease.retryPeriodMillis)
      const held = await lease()
      expect(held.spec.holderIdentity).toMatch(/^leader-a_/u)
      expect(held.spec.leaseDurationSeconds).toBe(shortLease.leaseDurationMillis / 1000)
      expect(await first.metricSum("ugallu_compliance_scan_leader")).toBe(1)
      expect(await second.metricSum("ugallu_compliance_scan_leader")).toBe(0)

      const before = await celRun("before-failover")
      expect((await waitForRun(admin, namespace, "before-failover")).status.phase).toBe("Succeeded")
      expect(await senders(before)).toEqual([held.spec.holderIdentity])
      expect(await first.metricSum("ugallu_compliance_scan_runs_total")).toBe(1)
      // The follower neither reconciled nor even read the runs.
      expect(await second.metricSum("ugallu_compliance_scan_runs_total")).toBe(0)
      expect(await second.metricSum("ugallu_compliance_scan_api_requests_total", { resource: "compliancescanruns" })).toBe(0)

      const transitions = Number(held.spec.leaseTransitions ?? 0)
      await first.kill()
      const killedAt = Date.now()
      const taken = await eventually(
        async () => {
          const current = await lease()
          return String(current.spec.holderIdentity ?? "").startsWith("leader-b_") ? current : undefined
        },
        { what: "leader-b to take the Lease over", timeoutMillis: 4 * shortLease.leaseDurationMillis, intervalMillis: 50 }
      )
      const takeoverMillis = Date.now() - killedAt
      console.log(`[leader-election] leader-b took the Lease ${(takeoverMillis / 1000).toFixed(2)} s after leader-a was killed`)
      // The follower takes the Lease once it has seen the same record for a whole lease
      // duration; it saw the dead leader's last renewal at most a retry period late and looks
      // again every retry period: lease duration + two retry periods (+1 s for a loaded machine).
      expect(takeoverMillis).toBeLessThanOrEqual(shortLease.leaseDurationMillis + 2 * shortLease.retryPeriodMillis + 1_000)
      expect(Number(taken.spec.leaseTransitions ?? 0)).toBe(transitions + 1)

      const after = await celRun("after-failover")
      expect((await waitForRun(admin, namespace, "after-failover")).status.phase).toBe("Succeeded")
      expect(await senders(after)).toEqual([taken.spec.holderIdentity])
      expect(await second.metricSum("ugallu_compliance_scan_leader")).toBe(1)
      expect(await second.metricSum("ugallu_compliance_scan_runs_total")).toBe(1)
    })
  })
})
