import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as tls from "node:tls"
import { type Credentials, makeCredentials, makeTokenFileSource } from "./Credentials.ts"
import { execConfigProblem, makeExecCredentialSource } from "./ExecCredentialPlugin.ts"
import { KubeConfigError } from "./KubeConfigError.ts"
import {
  type Kubeconfig,
  type KubeconfigCluster,
  type KubeconfigUser,
  mergeKubeconfigs,
  parseKubeconfig
} from "./KubeconfigFile.ts"

export interface KubeConfigOptions {
  /** `--kubeconfig`: this file only, ignoring KUBECONFIG and the in-cluster service account. */
  readonly kubeconfig?: string | undefined
  /** Use this context instead of the kubeconfig's `current-context`. */
  readonly context?: string | undefined
}

/** Where the loader looks besides the options; tests point it elsewhere. */
export interface KubeConfigEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>
  /** The Pod's mounted ServiceAccount (token, ca.crt). */
  readonly serviceAccountDir: string
  /** How long a token file's content is used before it is read again. */
  readonly tokenFileRefreshMillis: number
}

export const defaultKubeConfigEnvironment = (): KubeConfigEnvironment => ({
  env: process.env,
  serviceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
  tokenFileRefreshMillis: 60_000
})

/** TLS options of every request to the API server (the client certificate comes with the credentials). */
export interface ServerTls {
  readonly ca?: Buffer | undefined
  readonly servername?: string | undefined
  readonly rejectUnauthorized?: boolean | undefined
}

/** A configuration that was loaded and checked once, with the API server's URL. */
export interface LoadedKubeConfig {
  readonly server: URL
  /** Names where the configuration came from, for messages. */
  readonly source: string
  readonly tls: ServerTls
  /** `proxy-url` of the cluster (http or https proxies). */
  readonly proxy?: URL | undefined
  readonly credentials: Credentials
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** The exec plugin that replaces each legacy auth-provider (removed from client-go in 1.26), for the refusal message. */
const authProviderReplacements: Readonly<Record<string, string>> = {
  gcp: "gke-gcloud-auth-plugin (https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl)",
  azure: "kubelogin (https://github.com/Azure/kubelogin: `kubelogin convert-kubeconfig`)",
  oidc: "kubelogin (https://github.com/int128/kubelogin, the `kubectl oidc-login` plugin)"
}

const authProviderProblem = (user: KubeconfigUser, provider: string) =>
  `user "${user.name}" uses auth-provider "${provider}", which Kubernetes clients no longer support: ` +
  `use an exec credential plugin instead${authProviderReplacements[provider] === undefined ? "" : `: ${authProviderReplacements[provider]}`}`

/** Which configuration applies: controller-runtime's precedence. */
const locate = (
  options: KubeConfigOptions,
  environment: KubeConfigEnvironment
): { readonly source: string; readonly files: ReadonlyArray<string> } | { readonly source: string; readonly inCluster: true } | KubeConfigError => {
  const env = environment.env
  if (options.kubeconfig !== undefined && options.kubeconfig !== "") {
    const file = path.resolve(options.kubeconfig)
    return { source: `kubeconfig ${file}`, files: [file] }
  }
  if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== "") {
    const listed = env.KUBECONFIG.split(path.delimiter).filter((file) => file !== "").map((file) => path.resolve(file))
    // One file (the chart's mounted Secret): a missing one is a mistake worth the OS's own error.
    if (listed.length === 1) return { source: `kubeconfig ${listed[0]}`, files: listed }
    const source = `KUBECONFIG ${listed.join(path.delimiter)}`
    // Like kubectl, files of the list that do not exist are skipped.
    const files = listed.filter((file) => fs.existsSync(file))
    return files.length === 0
      ? new KubeConfigError({ source, message: `${source}: none of these kubeconfig files exists` })
      : { source, files }
  }
  if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== "") {
    return { source: "in-cluster service account", inCluster: true }
  }
  const file = path.join(env.HOME ?? os.homedir(), ".kube", "config")
  if (!fs.existsSync(file)) {
    return new KubeConfigError({
      source: `kubeconfig ${file}`,
      message: `no Kubernetes configuration found: ${file} does not exist, KUBECONFIG is not set and this is not a Pod (pass --kubeconfig)`
    })
  }
  return { source: `kubeconfig ${file}`, files: [file] }
}

/** The Pod's ServiceAccount as a one-context kubeconfig (client-go's InClusterConfig). */
const inClusterConfig = (environment: KubeConfigEnvironment): Kubeconfig => {
  const host = environment.env.KUBERNETES_SERVICE_HOST!
  const port = environment.env.KUBERNETES_SERVICE_PORT
  if (port === undefined || port === "") throw new Error("KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not")
  const cluster: KubeconfigCluster = {
    name: "in-cluster",
    server: `https://${net.isIPv6(host) ? `[${host}]` : host}:${port}`,
    certificateAuthority: path.join(environment.serviceAccountDir, "ca.crt"),
    insecureSkipTlsVerify: false
  }
  const user: KubeconfigUser = { name: "in-cluster", tokenFile: path.join(environment.serviceAccountDir, "token"), impersonateGroups: [] }
  return {
    clusters: new Map([[cluster.name, cluster]]),
    users: new Map([[user.name, user]]),
    contexts: new Map([["in-cluster", { name: "in-cluster", cluster: cluster.name, user: user.name }]]),
    currentContext: "in-cluster"
  }
}

/** Reads `file`, or decodes base64 `data`; the message names the file or the field. */
const material = (file: string | undefined, data: string | undefined, field: string): Buffer | undefined => {
  if (file !== undefined && data !== undefined) throw new Error(`${field} and ${field}-data are both set: keep one`)
  if (file !== undefined) {
    try {
      return fs.readFileSync(file)
    } catch (error) {
      throw new Error(`${field} ${file}: ${reason(error)}`)
    }
  }
  return data === undefined ? undefined : Buffer.from(data, "base64")
}

/**
 * Loads the configuration with controller-runtime's precedence: `--kubeconfig`, then the
 * KUBECONFIG variable (several files: the existing ones, merged as kubectl does: the first file that
 * defines a name wins), then the in-cluster service account when running in a Pod
 * (KUBERNETES_SERVICE_HOST set), then ~/.kube/config. Everything that would otherwise only
 * fail on the first request (unreadable CA, client certificate or token files, a certificate
 * that does not match its key, a failing exec plugin, `http://` without
 * insecure-skip-tls-verify, legacy auth-provider plugins) fails here, naming the source.
 *
 * The loader is the project's own rather than @kubernetes/client-node's KubeConfig: that
 * class's module loads the library's whole generated API (bench/cluster.ts: idle RSS 229-242
 * -> 176-179 MiB, 175-179 -> 150-153 MiB with the image's V8 flag; 0.5-0.8 s less CPU at
 * start) for a few hundred lines of parsing.
 */
export const loadKubeConfig = (
  options: KubeConfigOptions,
  environment: KubeConfigEnvironment = defaultKubeConfigEnvironment()
): Effect.Effect<LoadedKubeConfig, KubeConfigError> =>
  Effect.gen(function*() {
    const located = locate(options, environment)
    if (located instanceof KubeConfigError) return yield* located
    const { source } = located
    const fail = (message: string) => new KubeConfigError({ source, message: `${source}: ${message}` })
    const attempt = <A>(what: string, thunk: () => A) =>
      Effect.try({ try: thunk, catch: (error) => new KubeConfigError({ source, message: `${what}: ${reason(error)}` }) })

    let config: Kubeconfig | undefined
    if ("inCluster" in located) {
      config = yield* attempt(source, () => inClusterConfig(environment))
    } else {
      for (const file of located.files) {
        const parsed = yield* attempt(`kubeconfig ${file}`, () =>
          parseKubeconfig(fs.readFileSync(file, "utf8"), path.dirname(file))
        )
        config = config === undefined ? parsed : mergeKubeconfigs(config, parsed)
      }
    }
    const loaded = config!

    const contextName = options.context !== undefined && options.context !== "" ? options.context : loaded.currentContext
    const context = contextName === undefined ? undefined : loaded.contexts.get(contextName)
    if (context === undefined) {
      return yield* fail(
        contextName === undefined
          ? "no current-context set"
          : options.context === contextName
          ? `context "${contextName}" not found`
          : `current context "${contextName}" not found`
      )
    }
    const cluster = loaded.clusters.get(context.cluster)
    if (cluster === undefined) return yield* fail(`context "${contextName}" names a cluster that is not defined`)
    // A context without a user is anonymous, as with kubectl; one naming a missing user is a mistake.
    const user: KubeconfigUser = context.user === undefined
      ? { name: "", impersonateGroups: [] }
      : loaded.users.get(context.user) ?? (yield* fail(`context "${contextName}" names a user that is not defined`))

    const server = yield* Effect.try({
      try: () => new URL(cluster.server),
      catch: () => fail(`cluster "${cluster.name}" has an invalid server URL "${cluster.server}"`)
    })
    if (server.protocol !== "https:" && server.protocol !== "http:") {
      return yield* fail(`cluster "${cluster.name}" server "${cluster.server}" is neither https nor http`)
    }
    if (server.protocol === "http:" && !cluster.insecureSkipTlsVerify) {
      return yield* fail(
        `cluster "${cluster.name}" server "${cluster.server}" is plain http: set insecure-skip-tls-verify: true to allow an unencrypted connection`
      )
    }
    const proxy = cluster.proxyUrl === undefined ? undefined : yield* Effect.try({
      try: () => new URL(cluster.proxyUrl!),
      catch: () => fail(`cluster "${cluster.name}" has an invalid proxy-url "${cluster.proxyUrl}"`)
    })
    if (proxy !== undefined && proxy.protocol !== "http:" && proxy.protocol !== "https:") {
      return yield* fail(`cluster "${cluster.name}" proxy-url "${cluster.proxyUrl}": only http:// and https:// proxies are supported`)
    }

    const ca = yield* attempt(source, () =>
      material(cluster.certificateAuthority, cluster.certificateAuthorityData, "certificate-authority")
    )
    if (ca !== undefined && cluster.insecureSkipTlsVerify) {
      return yield* fail(`cluster "${cluster.name}" sets both a certificate authority and insecure-skip-tls-verify: keep one`)
    }
    if (user.authProvider !== undefined) return yield* fail(authProviderProblem(user, user.authProvider))
    if ((user.token !== undefined || user.tokenFile !== undefined) && user.username !== undefined) {
      return yield* fail(`user "${user.name}" sets both a token and a username/password: keep one`)
    }
    const cert = yield* attempt(source, () => material(user.clientCertificate, user.clientCertificateData, "client-certificate"))
    const key = yield* attempt(source, () => material(user.clientKey, user.clientKeyData, "client-key"))
    if ((cert === undefined) !== (key === undefined)) {
      return yield* fail(`user "${user.name}" sets a client certificate without its key or a key without its certificate`)
    }
    if (user.exec !== undefined) {
      const problem = execConfigProblem(user.exec)
      if (problem !== undefined) return yield* fail(`user "${user.name}": ${problem}`)
    }

    const staticHeaders: Record<string, string | ReadonlyArray<string>> = {}
    if (user.username !== undefined) {
      staticHeaders.Authorization = `Basic ${Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")}`
    }
    if (user.impersonate !== undefined) staticHeaders["Impersonate-User"] = user.impersonate
    if (user.impersonateUid !== undefined) staticHeaders["Impersonate-Uid"] = user.impersonateUid
    // node:http sends an array as repeated headers, one per impersonated group.
    if (user.impersonateGroups.length > 0) staticHeaders["Impersonate-Group"] = user.impersonateGroups
    const credentials = makeCredentials({
      staticHeaders,
      token: user.token,
      tokenFile: user.tokenFile === undefined ? undefined : makeTokenFileSource(user.tokenFile, environment.tokenFileRefreshMillis),
      cert,
      key,
      exec: user.exec === undefined ? undefined : makeExecCredentialSource(user.exec, cluster, ca)
    })
    const serverTls: ServerTls = {
      ca,
      servername: cluster.tlsServerName,
      rejectUnauthorized: cluster.insecureSkipTlsVerify ? false : undefined
    }

    // Read the token file and run the exec plugin once now, and let TLS check the certificates
    // and that the client certificate matches its key.
    const first = yield* Effect.tryPromise({
      try: () => credentials.current(),
      catch: (error) => fail(user.name === "" ? reason(error) : `user "${user.name}": ${reason(error)}`)
    })
    yield* attempt(source, () => {
      try {
        tls.createSecureContext({ ca: serverTls.ca, cert: first.cert, key: first.key })
      } catch (error) {
        throw new Error(`the certificate authority or client certificate/key of context "${contextName}" is not usable: ${reason(error)}`)
      }
    })
    return { server, source, tls: serverTls, proxy, credentials }
  })
