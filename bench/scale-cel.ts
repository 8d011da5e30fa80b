/**
 * The CEL backend at cluster scale, on the real control plane (scripts/control-plane/build.sh):
 *
 *   npx node bench/scale-cel.ts [sizes]        (default 10000,30000,100000)
 *
 * Starts the cluster tier's control plane, creates Pods (bench/BenchPods.ts, in 100
 * namespaces, bound to a node that does not exist so nothing runs them) with a bounded
 * number of creates in flight, and tops them up to each size in turn: the Pods of one size
 * are reused by the next. At each size, once the API server is at rest after the creates,
 * the operator (a real process with its ServiceAccount) runs the pod-security-restricted pack
 * three times; printed per scan: its wall time (the operator's own
 * ugallu_compliance_scan_duration_seconds of the run), create-to-terminal time, the CPU of
 * the operator and the API server, the operator's list requests; per size, its peak RSS
 * during the scans (VmHWM, reset before each size through /proc/<pid>/clear_refs) and what
 * it still holds 30 s after them (VmRSS).
 * Targets (issue 15): at 100,000 Pods a scan under 10 s and a peak RSS under 400 MiB; idle
 * RSS 200 MiB or less.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { createPods } from "../test/cluster/harness/BulkPods.ts"
import { connectAdmin, createNamespace } from "../test/cluster/harness/ClusterSetup.ts"
import { startControlPlane } from "../test/cluster/harness/ControlPlane.ts"
import { eventually, sleep } from "../test/cluster/harness/Eventually.ts"
import { startOperatorProcess, sumSamples } from "../test/cluster/harness/OperatorProcess.ts"
import { runManifest, runPath, terminal } from "../test/cluster/harness/Scans.ts"
import { benchPod } from "./BenchPods.ts"
import { controlPlaneCacheDir, startBenchOperator } from "./BenchCluster.ts"
import { listFloor } from "./ListFloor.ts"

const sizes = (process.argv[2] ?? "10000,30000,100000").split(",").map(Number)
const namespaceCount = 100
const createConcurrency = 48
const idleAfterScansMillis = 30_000
const settleMillis = 180_000

const cacheDir = controlPlaneCacheDir()

const controlPlane = await startControlPlane({ cacheDir })
const admin = connectAdmin(controlPlane.info)
let operator: Awaited<ReturnType<typeof startOperatorProcess>> | undefined
try {
  console.log(`control plane up in ${controlPlane.info.timings.total?.toFixed(1)} s`)
  const benchOperator = await startBenchOperator(controlPlane, admin, "scale-operator")
  const runNamespace = benchOperator.namespace
  operator = benchOperator.operator
  const namespaces: Array<string> = []
  for (let index = 0; index < namespaceCount; index++) namespaces.push(await createNamespace(admin, `team-${index}`))
  await sleep(2_000)
  console.log(`operator RSS after startup: ${(operator.peakRssKiB() / 1024).toFixed(0)} MiB (VmHWM)`)

  /** CPU seconds (user + system) a process has used: /proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s. */
  const cpuSeconds = (pid: number) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /su, "").split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  }
  const apiServer = controlPlane.processes.find((managed) => managed.name.includes("apiserver"))
  const scanSeconds = () => operator!.metricSum("ugallu_compliance_scan_duration_seconds_sum", { backend: "cel" })
  const scansRecorded = () => operator!.metricSum("ugallu_compliance_scan_duration_seconds_count", { backend: "cel" })
  const podLists = () => operator!.metricSum("ugallu_compliance_scan_api_requests_total", { verb: "list", resource: "pods" })
  let created = 0
  let runIndex = 0
  for (const size of sizes) {
    const startedCreating = Date.now()
    const indices = Array.from({ length: size - created }, (_, offset) => created + offset)
    // One createPods per namespace share of the new Pods, in sequence, each with its creates in flight.
    for (let namespaceIndex = 0; namespaceIndex < namespaceCount; namespaceIndex++) {
      const mine = indices.filter((index) => index % namespaceCount === namespaceIndex)
      const namespace = namespaces[namespaceIndex]!
      await createPods(admin, namespace, mine.map((index) => `app-${index}`), (_name, position) => {
        const { metadata, ...rest } = benchPod(mine[position]!, namespace)
        const { uid: _uid, ...withoutUid } = metadata
        return { ...rest, metadata: withoutUid }
      }, createConcurrency)
    }
    const createSeconds = (Date.now() - startedCreating) / 1000
    console.log(`\n${size.toLocaleString("en-US")} Pods (${(size - created).toLocaleString("en-US")} created in ${createSeconds.toFixed(0)} s, ${((size - created) / createSeconds).toFixed(0)}/s)`)
    created = size
    // The API server goes on working for minutes after a burst of creates (its first scans
    // then took 17-28 CPU-s, against 4-9 at rest): a cluster is scanned at rest, so wait for
    // it to use under 5 % of a core over 5 s (3 minutes at most), and say how long that took.
    const settleStarted = Date.now()
    for (let before = apiServer === undefined ? 0 : cpuSeconds(apiServer.pid); Date.now() - settleStarted < settleMillis;) {
      await sleep(5_000)
      const now = apiServer === undefined ? 0 : cpuSeconds(apiServer.pid)
      if (now - before < 0.25) break
      before = now
    }
    console.log(`  kube-apiserver at rest after ${((Date.now() - settleStarted) / 1000).toFixed(0)} s`)
    // Peak RSS of this size only: clear_refs 5 resets VmHWM to the current RSS.
    writeFileSync(`/proc/${operator.process.pid}/clear_refs`, "5")
    for (const label of ["first scan", "second scan", "third scan"]) {
      const name = `scale-${runIndex++}`
      const [secondsBefore, recordedBefore, listsBefore] = [await scanSeconds(), await scansRecorded(), await podLists()]
      const [operatorCpuBefore, apiServerCpuBefore] = [cpuSeconds(operator.process.pid), apiServer === undefined ? 0 : cpuSeconds(apiServer.pid)]
      const createdAt = Date.now()
      await admin.create(runPath(runNamespace), runManifest(runNamespace, name, { backend: "cel", profile: "pod-security-restricted" }))
      let run: Record<string, any> | undefined
      while (run === undefined || !terminal(run)) {
        if (Date.now() - createdAt > 15 * 60_000) throw new Error(`run ${name} did not finish within 15 minutes`)
        await sleep(200)
        run = await admin.get(runPath(runNamespace, name))
      }
      const wall = (Date.parse(run.status.completionTime) - createdAt) / 1000
      // The operator records the duration just after its terminal write: wait for it.
      await eventually(async () => ((await scansRecorded()) > recordedBefore ? true : undefined), {
        what: `the operator to record the duration of ${name}`,
        timeoutMillis: 30_000,
        intervalMillis: 50
      })
      const scan = (await scanSeconds()) - secondsBefore
      const lists = (await podLists()) - listsBefore
      const operatorCpu = cpuSeconds(operator.process.pid) - operatorCpuBefore
      const apiServerCpu = apiServer === undefined ? Number.NaN : cpuSeconds(apiServer.pid) - apiServerCpuBefore
      const summary = run.status.summary ?? {}
      console.log(
        `  ${label}: ${run.status.phase} in ${scan.toFixed(2)} s (operator's scan duration; ${wall.toFixed(1)} s create to completionTime, ` +
          `1 s resolution); CPU: operator ${operatorCpu.toFixed(2)} s, kube-apiserver ${apiServerCpu.toFixed(2)} s; ${lists} Pod list requests; checks ${JSON.stringify(summary)}`
      )
      if (run.status.phase !== "Succeeded") {
        console.log(`  ${run.status.reason}: ${run.status.message}`)
        process.exitCode = 1
      }
    }
    console.log(`  operator peak RSS during the scans: ${(operator.peakRssKiB() / 1024).toFixed(0)} MiB (VmHWM)`)
    const scansEnded = Date.now()
    // The API server's share: the same pages read by a client that ignores them, as the scan
    // reads them (protobuf) and as JSON.
    // Twice each, alternated: the API server's CPU for the same read varies a lot.
    for (const encoding of ["protobuf", "json", "json", "protobuf"] as const) {
      const floorCpuBefore = apiServer === undefined ? 0 : cpuSeconds(apiServer.pid)
      const floorStarted = Date.now()
      const floor = await listFloor(controlPlane.info, "/api/v1/pods", encoding)
      console.log(
        `  floor in ${encoding} (the same ${floor.pages} pages read and dropped by a bare client): ${((Date.now() - floorStarted) / 1000).toFixed(2)} s, ` +
          `kube-apiserver CPU ${(apiServer === undefined ? Number.NaN : cpuSeconds(apiServer.pid) - floorCpuBefore).toFixed(2)} s, ${(floor.bytes / 2 ** 20).toFixed(0)} MiB`
      )
    }
    // What the operator keeps once idle again: V8's memory reducer shrinks the heap some
    // seconds after allocation stops, and what glibc keeps of the freed pages shows here.
    await sleep(Math.max(0, scansEnded + idleAfterScansMillis - Date.now()))
    console.log(`  operator RSS ${idleAfterScansMillis / 1000} s after the scans: ${(operator.rssKiB() / 1024).toFixed(0)} MiB (VmRSS)`)
  }
  const metricsText = await operator.metrics()
  console.log(`\noperator API requests in total: ${sumSamples(metricsText, "ugallu_compliance_scan_api_requests_total")}`)
} finally {
  await operator?.stop()
  admin.close()
  await controlPlane.stop()
}
