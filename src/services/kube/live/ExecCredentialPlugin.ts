import { execFile } from "node:child_process"
import type { ExecPluginConfig, KubeconfigCluster } from "./KubeconfigFile.ts"

/**
 * A kubeconfig `exec` credential plugin (client.authentication.k8s.io v1 or v1beta1
 * ExecCredential), run the way client-go runs it: the kubeconfig's args and env added to the
 * operator's environment, KUBERNETES_EXEC_INFO describing the request (never interactive: the
 * operator has no terminal), the answer's token or client certificate cached until its
 * expirationTimestamp, and dropped when the API server answers 401.
 */

export const execApiVersions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]

/** What the plugin returned. */
export interface ExecCredential {
  readonly token?: string | undefined
  readonly clientCertificateData?: string | undefined
  readonly clientKeyData?: string | undefined
  /** Epoch millis; undefined: valid until the API server refuses it. */
  readonly expiresAt?: number | undefined
}

export interface ExecCredentialSource {
  /** The cached credential, or the plugin's new one when there is none or it expired. */
  readonly get: () => Promise<ExecCredential>
  /** Forgets the cached credential (after a 401). */
  readonly forget: () => void
}

/** A plugin that does not answer within this time is killed: a request waiting for it would hang. */
const pluginTimeoutMillis = 60_000

/** Checks the plugin's configuration before it is ever run. */
export const execConfigProblem = (exec: ExecPluginConfig): string | undefined => {
  if (!execApiVersions.includes(exec.apiVersion)) {
    return `exec plugin apiVersion "${exec.apiVersion}" is not supported (use ${execApiVersions.join(" or ")})`
  }
  const mode = exec.interactiveMode ?? (exec.apiVersion.endsWith("/v1") ? undefined : "IfAvailable")
  if (mode === undefined) return `exec plugin of apiVersion ${exec.apiVersion} needs interactiveMode (Never or IfAvailable)`
  if (mode === "Always") return "exec plugin needs interactiveMode Always, but the operator has no terminal (use Never or IfAvailable)"
  if (mode !== "Never" && mode !== "IfAvailable") return `exec plugin interactiveMode "${mode}" is not Never, IfAvailable or Always`
  return undefined
}

/** KUBERNETES_EXEC_INFO: an ExecCredential whose spec tells the plugin about the request. */
const execInfo = (exec: ExecPluginConfig, cluster: KubeconfigCluster, caPem: Buffer | undefined) =>
  JSON.stringify({
    apiVersion: exec.apiVersion,
    kind: "ExecCredential",
    spec: {
      interactive: false,
      ...(exec.provideClusterInfo
        ? {
          cluster: {
            server: cluster.server,
            ...(cluster.tlsServerName === undefined ? {} : { "tls-server-name": cluster.tlsServerName }),
            ...(cluster.insecureSkipTlsVerify ? { "insecure-skip-tls-verify": true } : {}),
            ...(caPem === undefined ? {} : { "certificate-authority-data": caPem.toString("base64") }),
            ...(cluster.proxyUrl === undefined ? {} : { "proxy-url": cluster.proxyUrl }),
            ...(cluster.execExtension === undefined ? {} : { config: cluster.execExtension })
          }
        }
        : {})
    }
  })

const decode = (exec: ExecPluginConfig, stdout: string): ExecCredential => {
  let answer: unknown
  try {
    answer = JSON.parse(stdout)
  } catch {
    throw new Error(`its output is not JSON: ${JSON.stringify(stdout.slice(0, 200))}`)
  }
  const object = (typeof answer === "object" && answer !== null ? answer : {}) as Record<string, unknown>
  if (object.kind !== "ExecCredential" || object.apiVersion !== exec.apiVersion) {
    throw new Error(`it printed ${String(object.apiVersion)} ${String(object.kind)}, not ${exec.apiVersion} ExecCredential`)
  }
  const status = (typeof object.status === "object" && object.status !== null ? object.status : {}) as Record<string, unknown>
  const text = (key: string) => (typeof status[key] === "string" && status[key] !== "" ? status[key] : undefined)
  const credential = {
    token: text("token"),
    clientCertificateData: text("clientCertificateData"),
    clientKeyData: text("clientKeyData"),
    expiresAt: text("expirationTimestamp") === undefined ? undefined : Date.parse(text("expirationTimestamp")!)
  }
  if (Number.isNaN(credential.expiresAt)) throw new Error(`its expirationTimestamp "${text("expirationTimestamp")}" is not a time`)
  if ((credential.clientCertificateData === undefined) !== (credential.clientKeyData === undefined)) {
    throw new Error("it returned only one of clientCertificateData and clientKeyData")
  }
  if (credential.token === undefined && credential.clientCertificateData === undefined) {
    throw new Error("it returned neither a token nor a client certificate")
  }
  return credential
}

const run = (exec: ExecPluginConfig, info: string): Promise<ExecCredential> =>
  new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: info }
    for (const variable of exec.env) env[variable.name] = variable.value
    const child = execFile(
      exec.command,
      [...exec.args],
      { env, timeout: pluginTimeoutMillis, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        const what = `exec plugin "${exec.command}"`
        if (error !== null) {
          const code = (error as NodeJS.ErrnoException).code
          const hint = exec.installHint === undefined ? "" : ` (${exec.installHint.trim()})`
          if (code === "ENOENT") return reject(new Error(`${what} was not found${hint}`))
          const detail = stderr.trim() === "" ? error.message : stderr.trim().slice(-500)
          return reject(new Error(`${what} failed: ${detail}`))
        }
        try {
          resolve(decode(exec, stdout))
        } catch (problem) {
          reject(new Error(`${what}: ${(problem as Error).message}`))
        }
      }
    )
    child.stdin?.end()
  })

/** One plugin run at a time; concurrent requests share it. */
export const makeExecCredentialSource = (
  exec: ExecPluginConfig,
  cluster: KubeconfigCluster,
  caPem: Buffer | undefined
): ExecCredentialSource => {
  const info = execInfo(exec, cluster, caPem)
  let cached: Promise<ExecCredential> | undefined
  // Runs the plugin unless another request already replaced `stale` (expired or failed) with a new run.
  const replace = (stale: Promise<ExecCredential> | undefined) => {
    if (cached === stale) cached = run(exec, info)
    return cached!
  }
  const fresh = (credential: ExecCredential) => credential.expiresAt === undefined || credential.expiresAt > Date.now()
  return {
    get: () => {
      const current = cached
      if (current === undefined) return replace(undefined)
      // A failed run is not kept: the next request runs the plugin again.
      return current.then((credential) => (fresh(credential) ? credential : replace(current)), () => replace(current))
    },
    forget: () => {
      cached = undefined
    }
  }
}
