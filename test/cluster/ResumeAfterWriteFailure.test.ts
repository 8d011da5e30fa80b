import { readFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import type { ComplianceScanRun } from "../../src/api/ComplianceScanRun.ts"
import { kubeBenchArgs, kubeBenchContainerName, kubeBenchJobName, kubeBenchLabelKeys, runIdentityOf } from "../../src/backends/kube-bench/KubeBenchJob.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, jobNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { writeCriLog } from "./harness/CriLog.ts"
import { eventually } from "./harness/Eventually.ts"
import { freePort } from "./harness/FreePort.ts"
import { type Json, KubeApiError, type KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { expectedSummary, reportResults, runRealKubeBenchJob } from "./harness/RealKubeBench.ts"
import { apiVersions, objectPath } from "./harness/ResourcePaths.ts"
import { createRun, eventsInNamespace, eventsOfRun, jobsPath, resultPath, runPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"
import { recordWatch } from "./harness/Watch.ts"

/**
 * A Result write that fails after a kube-bench scan, injected in the real API server: a
 * validating webhook (failurePolicy Fail) for the test namespace's Results whose URL nothing
 * listens on, so every create is a 500 "failed calling webhook ... connection refused". The
 * run must wait at the write (Scanned, not written, still Running) and, once the webhook is
 * gone, write its Result without scanning again: each node's Job created once.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let operator: OperatorProcess | undefined
let webhook: Json
let reports: { readonly master: Json; readonly node: Json }

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "resume-write")
  const args = kubeBenchArgs({ backend: "kube-bench" } as ComplianceScanRun["spec"], "cis-1.10")
  const master = runRealKubeBenchJob(cluster.cacheDir, [...args, "--targets", "master"])
  const node = runRealKubeBenchJob(cluster.cacheDir, [...args, "--targets", "node"])
  reports = { master: master.report!, node: node.report! }
  writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, master.lines)
  writeCriLog(cluster.podLogFiles.workers[kubeBenchContainerName]!, node.lines)
  const deadPort = await freePort()
  webhook = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: `cluster-tests-${namespace}` },
    webhooks: [{
      name: "results.cluster-tests.ugallu.io",
      clientConfig: { url: `https://127.0.0.1:${deadPort}/validate` },
      rules: [{ apiGroups: ["security.ugallu.io"], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources: ["compliancescanresults"] }],
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
      failurePolicy: "Fail",
      sideEffects: "None",
      admissionReviewVersions: ["v1"],
      timeoutSeconds: 5
    }]
  }
  await admin.apply(objectPath(webhook), webhook)
})

afterAll(async () => {
  await operator?.stop()
  await admin.remove(objectPath(webhook)).catch(() => undefined)
  await deleteNamespace(admin, namespace)
  admin.close()
})

const conditionsOf = (run: Json): Record<string, Json> =>
  Object.fromEntries(((run.status?.conditions ?? []) as Array<Json>).map((condition) => [condition.type, condition]))

const probeResult = (name: string): Json => ({
  apiVersion: apiVersions.ComplianceScanResult,
  kind: "ComplianceScanResult",
  metadata: { name, namespace },
  spec: { derivedFromRun: { name, uid: "x" }, backend: "cel", checks: [], summary: { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 } }
})

const resultCreates = (code: string) => operator!.metricSum("ugallu_compliance_scan_api_requests_total", { verb: "create", resource: "compliancescanresults", code })

describe("a Result write that fails after a kube-bench scan", () => {
  it("waits at the write (Scanned, no Result, Running), then writes it once the API server takes it: every Job created once", async () => {
    // The webhook is in force once the API server refuses a Result in the namespace the same way.
    const refusal = await eventually(
      async () => {
        const attempt = await admin.create(resultPath(namespace), probeResult("probe")).then(async () => {
          await admin.remove(resultPath(namespace, "probe"))
          return undefined
        }, (error: unknown) => error)
        return attempt instanceof KubeApiError && attempt.status === 500 ? attempt : undefined
      },
      { what: "the dead webhook to refuse Results", timeoutMillis: 30_000, intervalMillis: 500 }
    )
    expect(refusal.message).toMatch(/failed calling webhook .*connection refused/u)

    // Every Job of the namespace's runs, from before the run exists: ADDED events are creations.
    const jobs = await recordWatch(cluster, jobsPath(jobNamespace), { labelSelector: `${kubeBenchLabelKeys.runNamespace}=${namespace}` })
    try {
      operator = await startTestOperator(cluster, identity, { name: "resume-write", namespace })
      await withOperatorLogs([operator], async () => {
        const created = await createRun(admin, namespace, "resume", { backend: "kube-bench", benchmark: "cis-1.10", timeout: "5m" })
        const name = String(created.metadata.name)

        // What a user sees while the write is refused: scanned, not written, still Running.
        const waiting = await waitForRun(admin, namespace, name, {
          done: (run) => run.status?.phase === "Running" && conditionsOf(run).Scanned?.status === "True" && conditionsOf(run).ResultWritten?.reason === "Retrying",
          what: "the run to show Scanned=True and ResultWritten=False/Retrying",
          timeoutMillis: 120_000
        })
        expect(conditionsOf(waiting).ResultWritten).toMatchObject({ status: "False", reason: "Retrying" })
        expect(conditionsOf(waiting).ResultWritten!.message).toMatch(/failed calling webhook .*connection refused/u)
        expect(conditionsOf(waiting).Succeeded).toMatchObject({ status: "Unknown" })
        expect(await admin.list(resultPath(namespace))).toEqual([])
        // Several refused creates, retried at the write, not by scanning again.
        await eventually(async () => ((await resultCreates("500")) >= 5 ? true : undefined), {
          what: "five refused Result creates",
          timeoutMillis: 60_000,
          intervalMillis: 250
        })
        const stillWaiting = await admin.get(runPath(namespace, name))
        expect(stillWaiting.status.phase).toBe("Running")
        const refused = await resultCreates("500")

        await admin.remove(objectPath(webhook))
        const run = await waitForRun(admin, namespace, name, { timeoutMillis: 90_000 })
        expect(run.status.phase, `${run.status.reason ?? ""} ${run.status.message ?? ""}`).toBe("Succeeded")
        const steps = Object.fromEntries(Object.entries(conditionsOf(run)).map(([type, condition]) => [type, condition.status]))
        expect(steps).toEqual({ Succeeded: "True", Scanned: "True", ResultWritten: "True", ReportsWritten: "True", EventsEmitted: "True" })

        // One Result: the scan's outcome held through the refusals, the real reports of every node.
        const results = await admin.list(resultPath(namespace))
        expect(results.map((result) => result.spec.derivedFromRun.uid)).toEqual([created.metadata.uid])
        expect(results[0]!.spec.checks).toHaveLength(reportResults(reports.master).length + reportResults(reports.node).length)
        const summary = expectedSummary(reports.master)
        const nodeSummary = expectedSummary(reports.node)
        expect(results[0]!.spec.summary).toEqual(Object.fromEntries(Object.entries(summary).map(([key, value]) => [key, value + nodeSummary[key as keyof typeof nodeSummary]])))
        expect(run.status.summary).toEqual(results[0]!.spec.summary)

        // Each node's Job created exactly once (the scan was not run again).
        const nodes = [cluster.nodes.master, ...cluster.nodes.workers].sort()
        await eventually(async () => (jobs.events.filter((event) => event.type === "DELETED").length >= nodes.length ? true : undefined), {
          what: "the run's Jobs to be deleted",
          timeoutMillis: 60_000
        })
        expect(jobs.ended()).toBe(false)
        const added = jobs.events.filter((event) => event.type === "ADDED").map((event) => event.object)
        const identity = runIdentityOf(created as ComplianceScanRun)
        expect(added.map((job) => job.metadata.name).sort()).toEqual(nodes.map((node) => kubeBenchJobName(identity, node)).sort())
        expect(new Set(jobs.events.map((event) => event.object.metadata.uid)).size).toBe(nodes.length)

        // One Started, one Completed event; nothing duplicated under another name.
        expect((await eventsOfRun(admin, String(created.metadata.uid))).map((event) => event.spec.type)).toEqual([
          "ComplianceScanCompleted",
          "ComplianceScanStarted"
        ])
        expect(await eventsInNamespace(admin, namespace)).toHaveLength(2)

        // The operator's own account of it: refused creates, then one that went through, and its log.
        expect(await resultCreates("201")).toBe(1)
        expect(await resultCreates("500")).toBeGreaterThanOrEqual(refused)
        const log = readFileSync(operator!.process.logFile, "utf8")
        const retryLines = log.split("\n").filter((line) => line.includes("retrying it until the run's deadline"))
        expect(retryLines.length).toBe(await resultCreates("500"))
        expect(retryLines[0]).toContain("failed calling webhook")
        console.log(
          `[resume-write] Result creates refused ${await resultCreates("500")} times, then written; ` +
            `Job creations ${added.length} for ${nodes.length} nodes; ${results[0]!.spec.checks.length} checks in the Result; ` +
            `run took ${((Date.parse(run.status.completionTime) - Date.parse(run.status.startTime)) / 1000).toFixed(1)} s`
        )
      })
    } finally {
      jobs.stop()
    }
  })
})
