import { readFileSync, writeFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { kubeBenchContainerName, kubeBenchLabelKeys } from "../../src/backends/kube-bench/KubeBenchJob.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, jobNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { writeCriLog } from "./harness/CriLog.ts"
import { eventually, sleep } from "./harness/Eventually.ts"
import { type FreezableProxy, startFreezableProxy } from "./harness/FreezableProxy.ts"
import type { KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { runRealKubeBench } from "./harness/RealKubeBench.ts"
import { apiVersions, resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, eventsInNamespace, jobsPath, podsPath, resultPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * A network partition between the leader and the API server, made with a TCP proxy the
 * leader talks through: the old leader must stop acting before the standby (direct
 * connection) takes the Lease, and never write again once it stepped down.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let proxy: FreezableProxy
const operators: Array<OperatorProcess> = []

// A wide gap between stepping down (renew deadline) and a takeover (lease duration).
const lease = { leaseDuration: "8s", renewDeadline: "4s", retryPeriod: "1s" }

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "partition")
  proxy = await startFreezableProxy(cluster.server)
  writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, [runRealKubeBench(cluster.cacheDir, "cis-1.10", "master").line])
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await proxy.close()
  await deleteNamespace(admin, namespace)
  admin.close()
})

const leasePath = () => resourcePath(apiVersions.Lease, "Lease", namespace, "ugallu-compliance-scan-leader")
const holder = async () => String((await admin.get(leasePath())).spec.holderIdentity ?? "")
const runSelector = () => `${kubeBenchLabelKeys.runNamespace}=${namespace}`

/** Successful writes (2xx create/update/patch/delete) on anything but the Lease, from /metrics. */
const successfulWrites = (metricsText: string): number => {
  let total = 0
  for (const line of metricsText.split("\n")) {
    const match = /^ugallu_compliance_scan_api_requests_total\{([^}]*)\}\s+(\S+)/u.exec(line)
    if (match === null) continue
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/gu)].map((entry) => [entry[1], entry[2]]))
    if (!["create", "update", "patch", "delete"].includes(labels.verb ?? "")) continue
    if (labels.resource === "leases" || !/^2/u.test(labels.code ?? "")) continue
    total += Number(match[2])
  }
  return total
}

interface Sample {
  readonly at: number
  readonly a: number | undefined
  readonly b: number | undefined
  readonly holder: string | undefined
}

describe("network partition of the leader", () => {
  it("the cut-off leader stops acting before the standby takes over; never two leaders; nothing duplicated", async () => {
    const viaProxy = `${identity.kubeconfig}.proxy`
    writeFileSync(viaProxy, readFileSync(identity.kubeconfig, "utf8").replace(cluster.server, proxy.url), { mode: 0o600 })
    const a = await startTestOperator(cluster, identity, { name: "partition-a", namespace, kubeconfig: viaProxy, lease })
    operators.push(a)
    await withOperatorLogs(operators, async () => {
      await eventually(async () => ((await holder()).startsWith("partition-a_") ? true : undefined), {
        what: "partition-a to take the Lease",
        timeoutMillis: 30_000
      })
      const b = await startTestOperator(cluster, identity, { name: "partition-b", namespace, lease })
      operators.push(b)

      // A kube-bench run on the master node whose Pod kwok holds Running: in flight during the partition.
      const run = await createRun(admin, namespace, "held-partition", {
        backend: "kube-bench",
        benchmark: "cis-1.10",
        timeout: "5m",
        targetNodeSelector: { "kubernetes.io/role": "master" }
      })
      const [pod] = await eventually(
        async () => {
          const pods = await admin.list(podsPath(jobNamespace), { labelSelector: runSelector() })
          return pods.length === 1 && pods[0]!.status?.phase === "Running" ? pods : undefined
        },
        { what: "the held kube-bench Pod to be Running", timeoutMillis: 60_000 }
      )
      await waitForRun(admin, namespace, "held-partition", { done: (current) => current.status?.phase === "Running", what: "the run to be Running" })

      // Every Job ever seen, by uid, and both leader gauges plus the Lease holder every 100 ms.
      const jobsSeen = new Set<string>()
      const samples: Array<Sample> = []
      let sampling = true
      const gauge = (operator: OperatorProcess) => operator.metricSum("ugallu_compliance_scan_leader").catch(() => undefined)
      const sampler = (async () => {
        while (sampling) {
          const [sampleA, sampleB, current, jobs] = await Promise.all([
            gauge(a),
            gauge(b),
            holder().catch(() => undefined),
            admin.list(jobsPath(jobNamespace), { labelSelector: runSelector() }).catch(() => [])
          ])
          for (const job of jobs) jobsSeen.add(job.metadata.uid)
          samples.push({ at: Date.now(), a: sampleA, b: sampleB, holder: current })
          await sleep(100)
        }
      })()

      expect(await a.metricSum("ugallu_compliance_scan_leader")).toBe(1)
      proxy.freeze()
      const frozenAt = Date.now()
      const steppedDown = await eventually(async () => ((await a.metricSum("ugallu_compliance_scan_leader")) === 0 ? Date.now() : undefined), {
        what: "partition-a to step down",
        timeoutMillis: 30_000,
        intervalMillis: 50
      })
      const writesAtStepDown = successfulWrites(await a.metrics())
      const takenOver = await eventually(async () => ((await holder()).startsWith("partition-b_") ? Date.now() : undefined), {
        what: "partition-b to take the Lease",
        timeoutMillis: 60_000,
        intervalMillis: 50
      })
      console.log(
        `[partition] partition-a stepped down ${((steppedDown - frozenAt) / 1000).toFixed(2)} s after the freeze, ` +
          `partition-b held the Lease ${((takenOver - frozenAt) / 1000).toFixed(2)} s after it`
      )
      expect(steppedDown).toBeLessThan(takenOver)

      // The network comes back; the old leader stays a standby and writes nothing.
      proxy.thaw()
      await admin.mergePatch(podsPath(jobNamespace, pod!.metadata.name), { metadata: { labels: { [cluster.releaseLabel]: "true" } } })
      const finished = await waitForRun(admin, namespace, "held-partition", { timeoutMillis: 90_000 })
      expect(finished.status.phase, `${finished.status.reason ?? ""} ${finished.status.message ?? ""}`).toBe("Succeeded")
      // A few renewal periods after the thaw: partition-a has reconnected by now.
      await sleep(3_000)
      sampling = false
      await sampler

      expect(successfulWrites(await a.metrics())).toBe(writesAtStepDown)
      expect(await a.metricSum("ugallu_compliance_scan_leader")).toBe(0)
      expect(await holder()).toMatch(/^partition-b_/u)
      // Never two leaders at one sampled instant; and partition-a's gauge fell before anyone else held the Lease.
      const both = samples.filter((sample) => sample.a === 1 && sample.b === 1)
      expect(both).toEqual([])
      const firstForeign = samples.find((sample) => sample.holder?.startsWith("partition-b_") === true)
      expect(firstForeign).toBeDefined()
      expect(samples.filter((sample) => sample.at >= firstForeign!.at && sample.a === 1)).toEqual([])
      expect(samples.some((sample) => sample.b === 1)).toBe(true)

      // No duplicates: the one Job adopted, not re-created; one Result; one event per type, each from its leader.
      expect(jobsSeen.size).toBe(1)
      const results = await admin.list(resultPath(namespace))
      expect(results.map((result) => result.spec.derivedFromRun.uid)).toEqual([run.metadata.uid])
      const events = await eventsInNamespace(admin, namespace)
      expect(events.map((event) => [event.spec.type, String(event.spec.source.instance).split("_")[0]]).sort()).toEqual([
        ["ComplianceScanCompleted", "partition-b"],
        ["ComplianceScanStarted", "partition-a"]
      ])
    })
  })
})
