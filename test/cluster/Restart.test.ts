import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { kubeBenchContainerName, kubeBenchLabelKeys } from "../../src/backends/kube-bench/KubeBenchJob.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, jobNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { writeCriLog } from "./harness/CriLog.ts"
import { eventually, sleep } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { runRealKubeBench } from "./harness/RealKubeBench.ts"
import { apiVersions, resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, eventsInNamespace, jobsPath, podsPath, resultPath, runPath, waitForRun } from "./harness/Scans.ts"
import { shortLease, startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * Crash recovery with real processes: kube-bench runs are Running (their Pods held Running
 * by kwok), the operator is SIGKILLed, a new process takes over and finishes them, with no
 * second Result, SecurityEvent or Job.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
const operators: Array<OperatorProcess> = []

/** Job names contain the harness' held marker, so kwok keeps their Pods Running until released. */
const runs: Record<string, Json> = {
  "held-master": { backend: "kube-bench", benchmark: "cis-1.10", timeout: "5m", targetNodeSelector: { "kubernetes.io/role": "master" } },
  "held-all": { backend: "kube-bench", benchmark: "cis-1.10", timeout: "5m" },
  "held-worker": { backend: "kube-bench", benchmark: "cis-1.10", timeout: "5m", targetNodeSelector: { "kubernetes.io/role": "worker" } }
}

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "restart")
  writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, [runRealKubeBench(cluster.cacheDir, "cis-1.10", "master").line])
  writeCriLog(cluster.podLogFiles.workers[kubeBenchContainerName]!, [runRealKubeBench(cluster.cacheDir, "cis-1.10", "node").line])
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await deleteNamespace(admin, namespace)
  admin.close()
})

const runSelector = () => `${kubeBenchLabelKeys.runNamespace}=${namespace}`
const leasePath = () => resourcePath(apiVersions.Lease, "Lease", namespace, "ugallu-compliance-scan-leader")

describe("operator restart", () => {
  it("finishes Running runs after a SIGKILL without duplicate Results, events or Jobs", async () => {
    const first = await startTestOperator(cluster, identity, { name: "restart-first", namespace })
    operators.push(first)
    await withOperatorLogs(operators, async () => {
      // Every Job ever seen, by uid: a re-created Job would show up as a second uid.
      const jobsSeen = new Map<string, string>()
      let recording = true
      const recorder = (async () => {
        while (recording) {
          for (const job of await admin.list(jobsPath(jobNamespace), { labelSelector: runSelector() }).catch(() => [])) {
            jobsSeen.set(job.metadata.uid, job.metadata.name)
          }
          await sleep(150)
        }
      })()

      const uids: Record<string, string> = {}
      for (const [name, spec] of Object.entries(runs)) uids[name] = (await createRun(admin, namespace, name, spec)).metadata.uid
      const expectedJobs = 1 + 1 + cluster.nodes.workers.length + cluster.nodes.workers.length

      // All runs Running, every Job's Pod Running (held by kwok).
      const heldPods = await eventually(
        async () => {
          const pods = await admin.list(podsPath(jobNamespace), { labelSelector: runSelector() })
          const running = pods.filter((pod) => pod.status?.phase === "Running")
          return running.length === expectedJobs ? running : undefined
        },
        { what: `${expectedJobs} kube-bench Pods to be Running`, timeoutMillis: 60_000 }
      )
      const before: Record<string, Json> = {}
      for (const name of Object.keys(runs)) {
        before[name] = await waitForRun(admin, namespace, name, { done: (run) => run.status?.phase === "Running", what: `run ${name} to be Running` })
      }

      await first.kill()
      expect(first.process.exitStatus()).toBe("SIGKILL")
      const killedAt = Date.now()

      const second = await startTestOperator(cluster, identity, { name: "restart-second", namespace })
      operators.push(second)
      // It waits for the dead leader's Lease to expire, then takes the runs over.
      await eventually(
        async () => ((await admin.get(leasePath())).spec.holderIdentity?.startsWith("restart-second_") ? true : undefined),
        { what: "the new process to take the Lease", timeoutMillis: shortLease.leaseDurationMillis * 4 }
      )
      const takeoverSeconds = (Date.now() - killedAt) / 1000
      // Waits until it has tried to create every Job and been refused (AlreadyExists, 409:
      // it watches the existing Job instead), not for a fixed time.
      await eventually(
        async () => ((await second.metricSum("ugallu_compliance_scan_api_requests_total", { verb: "create", resource: "jobs", code: "409" })) >= expectedJobs ? true : undefined),
        { what: `the new process to adopt the ${expectedJobs} Jobs`, timeoutMillis: 60_000 }
      )
      for (const job of await admin.list(jobsPath(jobNamespace), { labelSelector: runSelector() })) jobsSeen.set(job.metadata.uid, job.metadata.name)
      expect(new Set(jobsSeen.values()).size).toBe(expectedJobs)
      expect(jobsSeen.size).toBe(expectedJobs)
      const stillRunning = await admin.list(podsPath(jobNamespace), { labelSelector: runSelector() })
      expect(stillRunning.map((pod) => pod.metadata.uid).sort()).toEqual(heldPods.map((pod) => pod.metadata.uid).sort())

      for (const pod of heldPods) {
        await admin.mergePatch(podsPath(jobNamespace, pod.metadata.name), { metadata: { labels: { [cluster.releaseLabel]: "true" } } })
      }
      for (const name of Object.keys(runs)) {
        const run = await waitForRun(admin, namespace, name, { timeoutMillis: 90_000 })
        expect(run.status.phase, `run ${name}: ${run.status.reason ?? ""} ${run.status.message ?? ""}`).toBe("Succeeded")
        // The deadline is counted from the first process' start: startTime survives the restart.
        expect(run.status.startTime).toBe(before[name]!.status.startTime)
      }
      recording = false
      await recorder

      // One Job per node and run over the whole test: none was created twice.
      expect(jobsSeen.size).toBe(expectedJobs)
      const results = await admin.list(resultPath(namespace))
      expect(results.map((result) => [result.metadata.name, result.spec.derivedFromRun.uid]).sort()).toEqual(
        Object.entries(uids).sort()
      )
      const events = await eventsInNamespace(admin, namespace)
      const perRun = Object.fromEntries(
        Object.entries(uids).map(([name, uid]) => [name, events.filter((event) => event.spec.subject.uid === uid).map((event) => event.spec.type).sort()])
      )
      expect(perRun).toEqual(Object.fromEntries(Object.keys(uids).map((name) => [name, ["ComplianceScanCompleted", "ComplianceScanStarted"]])))
      // Started was sent by the first process before the kill, Completed by the second.
      for (const event of events) {
        expect(event.spec.source.instance).toMatch(event.spec.type === "ComplianceScanStarted" ? /^restart-first_/u : /^restart-second_/u)
      }
      expect(await second.metricSum("ugallu_compliance_scan_runs_total", { backend: "kube-bench", outcome: "Succeeded" })).toBe(3)
      await eventually(async () => ((await admin.list(jobsPath(jobNamespace), { labelSelector: runSelector() })).length === 0 ? true : undefined), {
        what: "the Jobs to be deleted",
        timeoutMillis: 60_000
      })
      expect(await admin.find(runPath(namespace, "held-all"))).toBeDefined()
      console.log(`[restart] the second process took the Lease ${takeoverSeconds.toFixed(1)} s after the SIGKILL`)
    })
  })
})
