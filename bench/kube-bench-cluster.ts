/**
 * API requests per kube-bench run against a real control plane:
 * `npx node bench/kube-bench-cluster.ts [runs]` (default 5).
 *
 * Starts the cluster tier's control plane (kube-apiserver, controller-manager, scheduler,
 * kwok with a master and two worker nodes), installs the CRDs and the shipped RBAC, serves
 * real kube-bench v0.15.6 output (the Job's own script run with the cache's binary) as the
 * kube-bench Pods' logs, runs the operator as a real process with its ServiceAccount, creates
 * N kube-bench runs (cis-1.10, every node: 3 Jobs each) one after another, and prints the
 * operator's API requests per run (ugallu_compliance_scan_api_requests_total during the
 * runs), by verb and resource, and the time per run.
 *
 * Measured (5 runs): watching the run's Jobs and Pods, 32.6 requests per run, 0.8 s per run;
 * the polling scanner before it (GET each Job + LIST its Pods every 2 s), 40.8 per run, 2.6 s
 * per run. kwok ends a Pod at once, so this is the floor of polling's cost; a real kube-bench
 * Pod runs for tens of seconds, and polling adds 2 requests per node every 2 s of it
 * (bench/kube-bench-requests.ts: 13.2 -> 3.6 per node for a 6 s kube-bench).
 */
import { connectAdmin } from "../test/cluster/harness/ClusterSetup.ts"
import { startControlPlane } from "../test/cluster/harness/ControlPlane.ts"
import { sleep } from "../test/cluster/harness/Eventually.ts"
import { startOperatorProcess, sumSamples } from "../test/cluster/harness/OperatorProcess.ts"
import { runManifest, runPath, terminal } from "../test/cluster/harness/Scans.ts"
import { requestsBetween, requestsByCall as byCall } from "./RequestsByCall.ts"
import { controlPlaneCacheDir, startBenchOperator, serveRealKubeBenchLogs } from "./BenchCluster.ts"

const runCount = Number(process.argv[2] ?? 5)
const cacheDir = controlPlaneCacheDir()

const controlPlane = await startControlPlane({ cacheDir })
const admin = connectAdmin(controlPlane.info)
let operator: Awaited<ReturnType<typeof startOperatorProcess>> | undefined
try {
  const spec = { backend: "kube-bench", benchmark: "cis-1.10", timeout: "5m" }
  serveRealKubeBenchLogs(controlPlane, cacheDir, spec.benchmark)
  const benchOperator = await startBenchOperator(controlPlane, admin, "bench-operator")
  const namespace = benchOperator.namespace
  operator = benchOperator.operator
  await sleep(2_000)
  const before = byCall(await operator.metrics())
  const started = Date.now()
  const phases: Array<string> = []
  for (let index = 0; index < runCount; index++) {
    const name = `bench-${index}`
    await admin.create(runPath(namespace), runManifest(namespace, name, spec))
    while (true) {
      const run = await admin.get(runPath(namespace, name))
      if (terminal(run)) {
        phases.push(run.status.phase)
        break
      }
      await sleep(200)
    }
  }
  const seconds = (Date.now() - started) / 1000
  const after = byCall(await operator.metrics())
  const during = requestsBetween(before, after)
  const total = during.reduce((sum, [, count]) => sum + count, 0)
  console.log(`runs:         ${runCount} kube-bench runs of 3 nodes, one after another, ${(seconds / runCount).toFixed(1)} s each; phases ${[...new Set(phases)].join(",")}`)
  console.log(`API requests: ${(total / runCount).toFixed(1)} per run (${total} in all, Lease renewals included; ${sumSamples(await operator.metrics(), "ugallu_compliance_scan_api_requests_total")} since start)`)
  console.log(`  by verb/resource: ${during.map(([key, count]) => `${key} ${count}`).join(", ")}`)
} finally {
  await operator?.stop()
  admin.close()
  await controlPlane.stop()
}
