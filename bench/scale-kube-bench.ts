/**
 * A kube-bench run over many nodes, on the real control plane (scripts/control-plane/build.sh):
 *
 *   npx node bench/scale-kube-bench.ts [sizes]        (default 100,300,1000)
 *
 * Starts the cluster tier's control plane with kwok nodes (one master, the rest workers),
 * serves real kube-bench v0.15.6 output (the Job's own script run with the cache's binary)
 * as the kube-bench Pods' logs, runs the operator as a real process with its ServiceAccount,
 * and at each size (nodes are added to reach it, the cluster is reused) runs one kube-bench
 * run (cis-1.10, every node, maxConcurrentNodes 50). Printed per size: the wall time
 * (create to completionTime), the phase, the operator's API requests during the run (total,
 * per node, by verb and resource), the Result's size in bytes, and the operator's peak RSS
 * during the run (VmHWM, reset before each size through /proc/<pid>/clear_refs), and the number
 * and total body bytes of the patches of runs the API server received (its
 * apiserver_request_body_size_bytes histogram: the progress writes of status.nodes).
 */
import { writeFileSync } from "node:fs"
import { connectAdmin } from "../test/cluster/harness/ClusterSetup.ts"
import { startControlPlane } from "../test/cluster/harness/ControlPlane.ts"
import { eventually, sleep } from "../test/cluster/harness/Eventually.ts"
import { startOperatorProcess } from "../test/cluster/harness/OperatorProcess.ts"
import { resultPath, runManifest, runPath, terminal } from "../test/cluster/harness/Scans.ts"
import { requestsBetween, requestsByCall } from "./RequestsByCall.ts"
import { controlPlaneCacheDir, startBenchOperator, serveRealKubeBenchLogs } from "./BenchCluster.ts"

const sizes = (process.argv[2] ?? "100,300,1000").split(",").map(Number)
const createConcurrency = 16

const cacheDir = controlPlaneCacheDir()

/** A worker node as the harness makes them (kwok's worker pool manages role != master). */
const workerNode = (name: string) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name,
    labels: { "kubernetes.io/role": "worker", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", type: "kwok" }
  },
  spec: {}
})

/** Count and summed body bytes of the PATCH requests on ComplianceScanRuns, from the API server's /metrics. */
const runPatchBodies = async (): Promise<{ count: number; bytes: number }> => {
  const text = (await admin.raw("GET", "/metrics")).body
  const total = { count: 0, bytes: 0 }
  for (const line of text.split("\n")) {
    const match = /^apiserver_request_body_size_bytes_(sum|count)\{([^}]*)\}\s+(\S+)/u.exec(line)
    if (match === null || !match[2]!.includes('resource="compliancescanruns"') || !/verb="patch"/iu.test(match[2]!)) continue
    if (match[1] === "sum") total.bytes += Number(match[3])
    else total.count += Number(match[3])
  }
  return total
}

const isReady = (node: Record<string, any>): boolean =>
  (node.status?.conditions ?? []).some((condition: { type: string; status: string }) => condition.type === "Ready" && condition.status === "True")

const controlPlane = await startControlPlane({ cacheDir, workers: Math.max(1, sizes[0]! - 1) })
const admin = connectAdmin(controlPlane.info)
let operator: Awaited<ReturnType<typeof startOperatorProcess>> | undefined
try {
  console.log(`control plane up in ${controlPlane.info.timings.total?.toFixed(1)} s with ${sizes[0]} nodes`)
  const spec = { backend: "kube-bench", benchmark: "cis-1.10", timeout: "30m", maxConcurrentNodes: 50 }
  serveRealKubeBenchLogs(controlPlane, cacheDir, spec.benchmark)
  const benchOperator = await startBenchOperator(controlPlane, admin, "scale-operator")
  const namespace = benchOperator.namespace
  operator = benchOperator.operator
  await sleep(2_000)

  for (const size of sizes) {
    // Top the cluster up to `size` nodes (the master counts), and wait for kwok to make them Ready.
    const existing = await admin.list("/api/v1/nodes")
    const missing = Array.from({ length: Math.max(0, size - existing.length) }, (_, index) => `kwok-worker-${existing.length - 1 + index}`)
    let next = 0
    await Promise.all(Array.from({ length: createConcurrency }, async () => {
      while (next < missing.length) await admin.create("/api/v1/nodes", workerNode(missing[next++]!))
    }))
    await eventually(
      async () => {
        const ready = (await admin.list("/api/v1/nodes")).filter(isReady).length
        if (ready < size) throw new Error(`${ready} of ${size} nodes Ready`)
        return true
      },
      { what: `${size} nodes to become Ready`, timeoutMillis: 300_000, intervalMillis: 1_000 }
    )

    writeFileSync(`/proc/${operator.process.pid}/clear_refs`, "5")
    const before = requestsByCall(await operator.metrics())
    const patchesBefore = await runPatchBodies()
    const name = `scale-${size}`
    const createdAt = Date.now()
    await admin.create(runPath(namespace), runManifest(namespace, name, spec))
    let run: Record<string, any> | undefined
    while (run === undefined || !terminal(run)) {
      if (Date.now() - createdAt > 30 * 60_000) throw new Error(`run ${name} did not finish within 30 minutes`)
      await sleep(1_000)
      run = await admin.get(runPath(namespace, name))
    }
    const wall = (Date.parse(run.status.completionTime) - createdAt) / 1000
    const during = requestsBetween(before, requestsByCall(await operator.metrics()))
    const patchesAfter = await runPatchBodies()
    const patches = { count: patchesAfter.count - patchesBefore.count, bytes: patchesAfter.bytes - patchesBefore.bytes }
    const total = during.reduce((sum, [, count]) => sum + count, 0)
    const result = await admin.find(resultPath(namespace, name))
    const resultBytes = result === undefined ? 0 : Buffer.byteLength(JSON.stringify(result))
    const nodesScanned = (run.status.nodes ?? []) as Array<{ phase?: string }>
    console.log(`\n${size} nodes: ${run.status.phase} (${run.status.reason}) in ${wall.toFixed(0)} s create to completionTime; summary ${JSON.stringify(run.status.summary)}`)
    console.log(`  node statuses in the run: ${nodesScanned.length} (${[...new Set(nodesScanned.map((node) => node.phase))].join(", ")}); run status ${Buffer.byteLength(JSON.stringify(run.status))} bytes`)
    console.log(`  API requests: ${total} (${(total / size).toFixed(2)} per node, Lease renewals included)`)
    console.log(`    by verb/resource: ${during.map(([key, count]) => `${key} ${count}`).join(", ")}`)
    console.log(`  patches of the run (API server): ${patches.count}, ${patches.bytes.toLocaleString("en-US")} body bytes in all`)
    console.log(`  Result: ${resultBytes.toLocaleString("en-US")} bytes (${result?.spec?.checks?.length ?? 0} checks)`)
    console.log(`  operator peak RSS during the run: ${(operator.peakRssKiB() / 1024).toFixed(0)} MiB (VmHWM)`)
  }
} finally {
  await operator?.stop()
  admin.close()
  await controlPlane.stop()
}
