import { Effect, Layer, Ref, Schedule } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { ComplianceScanRun, NodeScanStatus } from "../../../src/api/ComplianceScanRun.ts"
import { KubeBenchScanner } from "../../../src/backends/kube-bench/KubeBenchScanner.ts"
import type { ScanRequest } from "../../../src/backends/Scanner.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { OperatorConfig } from "../../../src/services/OperatorConfig.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { Resources } from "../../../src/services/kube/Resources.ts"
import { type JobExecutor, SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"

/** Shared set-up of the kube-bench simulated-cluster tests (not a test file itself). */

export const jobNamespace = "ugallu-system-privileged"

const fixtures = join(import.meta.dirname, "..", "..", "fixtures", "kube-bench")
/** kube-bench prints its report as one compact line. */
export const sampleReport = JSON.stringify(JSON.parse(readFileSync(join(fixtures, "sample-cis-1.10-v0.15.json"), "utf8")))

/** The sample with some statuses changed: another node's view. */
export const reportWith = (statuses: Record<string, "PASS" | "FAIL" | "WARN" | "INFO">): string => {
  const json = JSON.parse(sampleReport)
  for (const controls of json.Controls) {
    for (const group of controls.tests) {
      for (const check of group.results) if (statuses[check.test_number]) check.status = statuses[check.test_number]
    }
  }
  return JSON.stringify(json)
}

/** A Node as a kubeadm cluster's kubelet reports it (Kubernetes 1.31 by default: cis-1.11). */
export const node = (
  name: string,
  labels: Record<string, string> = {},
  facts: { readonly kubeletVersion?: string; readonly providerID?: string; readonly annotations?: Record<string, string> } = {}
): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, labels: { "kubernetes.io/hostname": name, ...labels }, ...(facts.annotations ? { annotations: facts.annotations } : {}) },
  spec: facts.providerID === undefined ? {} : { providerID: facts.providerID },
  status: { nodeInfo: { kubeletVersion: facts.kubeletVersion ?? "v1.31.4" } }
})

export const namespace = (name: string): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } })

export const run = (spec: Partial<ComplianceScanRun["spec"]> = {}, name = "cis"): ComplianceScanRun => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: "ugallu-system", uid: `uid-${name}` },
  spec: { backend: "kube-bench", ...spec }
})

/** A Node name from a simulated Pod. */
export const nodeOf = (pod: KubeObject): string => String((pod["spec"] as { nodeName?: string }).nodeName)

/**
 * A simulated cluster with the given Nodes and the job namespace, and a kube-bench scanner
 * polling every few milliseconds; both share the cluster.
 */
export const simulation = (options: {
  readonly nodes: ReadonlyArray<KubeObject>
  readonly executor: JobExecutor
  readonly withJobNamespace?: boolean
}) =>
  KubeBenchScanner.layer().pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        SimulatedCluster.layer({
          objects: [...(options.withJobNamespace === false ? [] : [namespace(jobNamespace)]), ...options.nodes],
          jobExecutor: options.executor
        }),
        OperatorConfig.layer({ jobNamespace, kubeBenchImage: "registry.example/kube-bench:test" }),
        Metrics.layerTest
      )
    )
  )

/** A scan request whose status.nodes reports are recorded, in order. */
export const request = Effect.fnUntraced(function*(scanRun: ComplianceScanRun, timeoutMillis = 60_000) {
  const reports = yield* Ref.make<ReadonlyArray<ReadonlyArray<NodeScanStatus>>>([])
  const scanRequest: ScanRequest = {
    run: scanRun,
    deadline: Date.now() + timeoutMillis,
    reportProgress: (current) =>
      Effect.flatMap(current, ({ nodes }) => Ref.update(reports, (all) => (nodes === undefined ? all : [...all, nodes])))
  }
  return { scanRequest, reports: Ref.get(reports) }
})

/** Jobs and Pods left in the job namespace. */
export const leftovers = Effect.gen(function*() {
  const cluster = yield* SimulatedCluster
  const jobs = yield* cluster.objects(Resources.Job, jobNamespace)
  const pods = yield* cluster.objects(Resources.Pod, jobNamespace)
  return { jobs: jobs.map((job) => job.metadata.name), pods: pods.map((pod) => pod.metadata.name) }
})

/** Waits (up to about 2 s) until `condition` holds. */
export const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>): Effect.Effect<void, never, R> =>
  condition.pipe(
    Effect.flatMap((holds) => (holds ? Effect.void : Effect.fail("not yet" as const))),
    Effect.retry({ times: 1000, schedule: Schedule.spaced("2 millis") }),
    Effect.orDie
  )
