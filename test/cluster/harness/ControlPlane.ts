import { randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { request } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Certificates, makeCertificates } from "./Certificates.ts"
import type { ClusterInfo } from "./ClusterInfo.ts"
import { writeCriLog } from "./CriLog.ts"
import { eventually } from "./Eventually.ts"
import { freePort } from "./FreePort.ts"
import { type KubeHttp, makeKubeHttp } from "./KubeHttp.ts"
import { writeKubeconfig } from "./Kubeconfig.ts"
import { kwokConfigText } from "./KwokConfig.ts"
import { type ManagedProcess, startProcess } from "./ManagedProcess.ts"

/**
 * A real Kubernetes control plane on 127.0.0.1, envtest style: etcd, kube-apiserver (token
 * authentication, RBAC), kube-controller-manager (Job, Deployment, ReplicaSet, garbage
 * collector, namespace, TTL-after-finished, service account and root CA controllers), kube-scheduler, and kwok
 * playing the kubelets of fake nodes (one master node with the control-plane NoSchedule
 * taint, and workers). Two kwok processes, one per pool, so the master's Pods and the
 * workers' Pods can serve different logs. Everything lives in a temp folder that `stop`
 * removes; each component logs to <dir>/logs/<component>.log.
 */
export interface ControlPlaneOptions {
  /** The control-plane cache folder: bin/, kwok-stages/ (scripts/control-plane/build.sh). */
  readonly cacheDir: string
  /** Worker nodes besides the master node (default 2). */
  readonly workers?: number
  /** Containers that get their own log file per pool (default ["kube-bench"]); others share "*". */
  readonly logContainers?: ReadonlyArray<string>
  /** Keep the temp folder after stop (debugging). */
  readonly keepDir?: boolean
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void
}

export interface ControlPlane {
  readonly info: ClusterInfo
  /** An admin client (system:masters). */
  readonly admin: KubeHttp
  readonly processes: ReadonlyArray<ManagedProcess>
  /** Stops every component (SIGTERM, then SIGKILL after a grace period) and removes the folder. */
  readonly stop: () => Promise<void>
}

export const heldJobMarker = "-held-"
export const releaseLabel = "cluster-tests.ugallu.io/release"
export const masterNodeName = "kwok-master"

const startTimeoutMillis = 120_000

/** GET https://127.0.0.1:<port>/healthz of a component with a self-signed serving certificate. */
const healthz = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/healthz", rejectUnauthorized: false, timeout: 2_000 }, (response) => {
      response.resume()
      resolve(response.statusCode === 200)
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve(false))
    req.end()
  })

const etcdHealthy = async (port: number): Promise<boolean> => {
  const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) })
  const body = (await response.json()) as { health?: string }
  return body.health === "true"
}

const isReady = (node: Record<string, any>): boolean =>
  (node.status?.conditions ?? []).some((condition: { type: string; status: string }) => condition.type === "Ready" && condition.status === "True")

const nodeObject = (name: string, role: "master" | "worker") => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name,
    labels: {
      "kubernetes.io/role": role,
      "kubernetes.io/hostname": name,
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
      type: "kwok",
      ...(role === "master" ? { "node-role.kubernetes.io/control-plane": "" } : {})
    }
  },
  spec: role === "master" ? { taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }] } : {}
})

export const startControlPlane = async (options: ControlPlaneOptions): Promise<ControlPlane> => {
  const log = options.log ?? (() => {})
  const bin = (name: string) => join(options.cacheDir, "bin", name)
  const dir = mkdtempSync(join(tmpdir(), "cluster-tests-"))
  const logs = join(dir, "logs")
  mkdirSync(logs)
  const processes: Array<ManagedProcess> = []
  const timings: Record<string, number> = {}
  const started = Date.now()
  let stepStart = started
  const step = (name: string) => {
    const now = Date.now()
    timings[name] = (now - stepStart) / 1000
    log(`${name}: ${timings[name]!.toFixed(1)} s`)
    stepStart = now
  }
  let admin: KubeHttp | undefined

  const stop = async () => {
    admin?.close()
    // Reverse order: the node agents and controllers first, the API server, etcd last.
    const [etcd, apiserver, ...rest] = processes
    await Promise.all(rest.map((process) => process.stop(5_000)))
    if (apiserver !== undefined) await apiserver.stop(10_000)
    if (etcd !== undefined) await etcd.stop(5_000)
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true })
  }

  const spawn = (name: string, command: string, args: ReadonlyArray<string>) => {
    const process = startProcess({ name, command, args, logFile: join(logs, `${name}.log`) })
    processes.push(process)
    return process
  }

  try {
    const certs: Certificates = makeCertificates(dir)
    const ports = new Set<number>()
    const [etcdClientPort, etcdPeerPort, apiPort, kcmPort, schedulerPort, kwokMasterPort, kwokWorkerPort] = await Promise.all(
      Array.from({ length: 7 }, () => freePort(ports))
    ) as [number, number, number, number, number, number, number]
    step("certificates")

    // etcd: no fsync (a throwaway store), data in the temp folder.
    const etcd = spawn("etcd", bin("etcd"), [
      "--name=cluster-tests",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=cluster-tests=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn"
    ])
    await eventually(() => etcdHealthy(etcdClientPort).then((ok) => (ok ? true : undefined)), {
      what: "etcd to answer /health",
      timeoutMillis: startTimeoutMillis,
      watch: [etcd]
    })
    step("etcdReady")

    const adminToken = randomBytes(24).toString("hex")
    const tokenFile = join(dir, "tokens.csv")
    writeFileSync(tokenFile, `${adminToken},cluster-admin,cluster-admin,"system:masters"\n`, { mode: 0o600 })
    const server = `https://127.0.0.1:${apiPort}`
    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdClientPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "apiserver")}`,
      `--tls-cert-file=${certs.servingCert}`,
      `--tls-private-key-file=${certs.servingKey}`,
      `--token-auth-file=${tokenFile}`,
      // Client certificates signed by the test CA authenticate too (the kubeconfig loader's tests).
      `--client-ca-file=${certs.caCert}`,
      "--authorization-mode=RBAC",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${certs.serviceAccountKey}`,
      `--service-account-signing-key-file=${certs.serviceAccountKey}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      // No ServiceAccount admission (Pods need no tokens here); no TaintNodesByCondition: its
      // not-ready taint is lifted by the node lifecycle controller, which would also mark
      // kwok's nodes (no heartbeats) NotReady, so neither runs.
      "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
      "--allow-privileged=true",
      "--endpoint-reconciler-type=none",
      "--kubelet-preferred-address-types=InternalIP,Hostname",
      "--profiling=false"
    ]
    const apiserver = spawn("kube-apiserver", bin("kube-apiserver"), apiserverArgs)
    admin = makeKubeHttp({ server, token: adminToken, ca: certs.caPem })
    const client = admin
    await eventually(
      async () => {
        const ready = await client.raw("GET", "/readyz")
        if (ready.status !== 200) throw new Error(`/readyz answered ${ready.status}: ${ready.body.slice(0, 300)}`)
        return client.get("/api/v1/namespaces/default")
      },
      { what: "kube-apiserver /readyz and the default namespace", timeoutMillis: startTimeoutMillis, intervalMillis: 250, watch: [etcd, apiserver] }
    )
    step("apiserverReady")

    const adminKubeconfig = writeKubeconfig(join(dir, "admin.kubeconfig"), { server, caPem: certs.caPem, token: adminToken, user: "cluster-admin" })
    const controllerManager = spawn("kube-controller-manager", bin("kube-controller-manager"), [
      `--kubeconfig=${adminKubeconfig}`,
      `--authentication-kubeconfig=${adminKubeconfig}`,
      `--authorization-kubeconfig=${adminKubeconfig}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${kcmPort}`,
      `--cert-dir=${join(dir, "kube-controller-manager")}`,
      [
        "--controllers=job-controller",
        // Deployments roll out (pasted `kubectl rollout status`, `helm install --wait`).
        "deployment-controller",
        "replicaset-controller",
        "garbage-collector-controller",
        "namespace-controller",
        "ttl-after-finished-controller",
        "serviceaccount-controller",
        "serviceaccount-token-controller",
        "root-ca-certificate-publisher-controller"
      ].join(","),
      `--root-ca-file=${certs.caCert}`,
      `--service-account-private-key-file=${certs.serviceAccountKey}`
    ])
    const scheduler = spawn("kube-scheduler", bin("kube-scheduler"), [
      `--kubeconfig=${adminKubeconfig}`,
      `--authentication-kubeconfig=${adminKubeconfig}`,
      `--authorization-kubeconfig=${adminKubeconfig}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${schedulerPort}`,
      `--cert-dir=${join(dir, "kube-scheduler")}`
    ])

    // kwok: one process per pool of nodes, each with its own log files.
    const logContainers = options.logContainers ?? ["kube-bench"]
    const podLogFiles = { master: {} as Record<string, string>, workers: {} as Record<string, string> }
    const kwok = (pool: "master" | "workers", port: number, selector: string, cidr: string) => {
      const files: Record<string, string> = {}
      for (const container of [...logContainers, "*"]) {
        const file = join(logs, `pods-${pool}-${container === "*" ? "default" : container}.log`)
        writeCriLog(file, [`no log written for ${container === "*" ? "this container" : container} on the ${pool} pool yet`])
        files[container] = file
      }
      podLogFiles[pool] = files
      const config = join(dir, `kwok-${pool}.yaml`)
      writeFileSync(config, kwokConfigText({ stagesDir: join(options.cacheDir, "kwok-stages"), logFiles: files, heldJobMarker, releaseLabel }))
      return spawn(`kwok-${pool}`, bin("kwok"), [
        `--kubeconfig=${adminKubeconfig}`,
        `--config=${config}`,
        `--manage-nodes-with-label-selector=${selector}`,
        "--node-ip=127.0.0.1",
        `--node-port=${port}`,
        `--server-address=127.0.0.1:${port}`,
        `--tls-cert-file=${certs.servingCert}`,
        `--tls-private-key-file=${certs.servingKey}`,
        `--cidr=${cidr}`
      ])
    }
    const kwokMaster = kwok("master", kwokMasterPort, "kubernetes.io/role=master", "10.244.0.0/24")
    const kwokWorkers = kwok("workers", kwokWorkerPort, "kubernetes.io/role!=master", "10.244.1.0/24")
    const components = [etcd, apiserver, controllerManager, scheduler, kwokMaster, kwokWorkers]

    const workers = Array.from({ length: options.workers ?? 2 }, (_, index) => `kwok-worker-${index}`)
    await client.create("/api/v1/nodes", nodeObject(masterNodeName, "master"))
    for (const name of workers) await client.create("/api/v1/nodes", nodeObject(name, "worker"))
    const nodeNames = [masterNodeName, ...workers]
    await eventually(
      async () => {
        const nodes = await client.list("/api/v1/nodes")
        const ready = nodes.filter(isReady).map((node) => node.metadata.name as string)
        if (!nodeNames.every((name) => ready.includes(name))) throw new Error(`Ready so far: ${ready.join(", ") || "none"}`)
        return true
      },
      { what: `nodes ${nodeNames.join(", ")} to become Ready (kwok)`, timeoutMillis: startTimeoutMillis, watch: components }
    )
    step("nodesReady")

    await eventually(() => healthz(kcmPort).then((ok) => (ok ? true : undefined)), {
      what: "kube-controller-manager /healthz",
      timeoutMillis: startTimeoutMillis,
      watch: components
    })
    await eventually(() => healthz(schedulerPort).then((ok) => (ok ? true : undefined)), {
      what: "kube-scheduler /healthz",
      timeoutMillis: startTimeoutMillis,
      watch: components
    })
    // The service account controller is the first to act: its default ServiceAccount proves it runs.
    await eventually(() => client.get("/api/v1/namespaces/default/serviceaccounts/default"), {
      what: "kube-controller-manager to create the default ServiceAccount",
      timeoutMillis: startTimeoutMillis,
      watch: components
    })
    step("controllersReady")
    timings.total = (Date.now() - started) / 1000

    const info: ClusterInfo = {
      server,
      caPem: certs.caPem,
      adminToken,
      adminKubeconfig,
      dir,
      cacheDir: options.cacheDir,
      nodes: { master: masterNodeName, workers },
      podLogFiles,
      heldJobMarker,
      releaseLabel,
      timings,
      apiserver: { command: bin("kube-apiserver"), args: apiserverArgs, port: apiPort }
    }
    return { info, admin: client, processes, stop }
  } catch (error) {
    await stop().catch(() => {})
    if (error instanceof Error) error.message += `\n(the control plane did not start; its folder ${dir} was ${options.keepDir ? "kept" : "removed"})`
    throw error
  }
}
