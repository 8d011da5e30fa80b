import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { kubeBenchContainerName, kubeBenchLabelKeys } from "../../src/backends/kube-bench/KubeBenchJob.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, jobNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { writeCriLog } from "./harness/CriLog.ts"
import { eventually, sleep } from "./harness/Eventually.ts"
import { freePort } from "./harness/FreePort.ts"
import { type KubeHttp, makeKubeHttp } from "./harness/KubeHttp.ts"
import { type ManagedProcess, startProcess } from "./harness/ManagedProcess.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { runRealKubeBench } from "./harness/RealKubeBench.ts"
import { createRun, podsPath, runPath } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * The operator's own kube-apiserver (a second one on the cluster's etcd, so the rest of the
 * control plane keeps running) is SIGKILLed and restarted with the same flags, for 5 s and
 * for 40 s, while 150 cel runs and a held kube-bench run are in flight: every run ends
 * Succeeded.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let port: number
let apiserver: ManagedProcess | undefined
const operators: Array<OperatorProcess> = []

const argsOnPort = (listen: number) =>
  cluster.apiserver.args.map((arg) =>
    arg.startsWith("--secure-port=")
      ? `--secure-port=${listen}`
      : arg.startsWith("--cert-dir=")
      ? `--cert-dir=${join(cluster.dir, "apiserver-restart")}`
      : arg
  )

const startApiServer = async (generation: number) => {
  apiserver = startProcess({
    name: `kube-apiserver-restart-${generation}`,
    command: cluster.apiserver.command,
    args: argsOnPort(port),
    logFile: join(cluster.dir, "logs", `kube-apiserver-restart-${generation}.log`)
  })
  const own = makeKubeHttp({ server: `https://127.0.0.1:${port}`, token: cluster.adminToken, ca: cluster.caPem })
  try {
    await eventually(
      async () => ((await own.raw("GET", "/readyz")).status === 200 ? true : undefined),
      { what: "the restarted kube-apiserver to be ready", timeoutMillis: 60_000, intervalMillis: 200, watch: [apiserver] }
    )
  } finally {
    own.close()
  }
}

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "apiserver-restart")
  port = await freePort(new Set([cluster.apiserver.port]))
  await startApiServer(0)
  writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, [runRealKubeBench(cluster.cacheDir, "cis-1.10", "master").line])
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await apiserver?.stop(10_000)
  await deleteNamespace(admin, namespace)
  admin.close()
})

const phases = async () => {
  const counts: Record<string, number> = {}
  for (const run of await admin.list(runPath(namespace))) {
    const phase = String(run.status?.phase ?? "")
    counts[phase] = (counts[phase] ?? 0) + 1
  }
  return counts
}

describe("kube-apiserver killed and restarted (same etcd)", () => {
  it("for 5 s and for 40 s during 150 cel runs and a held kube-bench run: every run ends Succeeded", async () => {
    const viaOwnServer = `${identity.kubeconfig}.own-apiserver`
    writeFileSync(viaOwnServer, readFileSync(identity.kubeconfig, "utf8").replace(cluster.server, `https://127.0.0.1:${port}`), { mode: 0o600 })
    const operator = await startTestOperator(cluster, identity, {
      name: "apiserver-restart",
      namespace,
      kubeconfig: viaOwnServer,
      flags: ["--max-concurrent-runs=10"]
    })
    operators.push(operator)
    await withOperatorLogs(operators, async () => {
      await createRun(admin, namespace, "held-kube-bench", {
        backend: "kube-bench",
        benchmark: "cis-1.10",
        timeout: "10m",
        targetNodeSelector: { "kubernetes.io/role": "master" }
      })
      for (let i = 0; i < 150; i++) {
        await createRun(admin, namespace, `cel-${String(i).padStart(3, "0")}`, { backend: "cel", profile: "pod-security-baseline", timeout: "10m" })
      }
      const [pod] = await eventually(
        async () => {
          const pods = await admin.list(podsPath(jobNamespace), { labelSelector: `${kubeBenchLabelKeys.runNamespace}=${namespace}` })
          return pods.length === 1 && pods[0]!.status?.phase === "Running" ? pods : undefined
        },
        { what: "the held kube-bench Pod to be Running", timeoutMillis: 90_000 }
      )

      for (const [generation, downSeconds] of [[1, 5], [2, 40]] as const) {
        // Mid-flight: some runs done, others running or waiting.
        await eventually(async () => (((await phases()).Succeeded ?? 0) >= 25 * generation ? true : undefined), {
          what: `${25 * generation} runs to have succeeded`,
          timeoutMillis: 180_000,
          intervalMillis: 250
        })
        await apiserver!.kill()
        const before = await phases()
        await sleep(downSeconds * 1_000)
        await startApiServer(generation)
        console.log(`[apiserver-restart] killed for ${downSeconds} s with runs ${JSON.stringify(before)}`)
      }

      await admin.mergePatch(podsPath(jobNamespace, pod!.metadata.name), { metadata: { labels: { [cluster.releaseLabel]: "true" } } })
      const final = await eventually(
        async () => {
          const counts = await phases()
          return (counts.Succeeded ?? 0) + (counts.Failed ?? 0) === 151 ? counts : undefined
        },
        { what: "every run to end", timeoutMillis: 300_000, intervalMillis: 500, watch: [operator.process] }
      )
      const failed = (await admin.list(runPath(namespace))).filter((run) => run.status?.phase !== "Succeeded")
      expect(failed.map((run) => `${run.metadata.name}: ${run.status?.reason} ${run.status?.message}`)).toEqual([])
      expect(final).toEqual({ Succeeded: 151 })
    })
  }, 900_000)
})
