import { execFileSync } from "node:child_process"
import { join } from "node:path"
import type { ComplianceScanRun } from "../src/api/ComplianceScanRun.ts"
import { kubeBenchArgs, kubeBenchContainerName } from "../src/backends/kube-bench/KubeBenchJob.ts"
import { createNamespace, grantLeaderElection, prepareCluster } from "../test/cluster/harness/ClusterSetup.ts"
import type { ControlPlane } from "../test/cluster/harness/ControlPlane.ts"
import { writeCriLog } from "../test/cluster/harness/CriLog.ts"
import type { KubeHttp } from "../test/cluster/harness/KubeHttp.ts"
import { repoRoot } from "../test/cluster/harness/Manifests.ts"
import { type OperatorProcess, startOperatorProcess } from "../test/cluster/harness/OperatorProcess.ts"
import { runRealKubeBenchJob } from "../test/cluster/harness/RealKubeBench.ts"

/** What the benches on the real control plane share: its cache, the operator's start, kube-bench's logs. */

/** The control plane's cache folder, built first if it is not complete (scripts/control-plane/build.sh). */
export const controlPlaneCacheDir = (): string =>
  execFileSync(join(repoRoot, "scripts/control-plane/build.sh"), [], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
    .trim()
    .split("\n")
    .pop()!

/**
 * CRDs, RBAC and a `bench` namespace for the runs (and the Lease), then the operator as a
 * real process with its ServiceAccount, leader-elected. OPERATOR_NODE_FLAGS adds Node/V8
 * flags after the image's own (comparisons such as `--max-semi-space-size=16`).
 */
export const startBenchOperator = async (
  controlPlane: ControlPlane,
  admin: KubeHttp,
  name: string
): Promise<{ readonly namespace: string; readonly operator: OperatorProcess }> => {
  const identity = await prepareCluster(controlPlane.info, admin)
  const namespace = await createNamespace(admin, "bench")
  await grantLeaderElection(admin, namespace)
  const operator = await startOperatorProcess({
    kubeconfig: identity.kubeconfig,
    logDir: join(controlPlane.info.dir, "logs"),
    name,
    leaderElect: true,
    flags: [`--leader-election-namespace=${namespace}`],
    nodeFlags: (process.env.OPERATOR_NODE_FLAGS ?? "").split(" ").filter((flag) => flag !== "")
  })
  return { namespace, operator }
}

/** Real kube-bench output of `benchmark` (the Job's own script, the cache's binary) as the logs of every kube-bench Pod. */
export const serveRealKubeBenchLogs = (controlPlane: ControlPlane, cacheDir: string, benchmark: string): void => {
  const args = kubeBenchArgs({ backend: "kube-bench", benchmark } as ComplianceScanRun["spec"], benchmark)
  writeCriLog(controlPlane.info.podLogFiles.master[kubeBenchContainerName]!, runRealKubeBenchJob(cacheDir, [...args, "--targets", "master"]).lines)
  writeCriLog(controlPlane.info.podLogFiles.workers[kubeBenchContainerName]!, runRealKubeBenchJob(cacheDir, [...args, "--targets", "node"]).lines)
}
