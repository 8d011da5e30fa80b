import { existsSync, readFileSync, realpathSync } from "node:fs"
import { join } from "node:path"
import { imageEnvironment, imageNodeFlags } from "../../unit/deploy/DeployFiles.ts"
import { eventually } from "./Eventually.ts"
import { freePort } from "./FreePort.ts"
import { type ManagedProcess, startProcess } from "./ManagedProcess.ts"
import { repoRoot } from "./Manifests.ts"

/**
 * The operator as users run it: `node bin/compliance-scan.js run` in its own process (the project's
 * Node 24, the binary `npx node` runs, started directly so that SIGKILL hits the operator
 * itself and /proc/<pid> is its own), configured by flags, with its metrics and probe
 * endpoints on free ports.
 */
export interface OperatorProcess {
  readonly process: ManagedProcess
  readonly metricsPort: number
  readonly probePort: number
  /** The /metrics text. */
  readonly metrics: () => Promise<string>
  /** Sum of a metric's samples whose labels include `labels`. */
  readonly metricSum: (name: string, labels?: Readonly<Record<string, string>>) => Promise<number>
  /** Peak resident set size so far (VmHWM), in KiB. */
  readonly peakRssKiB: () => number
  /** Resident set size now (VmRSS), in KiB. */
  readonly rssKiB: () => number
  /** SIGTERM (the operator drains), SIGKILL after the grace period. */
  readonly stop: () => Promise<void>
  /** SIGKILL: a crash. */
  readonly kill: () => Promise<void>
}

export interface OperatorProcessOptions {
  readonly kubeconfig: string
  /** Where its log goes: <logDir>/<name>.log. */
  readonly logDir: string
  /** Log name, and the POD_NAME its Lease identity starts with. */
  readonly name: string
  /** Extra flags (`--watch-namespace`, lease timings, ...). */
  readonly flags?: ReadonlyArray<string>
  readonly leaderElect?: boolean
  /** Extra environment (every flag is also a variable: CLUSTER_NAME for --cluster-name). */
  readonly env?: Readonly<Record<string, string>>
  /** Node flags after the image's own (benchmarks: `--heapsnapshot-near-heap-limit`, ...). */
  readonly nodeFlags?: ReadonlyArray<string>
  /** Wait for /readyz to answer 200 before returning (default); false: only for it to answer at all. */
  readonly waitUntilReady?: boolean
}

/** The project's Node (the `node` devDependency), falling back to the one running the tests. */
export const projectNode = (): string => {
  const local = join(repoRoot, "node_modules", ".bin", "node")
  return existsSync(local) ? realpathSync(local) : process.execPath
}

/**
 * The glibc allocator settings of the image's ENV (`MALLOC_*`): they decide how much memory
 * the operator gives back after a scan, which the benches measure. (Its other variables,
 * NODE_ENV and HOME, change nothing the tests see.)
 */
const imageAllocatorEnv = (): Readonly<Record<string, string>> =>
  Object.fromEntries(Object.entries(imageEnvironment()).filter(([name]) => name.startsWith("MALLOC_")))

/** A memory figure of /proc/<pid>/status (VmHWM, VmRSS), in KiB. */
const memoryStatusKiB = (pid: number, field: "VmHWM" | "VmRSS"): number => {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "mu").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1])
}

/** Prometheus text format: sum of the samples of `name` that carry all of `labels`. */
export const sumSamples = (text: string, name: string, labels: Readonly<Record<string, string>> = {}): number => {
  let total = 0
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/u.exec(line)
    if (match === null || match[1] !== name) continue
    const present = match[2] ?? ""
    if (!Object.entries(labels).every(([key, value]) => present.includes(`${key}="${value}"`))) continue
    total += Number(match[3])
  }
  return total
}

export const startOperatorProcess = async (options: OperatorProcessOptions): Promise<OperatorProcess> => {
  const ports = new Set<number>()
  const metricsPort = await freePort(ports)
  const probePort = await freePort(ports)
  const process = startProcess({
    name: `operator ${options.name}`,
    command: projectNode(),
    args: [
      ...imageNodeFlags(),
      ...(options.nodeFlags ?? []),
      "bin/compliance-scan.js",
      "run",
      `--kubeconfig=${options.kubeconfig}`,
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
      `--leader-elect=${options.leaderElect ?? false}`,
      "--log-format=text",
      ...(options.flags ?? [])
    ],
    cwd: repoRoot,
    logFile: join(options.logDir, `${options.name}.log`),
    // The identity in the Lease is <POD_NAME>_<random>: tests tell processes apart by it.
    env: { KUBECONFIG: undefined, NODE_OPTIONS: undefined, ...imageAllocatorEnv(), ...options.env, POD_NAME: options.name }
  })
  const metrics = async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5_000) })
    if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`)
    return response.text()
  }
  await eventually(
    async () => {
      const response = await fetch(`http://127.0.0.1:${probePort}/readyz`, { signal: AbortSignal.timeout(2_000) })
      return response.status === 200 || options.waitUntilReady === false ? true : undefined
    },
    { what: `${process.name} to answer /readyz`, timeoutMillis: 60_000, intervalMillis: 100, watch: [process] }
  )
  return {
    process,
    metricsPort,
    probePort,
    metrics,
    metricSum: async (name, labels) => sumSamples(await metrics(), name, labels),
    peakRssKiB: () => memoryStatusKiB(process.pid, "VmHWM"),
    rssKiB: () => memoryStatusKiB(process.pid, "VmRSS"),
    stop: () => process.stop(10_000),
    kill: () => process.kill()
  }
}
