import { KubeConfig } from "@kubernetes/client-node"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { KubeConfigError } from "./KubeConfigError.ts"

export interface KubeConfigOptions {
  /** `--kubeconfig`: this file only, ignoring KUBECONFIG and the in-cluster service account. */
  readonly kubeconfig?: string | undefined
  /** Use this context instead of the kubeconfig's `current-context`. */
  readonly context?: string | undefined
}

/** A KubeConfig that was loaded, checked and applied once, with the API server's URL. */
export interface LoadedKubeConfig {
  readonly config: KubeConfig
  readonly server: URL
  /** Names where the configuration came from, for messages. */
  readonly source: string
  /** The cluster goes through a proxy: keep client-node's proxy agent instead of our pooled one. */
  readonly usesProxy: boolean
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Loads the configuration with controller-runtime's precedence: `--kubeconfig`, then the
 * KUBECONFIG variable (existing files only, the first one's values win), then the in-cluster service
 * account when running in a Pod (KUBERNETES_SERVICE_HOST set), then ~/.kube/config.
 * Everything that would otherwise only fail on the first request (unreadable CA, client
 * certificate or token files, a broken exec plugin, `http://` without
 * insecure-skip-tls-verify) is checked here by applying the config once.
 */
export const loadKubeConfig = (
  options: KubeConfigOptions,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<LoadedKubeConfig, KubeConfigError> =>
  Effect.gen(function*() {
    const config = new KubeConfig()
    let source: string
    const attempt = <A>(what: string, thunk: () => A) =>
      Effect.try({
        try: thunk,
        catch: (error) => new KubeConfigError({ source: what, message: `${what}: ${reason(error)}` })
      })

    if (options.kubeconfig !== undefined && options.kubeconfig !== "") {
      const file = path.resolve(options.kubeconfig)
      source = `kubeconfig ${file}`
      yield* attempt(source, () => config.loadFromFile(file))
    } else if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== "") {
      const listed = env.KUBECONFIG.split(path.delimiter).filter((file) => file !== "").map((file) => path.resolve(file))
      source = `KUBECONFIG ${listed.join(path.delimiter)}`
      // Like kubectl, files of the list that do not exist are skipped; the first existing one leads.
      const files = listed.filter((file) => fs.existsSync(file))
      if (files.length === 0) {
        return yield* new KubeConfigError({ source, message: `${source}: none of these kubeconfig files exists` })
      }
      for (const [index, file] of files.entries()) {
        yield* attempt(`kubeconfig ${file}`, () => {
          if (index === 0) return config.loadFromFile(file)
          const next = new KubeConfig()
          next.loadFromFile(file)
          // Like kubectl: the first file that sets a value wins.
          config.mergeConfig(next, true)
        })
      }
    } else if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== "") {
      source = "in-cluster service account"
      yield* attempt(source, () => config.loadFromCluster())
    } else {
      const file = path.join(env.HOME ?? os.homedir(), ".kube", "config")
      source = `kubeconfig ${file}`
      if (!fs.existsSync(file)) {
        return yield* new KubeConfigError({
          source,
          message: `no Kubernetes configuration found: ${file} does not exist, KUBECONFIG is not set and this is not a Pod (pass --kubeconfig)`
        })
      }
      yield* attempt(source, () => config.loadFromFile(file))
    }

    const fail = (message: string) => new KubeConfigError({ source, message: `${source}: ${message}` })
    if (options.context !== undefined && options.context !== "") {
      if (config.getContextObject(options.context) === null) {
        return yield* fail(`context "${options.context}" not found`)
      }
      config.setCurrentContext(options.context)
    }
    const contextName = config.getCurrentContext()
    if (!contextName || config.getContextObject(contextName) === null) {
      return yield* fail(contextName ? `current context "${contextName}" not found` : "no current-context set")
    }
    const cluster = config.getCurrentCluster()
    if (cluster === null) return yield* fail(`context "${contextName}" names a cluster that is not defined`)
    if (config.getCurrentUser() === null) return yield* fail(`context "${contextName}" names a user that is not defined`)
    const server = yield* Effect.try({
      try: () => new URL(cluster.server),
      catch: () => fail(`cluster "${cluster.name}" has an invalid server URL "${cluster.server}"`)
    })
    if (server.protocol !== "https:" && server.protocol !== "http:") {
      return yield* fail(`cluster "${cluster.name}" server "${cluster.server}" is neither https nor http`)
    }
    yield* Effect.tryPromise({
      try: () => config.applyToHTTPSOptions({}),
      catch: (error) => fail(reason(error))
    })
    return { config, server, source, usesProxy: cluster.proxyUrl !== undefined && cluster.proxyUrl !== "" }
  })
