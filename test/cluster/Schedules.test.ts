import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually, sleep } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { apiVersions, resourcePath } from "./harness/ResourcePaths.ts"
import { resultPath, runPath } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/** ComplianceScanSchedules on the real API server, with its garbage collector and admission. */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
const operators: Array<OperatorProcess> = []

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "schedules")
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await deleteNamespace(admin, namespace)
  admin.close()
})

const schedulePath = (name?: string) => resourcePath(apiVersions.ComplianceScanSchedule, "ComplianceScanSchedule", namespace, name)
const createSchedule = (name: string, spec: Json, annotations?: Record<string, string>) =>
  admin.create(schedulePath(), {
    apiVersion: apiVersions.ComplianceScanSchedule,
    kind: "ComplianceScanSchedule",
    metadata: { name, namespace, ...(annotations === undefined ? {} : { annotations }) },
    spec
  })
const runsOf = async (schedule: string) =>
  (await admin.list(runPath(namespace), { labelSelector: `security.ugallu.io/schedule=${schedule}` }))
    .filter((run) => run.metadata.deletionTimestamp === undefined)
const scheduledTime = (run: Json) => String(run.metadata.annotations?.["security.ugallu.io/scheduled-time"])
const celTemplate = { backend: "cel", profile: "pod-security-baseline", timeout: "2m" }

describe("ComplianceScanSchedule on the real API server", () => {
  it("refuses a runTemplate above the timeout cap at admission, and a bad schedule pattern by the CRD", async () => {
    const tooLong = await createSchedule("too-long", { schedule: "@daily", runTemplate: { backend: "cel", timeout: "45m" } }).catch((error) => error)
    expect(tooLong.status).toBe(422)
    expect(tooLong.message).toContain("spec.runTemplate.timeout 45m is above the maximum of 30m")
    const badPattern = await createSchedule("bad-pattern", { schedule: "every day", runTemplate: { backend: "cel" } }).catch((error) => error)
    expect(badPattern.status).toBe(422)
    expect(badPattern.message).toContain("spec.schedule")
    const badJitter = await createSchedule("bad-jitter", { schedule: "@daily", jitter: "2h", runTemplate: { backend: "cel" } }).catch((error) => error)
    expect(badJitter.status).toBe(422)
    expect(badJitter.message).toContain("spec.jitter must be at most 1h")
    // The template is editable (a run's spec is not), within the same cap.
    await createSchedule("editable", { schedule: "@daily", suspend: true, runTemplate: { backend: "cel", timeout: "5m" } })
    const edited = await admin.mergePatch(schedulePath("editable"), { spec: { runTemplate: { timeout: "20m" } } })
    expect(edited.spec.runTemplate.timeout).toBe("20m")
    const refused = await admin.mergePatch(schedulePath("editable"), { spec: { runTemplate: { timeout: "31m" } } }).catch((error) => error)
    expect(refused.status).toBe(422)
  }, 60_000)

  it("a `* * * * *` schedule makes runs every minute, run-now works, history limits hold (with Results), a leader killed at the minute does not duplicate", async () => {
    const first = await startTestOperator(cluster, identity, { name: "schedules-a", namespace })
    operators.push(first)
    const second = await startTestOperator(cluster, identity, { name: "schedules-b", namespace })
    operators.push(second)
    await withOperatorLogs(operators, async () => {
      await createSchedule("minutely", { schedule: "* * * * *", successfulRunsHistoryLimit: 2, runTemplate: celTemplate })

      // On demand: the annotation makes one run and is removed.
      await admin.mergePatch(schedulePath("minutely"), { metadata: { annotations: { "security.ugallu.io/run-now": "first" } } })
      const onDemand = await eventually(async () => {
        const runs = (await runsOf("minutely")).filter((run) => run.metadata.annotations?.["security.ugallu.io/run-now"] === "first")
        return runs.length === 1 && runs[0]!.status?.phase === "Succeeded" ? runs[0] : undefined
      }, { what: "the run-now run to succeed", timeoutMillis: 60_000, intervalMillis: 250 })
      expect(onDemand!.metadata.ownerReferences?.[0]).toMatchObject({ kind: "ComplianceScanSchedule", name: "minutely", controller: true })
      const annotated = await admin.get(schedulePath("minutely"))
      expect(annotated.metadata.annotations?.["security.ugallu.io/run-now"]).toBeUndefined()
      expect(annotated.status.lastRunNow).toBe("first")

      // The leader (whoever holds the Lease) is killed a few milliseconds after a minute starts.
      const lease = await admin.get(resourcePath(apiVersions.Lease, "Lease", namespace, "ugallu-compliance-scan-leader"))
      const leader = String(lease.spec.holderIdentity).startsWith("schedules-a_") ? first : second
      const untilMinute = 60_000 - (Date.now() % 60_000)
      if (untilMinute < 5_000) await sleep(untilMinute + 1_000)
      await sleep(60_000 - (Date.now() % 60_000))
      const killedMinute = Math.floor(Date.now() / 60_000) * 60_000
      await leader.kill()
      const killedAt = new Date(killedMinute).toISOString()

      // The other process takes over and the killed minute has its run: exactly one.
      await eventually(async () => {
        const runs = (await runsOf("minutely")).filter((run) => scheduledTime(run) === killedAt)
        return runs.length === 1 && runs[0]!.status?.phase === "Succeeded" ? true : undefined
      }, { what: `the run for ${killedAt} to succeed`, timeoutMillis: 60_000, intervalMillis: 250 })
      // One more minute: runs keep coming, one per minute, and only the newest 2 successes stay.
      await eventually(async () => {
        const runs = await runsOf("minutely")
        return runs.some((run) => Date.parse(scheduledTime(run)) > killedMinute && run.status?.phase === "Succeeded") ? true : undefined
      }, { what: "the run of the next minute to succeed", timeoutMillis: 90_000, intervalMillis: 500 })
      const history = await eventually(async () => {
        const runs = await runsOf("minutely")
        return runs.length === 2 && runs.every((run) => run.status?.phase === "Succeeded") ? runs : undefined
      }, { what: "history to be cut to the newest 2 successes", timeoutMillis: 30_000, intervalMillis: 250 })
      const times = history.map(scheduledTime).sort()
      expect(new Set(times).size).toBe(2)
      expect(times[0]).toBe(killedAt)
      // Results go with their runs (the garbage collector follows the owner references).
      const results = await eventually(async () => {
        const names = (await admin.list(resultPath(namespace))).map((result) => result.metadata.name).sort()
        return names.length === 2 ? names : undefined
      }, { what: "the Results of pruned runs to be collected", timeoutMillis: 60_000, intervalMillis: 500 })
      expect(results).toEqual(history.map((run) => run.metadata.name).sort())
      // The newer Result compares itself with the older one (same series, the schedule label copied).
      const [older, newer] = [...history].sort((a, b) => scheduledTime(a).localeCompare(scheduledTime(b)))
      const newest = await admin.get(resultPath(namespace, newer!.metadata.name))
      expect(newest.metadata.labels["security.ugallu.io/schedule"]).toBe("minutely")
      expect(newest.status.drift.previous).toEqual({ name: older!.metadata.name, completionTime: older!.status.completionTime })
      expect(newest.status.drift.counts).toMatchObject({ regressed: 0 })

      const status = (await admin.get(schedulePath("minutely"))).status
      expect(status.lastSuccessfulTime).toBeDefined()
      expect(status.missedSchedules).toBe(0)
      expect(status.conditions.find((condition: Json) => condition.type === "Ready")).toMatchObject({ status: "True", reason: "Scheduled" })
      expect(status.conditions.find((condition: Json) => condition.type === "Stale")).toMatchObject({ status: "False" })
      const survivor = leader === first ? second : first
      expect(await survivor.metricSum("ugallu_compliance_scan_last_success_timestamp_seconds", { schedule: "minutely" })).toBeCloseTo(
        Date.parse(status.lastSuccessfulTime) / 1000,
        0
      )
    })
  }, 300_000)
})
