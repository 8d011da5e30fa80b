/**
 * The operator against a real control plane: `npx node bench/cluster.ts [runs]` (default 200).
 *
 * Starts the cluster tier's control plane (scripts/control-plane/build.sh must have built
 * it, or builds it now), installs the CRDs and the shipped RBAC, runs the operator as a real
 * process with its ServiceAccount's token (flags at their defaults but for the namespaces
 * and ports), creates N cel runs at once (one cheap rule) and prints:
 *   - runs/s from the first create to the last terminal phase,
 *   - p50/p99 create-to-terminal latency (create acknowledged -> status.completionTime),
 *   - API requests per run (the operator's ugallu_compliance_scan_api_requests_total / N,
 *     everything it sent during the bench: Lease renewals and watches included),
 *   - the operator's peak RSS (VmHWM of its process, read before it is stopped) and its RSS
 *     when idle (VmRSS 10 s after startup, before the runs).
 * OPERATOR_NODE_FLAGS=... adds V8 flags to the operator process only (after the image's own).
 */
import { connectAdmin } from "../test/cluster/harness/ClusterSetup.ts"
import { startControlPlane } from "../test/cluster/harness/ControlPlane.ts"
import { sleep } from "../test/cluster/harness/Eventually.ts"
import { startOperatorProcess, sumSamples } from "../test/cluster/harness/OperatorProcess.ts"
import { runManifest, runPath, terminal } from "../test/cluster/harness/Scans.ts"
import { controlPlaneCacheDir, startBenchOperator } from "./BenchCluster.ts"

const runCount = Number(process.argv[2] ?? 200)
const createConcurrency = 20

const cacheDir = controlPlaneCacheDir()

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const controlPlane = await startControlPlane({ cacheDir })
const admin = connectAdmin(controlPlane.info)
let operator: Awaited<ReturnType<typeof startOperatorProcess>> | undefined
try {
  console.log(`control plane up in ${controlPlane.info.timings.total?.toFixed(1)} s (${JSON.stringify(controlPlane.info.timings)})`)
  const benchOperator = await startBenchOperator(controlPlane, admin, "bench-operator")
  const namespace = benchOperator.namespace
  operator = benchOperator.operator
  // Let it take the Lease, start its watch and settle before the clock starts.
  await sleep(10_000)
  const idleRssKiB = operator.rssKiB()
  const requestsBefore = sumSamples(await operator.metrics(), "ugallu_compliance_scan_api_requests_total")
  const startupPeakKiB = operator.peakRssKiB()

  const spec = {
    backend: "cel",
    cel: {
      rules: [{
        id: "namespace-has-name",
        title: "Namespaces have a name",
        severity: "low",
        match: { resources: ["namespaces"] },
        expression: "object.metadata.name != ''"
      }]
    }
  }
  const names = Array.from({ length: runCount }, (_, index) => `bench-${String(index).padStart(4, "0")}`)
  const createdAt = new Map<string, number>()
  const started = Date.now()
  let next = 0
  await Promise.all(
    Array.from({ length: createConcurrency }, async () => {
      while (next < names.length) {
        const name = names[next++]!
        await admin.create(runPath(namespace), runManifest(namespace, name, spec))
        createdAt.set(name, Date.now())
      }
    })
  )
  const createdIn = (Date.now() - started) / 1000

  let runs: Array<Record<string, any>> = []
  const deadline = Date.now() + 10 * 60_000
  while (true) {
    runs = await admin.list(runPath(namespace))
    if (runs.filter(terminal).length === runCount) break
    if (Date.now() > deadline) throw new Error(`only ${runs.filter(terminal).length} of ${runCount} runs finished within 10 minutes`)
    await sleep(250)
  }
  const peakRssKiB = operator.peakRssKiB()
  const metricsText = await operator.metrics()
  const requests = sumSamples(metricsText, "ugallu_compliance_scan_api_requests_total")

  const failed = runs.filter((run) => run.status.phase !== "Succeeded")
  const completions = runs.map((run) => Date.parse(run.status.completionTime))
  const latencies = runs.map((run) => Date.parse(run.status.completionTime) - createdAt.get(run.metadata.name)!).sort((a, b) => a - b)
  const wallSeconds = (Math.max(...completions) - started) / 1000
  const byCall = new Map<string, number>()
  for (const line of metricsText.split("\n")) {
    const match = /^ugallu_compliance_scan_api_requests_total\{([^}]*)\}\s+(\S+)/u.exec(line)
    if (match === null) continue
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/gu)].map((entry) => [entry[1], entry[2]]))
    const key = `${labels.verb} ${labels.resource}`
    byCall.set(key, (byCall.get(key) ?? 0) + Number(match[2]))
  }

  console.log(`runs:               ${runCount} cel runs (created in ${createdIn.toFixed(1)} s, ${createConcurrency} creates in flight), ${failed.length} not Succeeded`)
  console.log(`throughput:         ${(runCount / wallSeconds).toFixed(1)} runs/s (${wallSeconds.toFixed(1)} s from the first create to the last terminal phase)`)
  console.log(`create-to-terminal: p50 ${(percentile(latencies, 50) / 1000).toFixed(2)} s, p99 ${(percentile(latencies, 99) / 1000).toFixed(2)} s, max ${(latencies.at(-1)! / 1000).toFixed(2)} s`)
  console.log(`API requests:       ${(requests / runCount).toFixed(2)} per run (${requests} in total since the operator started, ${requests - requestsBefore} during the bench)`)
  console.log(`  by verb/resource: ${[...byCall.entries()].sort((a, b) => b[1] - a[1]).map(([key, count]) => `${key} ${count}`).join(", ")}`)
  console.log(`operator peak RSS:  ${(peakRssKiB / 1024).toFixed(0)} MiB (VmHWM; ${(startupPeakKiB / 1024).toFixed(0)} MiB after startup, before the runs; idle RSS ${(idleRssKiB / 1024).toFixed(0)} MiB)`)
  if (failed.length > 0) {
    console.log(`first failures: ${failed.slice(0, 3).map((run) => `${run.metadata.name}: ${run.status.reason} ${run.status.message}`).join("; ")}`)
    process.exitCode = 1
  }
} finally {
  await operator?.stop()
  admin.close()
  await controlPlane.stop()
}
