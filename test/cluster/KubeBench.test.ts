import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { kubeBenchArgs, kubeBenchContainerName, kubeBenchSecurityContext, kubeBenchJobName, kubeBenchRunSelector, runIdentityOf } from "../../src/backends/kube-bench/KubeBenchJob.ts"
import type { ComplianceScanRun } from "../../src/api/ComplianceScanRun.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, jobNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { writeCriLog } from "./harness/CriLog.ts"
import { eventually } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import { readManifests, repoRoot } from "./harness/Manifests.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { expectedSummary, type RealReport, reportResults, runRealKubeBenchJob } from "./harness/RealKubeBench.ts"
import { resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, jobsPath, podsPath, resultPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * The kube-bench backend on the real control plane: the operator creates a Job per node in
 * the privileged namespace, the Job controller makes its Pod, kwok runs it on the fake node
 * and serves, as its log, a report the real kube-bench binary produced in the test setup;
 * the operator reads it through the API server's pods/log and writes the Result.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let operator: OperatorProcess | undefined
let masterReport: RealReport
let nodeReport: RealReport
let masterLog: ReturnType<typeof runRealKubeBenchJob>

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "kube-bench")
  // What the Job's container prints: kube-bench's stderr, then the report between markers.
  const args = kubeBenchArgs({ backend: "kube-bench" } as ComplianceScanRun["spec"], "cis-1.10")
  masterLog = runRealKubeBenchJob(cluster.cacheDir, [...args, "--targets", "master"])
  const nodeLog = runRealKubeBenchJob(cluster.cacheDir, [...args, "--targets", "node"])
  masterReport = { line: "", report: masterLog.report! }
  nodeReport = { line: "", report: nodeLog.report! }
  writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, masterLog.lines)
  writeCriLog(cluster.podLogFiles.workers[kubeBenchContainerName]!, nodeLog.lines)
  operator = await startTestOperator(cluster, identity, { name: "kube-bench-operator", namespace })
})

afterAll(async () => {
  await operator?.stop()
  await deleteNamespace(admin, namespace)
  admin.close()
})

/**
 * Records every Job and Pod of a run (the Jobs are deleted at the end, so this is how the
 * test sees them): latest state by name, from watches that start at the run's own creation,
 * so a Job that came and went between two looks is still seen.
 */
const recordJobsAndPods = (created: Json) => {
  const jobs = new Map<string, Json>()
  const pods = new Map<string, Json>()
  const query = { labelSelector: kubeBenchRunSelector({ namespace: "", name: "", uid: created.metadata.uid }), resourceVersion: created.metadata.resourceVersion }
  const record = (into: Map<string, Json>) => (event: { readonly type: string; readonly object: Json }) => {
    if (event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED") into.set(event.object.metadata.name, event.object)
  }
  const stops = [admin.watch(jobsPath(jobNamespace), query, record(jobs)), admin.watch(podsPath(jobNamespace), query, record(pods))]
  return {
    jobs,
    pods,
    /**
     * Stops watching once both watches hold `nodes` objects (their events arrive a moment
     * after the run ends), or after 10 s: the assertions then say what is missing.
     */
    finish: async (nodes: number) => {
      await eventually(async () => (jobs.size >= nodes && pods.size >= nodes ? true : undefined), {
        what: "the run's Jobs and Pods to be seen by the test's watches",
        timeoutMillis: 10_000
      }).catch(() => undefined)
      stops.forEach((stop) => stop())
    }
  }
}

const remaining = async (uid: string) => {
  const selector = kubeBenchRunSelector({ namespace: "", name: "", uid })
  const [jobs, pods] = await Promise.all([
    admin.list(jobsPath(jobNamespace), { labelSelector: selector }),
    admin.list(podsPath(jobNamespace), { labelSelector: selector })
  ])
  return jobs.length + pods.length
}

const add = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((key) => [key, a[key]! + (b[key] ?? 0)]))

describe("kube-bench run", () => {
  it("scans the master node of the reference example: Job, Pod, real report read through pods/log, Jobs deleted", async () => {
    await withOperatorLogs([operator], async () => {
      const [reference] = readManifests(join(repoRoot, "test/fixtures/manifests/reference-example.yaml"))
      const created = await createRun(admin, namespace, reference!.metadata.name, reference!.spec)
      const recorder = recordJobsAndPods(created)
      const run = await waitForRun(admin, namespace, created.metadata.name, { timeoutMillis: 120_000 }).finally(() => recorder.finish(1))

      const jobName = kubeBenchJobName(runIdentityOf(created as ComplianceScanRun), cluster.nodes.master)
      expect(run.status.phase).toBe("Succeeded")
      expect(run.status.nodes).toEqual([expect.objectContaining({ name: cluster.nodes.master, job: jobName, phase: "Succeeded" })])

      // The Job the operator created: pinned to the master node, kube-bench with the run's benchmark.
      const job = recorder.jobs.get(jobName)
      expect(job, `the Job ${jobName} was never seen`).toBeDefined()
      expect(job!.spec.template.spec.nodeName).toBe(cluster.nodes.master)
      expect(job!.spec.template.spec.containers[0].name).toBe(kubeBenchContainerName)
      expect(job!.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(["--benchmark", "cis-1.9"]))
      // Its Pod came from the Job controller (owner reference), ran on the master node (kwok), and succeeded.
      const pods = [...recorder.pods.values()]
      expect(pods).toHaveLength(1)
      // The hardened container, as the API server admitted it.
      expect(pods[0]!.spec.securityContext.seccompProfile).toEqual({ type: "RuntimeDefault" })
      expect(pods[0]!.spec.containers[0].securityContext).toEqual(kubeBenchSecurityContext)
      expect(pods[0]!.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: "Job", name: jobName, controller: true })])
      expect(pods[0]!.spec.nodeName).toBe(cluster.nodes.master)
      const jobEvents = await admin.list(resourcePath("v1", "Event", jobNamespace), { fieldSelector: `involvedObject.name=${jobName}` })
      expect(jobEvents.map((event) => event.reason)).toContain("SuccessfulCreate")

      // The Result is the real report: its totals, in the Result's terms.
      const result = await admin.get(resultPath(namespace, created.metadata.name))
      expect(result.spec.summary).toEqual(expectedSummary(masterReport.report))
      expect(run.status.summary).toEqual(expectedSummary(masterReport.report))
      expect(result.spec.checks).toHaveLength(reportResults(masterReport.report).length)
      expect(result.spec.checks.every((check: Json) => check.subjects?.[0]?.name === cluster.nodes.master)).toBe(true)
      const failedSeverities = result.spec.checks.filter((check: Json) => check.outcome === "fail").map((check: Json) => check.severity)
      expect(failedSeverities.length).toBeGreaterThan(0)
      expect(failedSeverities).toContain(result.status.worstSeverity)
      expect(run.status.worstSeverity).toBe(result.status.worstSeverity)
      // The log was read through the API server's pods/log, with the operator's own token.
      expect(await operator!.metricSum("ugallu_compliance_scan_api_requests_total", { resource: "pods/log", code: "200" })).toBeGreaterThanOrEqual(1)

      // Deleted at the terminal phase with Background propagation: the Pods go too.
      await eventually(async () => ((await remaining(created.metadata.uid)) === 0 ? true : undefined), {
        what: "the run's Jobs and Pods to be deleted",
        timeoutMillis: 60_000
      })
    })
  })

  it("scans every node: one Job per node, each node's own report, all counted", async () => {
    await withOperatorLogs([operator], async () => {
      const created = await createRun(admin, namespace, "all-nodes", { backend: "kube-bench", benchmark: "cis-1.10", timeout: "5m" })
      const recorder = recordJobsAndPods(created)
      const nodes = [cluster.nodes.master, ...cluster.nodes.workers].sort()
      const jobNames = nodes.map((node) => kubeBenchJobName(runIdentityOf(created as ComplianceScanRun), node)).sort()
      const run = await waitForRun(admin, namespace, "all-nodes", { timeoutMillis: 120_000 }).finally(() => recorder.finish(nodes.length))

      expect(run.status.phase).toBe("Succeeded")
      expect(run.status.nodes.map((node: Json) => [node.name, node.phase])).toEqual(nodes.map((node) => [node, "Succeeded"]))
      expect([...recorder.jobs.keys()].sort()).toEqual(jobNames)
      expect(new Set([...recorder.pods.values()].map((pod) => pod.spec.nodeName))).toEqual(new Set(nodes))

      // Master checks (master report) and node checks (node report, on both workers) together.
      const result = await admin.get(resultPath(namespace, "all-nodes"))
      expect(result.spec.checks).toHaveLength(reportResults(masterReport.report).length + reportResults(nodeReport.report).length)
      expect(result.spec.summary).toEqual(add(expectedSummary(masterReport.report), expectedSummary(nodeReport.report)))
      const nodeChecks = result.spec.checks.filter((check: Json) => check.checkID.startsWith("cis.4."))
      expect(nodeChecks).toHaveLength(reportResults(nodeReport.report).length)
      for (const check of nodeChecks) {
        expect(check.subjects.map((subject: Json) => subject.name).sort()).toEqual([...cluster.nodes.workers].sort())
      }

      await eventually(async () => ((await remaining(created.metadata.uid)) === 0 ? true : undefined), {
        what: "the run's Jobs and Pods to be deleted",
        timeoutMillis: 60_000
      })
    })
  })

  it("a failing kube-bench (unknown benchmark) ends the run Failed with kube-bench's own sentence in status.nodes[].message", async () => {
    await withOperatorLogs([operator], async () => {
      const spec = { backend: "kube-bench", benchmark: "cis-9.99", timeout: "5m", targetNodeSelector: { "kubernetes.io/role": "master" } }
      // The real binary, run through the Job's own script with the arguments the Job passes.
      const job = runRealKubeBenchJob(cluster.cacheDir, kubeBenchArgs(spec as ComplianceScanRun["spec"], "cis-9.99"))
      expect(job.exitCode).toBe(1)
      writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, job.lines)
      try {
        const created = await createRun(admin, namespace, "unknown-benchmark", spec)
        const run = await waitForRun(admin, namespace, created.metadata.name, { timeoutMillis: 120_000 })
        expect(run.status.phase).toBe("Failed")
        expect(run.status.nodes).toEqual([expect.objectContaining({ name: cluster.nodes.master, phase: "Failed", reason: "JobFailed", benchmark: "cis-9.99" })])
        expect(run.status.nodes[0].message).toMatch(/exited with code 1; kube-bench said: .*No targets configured for cis-9\.99/)
        expect(run.status.message).toContain("No targets configured for cis-9.99")
      } finally {
        writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, masterLog.lines)
      }
    })
  })

  it("EKS, GKE and k3s nodes get Jobs with their own benchmark and host folders, decided by the operator from the Node objects", async () => {
    const platformLabel = "cluster-tests.ugallu.io/platform-node"
    const platformNodes = [
      { name: "kwok-eks-1", labels: { "eks.amazonaws.com/nodegroup": "ng-1" }, kubeletVersion: "v1.31.4-eks-aeac579", providerID: "aws:///eu-west-1a/i-0abc", platform: "eks", version: "1.31", benchmark: "eks-1.7.0", paths: ["/var/lib/kubelet", "/etc/kubernetes"], notPaths: ["/var/lib/rancher", "/home/kubernetes"] },
      { name: "kwok-gke-1", labels: { "cloud.google.com/gke-nodepool": "default-pool" }, kubeletVersion: "v1.32.2-gke.1182003", providerID: "gce://proj/europe-west1-b/gke-1", platform: "gke", version: "1.32", benchmark: "gke-1.9.0", paths: ["/var/lib/kubelet", "/home/kubernetes"], notPaths: ["/var/lib/rancher"] },
      { name: "kwok-k3s-1", labels: { "node.kubernetes.io/instance-type": "k3s" }, kubeletVersion: "v1.26.15+k3s1", providerID: undefined, platform: "k3s", version: "1.26", benchmark: "k3s-cis-1.8", paths: ["/var/lib/rancher", "/etc/rancher", "/var/log/journal"], notPaths: ["/home/kubernetes"] }
    ]
    const nodesPath = resourcePath("v1", "Node")
    for (const node of platformNodes) {
      await admin.create(nodesPath, {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name: node.name,
          labels: { ...node.labels, [platformLabel]: "true", "kubernetes.io/role": "worker", "kubernetes.io/os": "linux", type: "kwok" }
        },
        spec: node.providerID === undefined ? {} : { providerID: node.providerID },
        status: { nodeInfo: { kubeletVersion: node.kubeletVersion } }
      })
      // As a kubelet reports it (through the status subresource, whatever create kept).
      const patched = await admin.raw(
        "PATCH",
        `${resourcePath("v1", "Node", undefined, node.name)}/status`,
        JSON.stringify({ status: { nodeInfo: { kubeletVersion: node.kubeletVersion } } }),
        "application/merge-patch+json"
      )
      expect(patched.status, patched.body).toBe(200)
    }
    try {
      await withOperatorLogs([operator], async () => {
        // kwok keeps the kubelet version the Node was created with.
        await eventually(async () => {
          const nodes = await admin.list(nodesPath, { labelSelector: `${platformLabel}=true` })
          const ready = nodes.filter((node) => (node.status?.conditions ?? []).some((condition: Json) => condition.type === "Ready" && condition.status === "True"))
          const versions = ready.map((node) => node.status?.nodeInfo?.kubeletVersion).sort()
          return ready.length === platformNodes.length && versions.join() === platformNodes.map((node) => node.kubeletVersion).sort().join() ? ready : undefined
        }, { what: "the platform nodes to be Ready (kwok)", timeoutMillis: 60_000 })
        const created = await createRun(admin, namespace, "platforms", { backend: "kube-bench", timeout: "5m", targetNodeSelector: { [platformLabel]: "true" } })
        const recorder = recordJobsAndPods(created)
        const run = await waitForRun(admin, namespace, "platforms", { timeoutMillis: 120_000 }).finally(() => recorder.finish(platformNodes.length))
        expect(run.status.phase).toBe("Succeeded")
        const identity = runIdentityOf(created as ComplianceScanRun)
        for (const node of platformNodes) {
          const job = recorder.jobs.get(kubeBenchJobName(identity, node.name))
          expect(job, node.name).toBeDefined()
          expect(job!.spec.template.spec.containers[0].args).toEqual(["run", "--json", "--benchmark", node.benchmark])
          // Read-only host folders: the platform's own, and no other platform's.
          const hostPaths = job!.spec.template.spec.volumes.flatMap((volume: Json) => (volume.hostPath ? [volume.hostPath.path] : []))
          expect(hostPaths, node.name).toEqual(expect.arrayContaining(node.paths))
          for (const path of node.notPaths) expect(hostPaths, node.name).not.toContain(path)
          expect(job!.spec.template.spec.containers[0].volumeMounts.filter((mount: Json) => mount.readOnly !== true).map((mount: Json) => mount.name)).toEqual(["kube-bench-report", "tmp"])
        }
        const expected = platformNodes.map((node) => expect.objectContaining({ name: node.name, phase: "Succeeded", platform: node.platform, version: node.version, benchmark: node.benchmark }))
        expect(run.status.nodes).toEqual(expected)
        const result = await admin.get(resultPath(namespace, "platforms"))
        expect(result.spec.nodes).toEqual(expected)
      })
    } finally {
      for (const node of platformNodes) await admin.remove(resourcePath("v1", "Node", undefined, node.name)).catch(() => undefined)
    }
  })
})
