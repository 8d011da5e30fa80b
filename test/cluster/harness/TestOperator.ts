import { join } from "node:path"
import type { ClusterInfo } from "./ClusterInfo.ts"
import { connectAdmin, grantLeaderElection, type OperatorIdentity } from "./ClusterSetup.ts"
import { type OperatorProcess, startOperatorProcess } from "./OperatorProcess.ts"

/** Short Lease timings, so that a takeover happens within seconds. */
export const shortLease = { leaseDuration: "4s", renewDeadline: "3s", retryPeriod: "1s", leaseDurationMillis: 4_000, retryPeriodMillis: 1_000 }

/**
 * An operator process for one test: its ServiceAccount's kubeconfig, only the test's
 * namespace watched, leader election on with the Lease in that namespace (deploy/'s Role for
 * Leases copied there) and short timings,
 * the cluster identity from environment variables.
 */
export const startTestOperator = async (
  cluster: ClusterInfo,
  identity: OperatorIdentity,
  options: {
    readonly name: string
    readonly namespace: string
    readonly flags?: ReadonlyArray<string>
    /** Instead of the ServiceAccount's own (one pointing at a proxy, say). */
    readonly kubeconfig?: string
    /** Extra environment, as a Pod's downward API would give it (POD_IP, POD_NAMESPACE). */
    readonly env?: Readonly<Record<string, string>>
    readonly lease?: { readonly leaseDuration: string; readonly renewDeadline: string; readonly retryPeriod: string }
  }
): Promise<OperatorProcess> => {
  const lease = options.lease ?? shortLease
  const admin = connectAdmin(cluster)
  try {
    await grantLeaderElection(admin, options.namespace)
  } finally {
    admin.close()
  }
  return startOperatorProcess({
    kubeconfig: options.kubeconfig ?? identity.kubeconfig,
    logDir: join(cluster.dir, "logs"),
    name: options.name,
    leaderElect: true,
    flags: [
      `--watch-namespace=${options.namespace}`,
      `--leader-election-namespace=${options.namespace}`,
      `--lease-duration=${lease.leaseDuration}`,
      `--renew-deadline=${lease.renewDeadline}`,
      `--retry-period=${lease.retryPeriod}`,
      ...(options.flags ?? [])
    ],
    // Through the environment, as a Deployment would set them.
    env: { CLUSTER_NAME: "cluster-tests", CLUSTER_ID: "cluster-tests-id", ...options.env }
  })
}

/** Runs `body`; on failure, appends the last lines of the operators' logs to the error. */
export const withOperatorLogs = async <A>(operators: ReadonlyArray<OperatorProcess | undefined>, body: () => Promise<A>): Promise<A> => {
  try {
    return await body()
  } catch (error) {
    const logs = operators
      .filter((operator): operator is OperatorProcess => operator !== undefined)
      .map((operator) => `--- ${operator.process.name} (${operator.process.logFile}):\n${operator.process.tail(25)}`)
      .join("\n")
    if (error instanceof Error) error.message = `${error.message}\n${logs}`
    throw error
  }
}
