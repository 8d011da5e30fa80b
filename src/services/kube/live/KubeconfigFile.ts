import { load as loadYaml } from "js-yaml"
import * as path from "node:path"

/**
 * The parts of a kubeconfig file (clientcmd's `Config`) the operator uses, read with js-yaml
 * and checked entry by entry. Paths are made absolute against the directory of the file that
 * names them (as kubectl does), so files can be merged.
 */

export interface KubeconfigCluster {
  readonly name: string
  readonly server: string
  readonly certificateAuthority?: string | undefined
  /** Base64 of PEM, as written in the file. */
  readonly certificateAuthorityData?: string | undefined
  readonly insecureSkipTlsVerify: boolean
  readonly tlsServerName?: string | undefined
  readonly proxyUrl?: string | undefined
  /** `extensions[name=client.authentication.k8s.io/exec]`: handed to exec plugins with provideClusterInfo. */
  readonly execExtension?: unknown
}

export interface ExecPluginConfig {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: ReadonlyArray<{ readonly name: string; readonly value: string }>
  readonly apiVersion: string
  readonly installHint?: string | undefined
  readonly provideClusterInfo: boolean
  readonly interactiveMode?: string | undefined
}

export interface KubeconfigUser {
  readonly name: string
  readonly token?: string | undefined
  readonly tokenFile?: string | undefined
  readonly clientCertificate?: string | undefined
  readonly clientCertificateData?: string | undefined
  readonly clientKey?: string | undefined
  readonly clientKeyData?: string | undefined
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly exec?: ExecPluginConfig | undefined
  /** Name of a legacy `auth-provider` (gcp, azure, oidc): refused when the user is used. */
  readonly authProvider?: string | undefined
  readonly impersonate?: string | undefined
  readonly impersonateUid?: string | undefined
  readonly impersonateGroups: ReadonlyArray<string>
}

export interface KubeconfigContext {
  readonly name: string
  readonly cluster: string
  readonly user?: string | undefined
}

export interface Kubeconfig {
  readonly clusters: ReadonlyMap<string, KubeconfigCluster>
  readonly users: ReadonlyMap<string, KubeconfigUser>
  readonly contexts: ReadonlyMap<string, KubeconfigContext>
  readonly currentContext?: string | undefined
}

/** What is wrong with a kubeconfig's text; the loader adds the file's name. */
export class KubeconfigProblem extends Error {}

type Fields = Readonly<Record<string, unknown>>

const isFields = (value: unknown): value is Fields => typeof value === "object" && value !== null && !Array.isArray(value)

/** Reads fields of one entry, naming the entry (`users[2].user.token`) in every problem. */
const fieldsOf = (value: unknown, where: string) => {
  if (value !== undefined && value !== null && !isFields(value)) throw new KubeconfigProblem(`${where} is not a mapping`)
  const fields: Fields = isFields(value) ? value : {}
  const string = (key: string): string | undefined => {
    const field = fields[key]
    if (field === undefined || field === null || field === "") return undefined
    if (typeof field !== "string") throw new KubeconfigProblem(`${where}.${key} is not a string`)
    return field
  }
  const boolean = (key: string): boolean => {
    const field = fields[key]
    if (field === undefined || field === null) return false
    if (typeof field !== "boolean") throw new KubeconfigProblem(`${where}.${key} is not true or false`)
    return field
  }
  const strings = (key: string): ReadonlyArray<string> => {
    const field = fields[key]
    if (field === undefined || field === null) return []
    if (!Array.isArray(field) || !field.every((item) => typeof item === "string")) {
      throw new KubeconfigProblem(`${where}.${key} is not a list of strings`)
    }
    return field
  }
  return { fields, string, boolean, strings }
}

const entries = (document: Fields, key: string, inner: string) => {
  const list = document[key]
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw new KubeconfigProblem(`${key} is not a list`)
  return list.map((item: unknown, index) => {
    const where = `${key}[${index}]`
    const entry = fieldsOf(item, where)
    const name = entry.string("name")
    if (name === undefined) throw new KubeconfigProblem(`${where}.name is missing`)
    if (entry.fields[inner] === undefined || entry.fields[inner] === null) {
      throw new KubeconfigProblem(`${where}.${inner} is missing`)
    }
    return { name, where: `${where}.${inner}`, body: entry.fields[inner] }
  })
}

/** Keeps the first entry of each name: a file's later duplicates are ignored, as kubectl does. */
const byName = <A extends { readonly name: string }>(list: ReadonlyArray<A>): Map<string, A> => {
  const map = new Map<string, A>()
  for (const item of list) if (!map.has(item.name)) map.set(item.name, item)
  return map
}

const execExtensionName = "client.authentication.k8s.io/exec"

const parseCluster = (name: string, where: string, body: unknown, resolve: (file: string) => string): KubeconfigCluster => {
  const cluster = fieldsOf(body, where)
  const server = cluster.string("server")
  if (server === undefined) throw new KubeconfigProblem(`${where}.server is missing`)
  const extensions = cluster.fields.extensions
  const execExtension = Array.isArray(extensions)
    ? (extensions as Array<unknown>).find((item) => isFields(item) && item.name === execExtensionName)
    : undefined
  const certificateAuthority = cluster.string("certificate-authority")
  return {
    name,
    server,
    certificateAuthority: certificateAuthority === undefined ? undefined : resolve(certificateAuthority),
    certificateAuthorityData: cluster.string("certificate-authority-data"),
    insecureSkipTlsVerify: cluster.boolean("insecure-skip-tls-verify"),
    tlsServerName: cluster.string("tls-server-name"),
    proxyUrl: cluster.string("proxy-url"),
    execExtension: isFields(execExtension) ? execExtension.extension : undefined
  }
}

const parseExec = (where: string, body: unknown, resolve: (file: string) => string): ExecPluginConfig => {
  const exec = fieldsOf(body, where)
  const command = exec.string("command")
  if (command === undefined) throw new KubeconfigProblem(`${where}.command is missing`)
  const apiVersion = exec.string("apiVersion")
  if (apiVersion === undefined) throw new KubeconfigProblem(`${where}.apiVersion is missing`)
  const env = exec.fields.env
  if (env !== undefined && env !== null && !Array.isArray(env)) throw new KubeconfigProblem(`${where}.env is not a list`)
  return {
    // Like kubectl: a command with a path separator is relative to the kubeconfig; a bare name is looked up on PATH.
    command: command.includes("/") ? resolve(command) : command,
    args: exec.strings("args"),
    env: ((env ?? []) as Array<unknown>).map((item, index) => {
      const variable = fieldsOf(item, `${where}.env[${index}]`)
      const name = variable.string("name")
      if (name === undefined) throw new KubeconfigProblem(`${where}.env[${index}].name is missing`)
      return { name, value: variable.string("value") ?? "" }
    }),
    apiVersion,
    installHint: exec.string("installHint"),
    provideClusterInfo: exec.boolean("provideClusterInfo"),
    interactiveMode: exec.string("interactiveMode")
  }
}

const parseUser = (name: string, where: string, body: unknown, resolve: (file: string) => string): KubeconfigUser => {
  const user = fieldsOf(body, where)
  const file = (key: string) => {
    const value = user.string(key)
    return value === undefined ? undefined : resolve(value)
  }
  const authProvider = user.fields["auth-provider"]
  return {
    name,
    token: user.string("token"),
    // kubectl writes `tokenFile`; `token-file` is what client-node read.
    tokenFile: file("tokenFile") ?? file("token-file"),
    clientCertificate: file("client-certificate"),
    clientCertificateData: user.string("client-certificate-data"),
    clientKey: file("client-key"),
    clientKeyData: user.string("client-key-data"),
    username: user.string("username"),
    password: user.string("password"),
    exec: user.fields.exec === undefined || user.fields.exec === null ? undefined : parseExec(`${where}.exec`, user.fields.exec, resolve),
    authProvider: isFields(authProvider) ? String(authProvider.name ?? "unnamed") : undefined,
    impersonate: user.string("as"),
    impersonateUid: user.string("as-uid"),
    impersonateGroups: user.strings("as-groups")
  }
}

/** Parses one kubeconfig file's text; relative paths are resolved against `directory`. */
export const parseKubeconfig = (text: string, directory: string): Kubeconfig => {
  let document: unknown
  try {
    document = loadYaml(text)
  } catch (error) {
    throw new KubeconfigProblem(`not valid YAML: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (document === undefined || document === null) document = {}
  if (!isFields(document)) throw new KubeconfigProblem("not a kubeconfig (the file is not a YAML mapping)")
  const resolve = (file: string) => path.resolve(directory, file)
  const currentContext = document["current-context"]
  return {
    clusters: byName(entries(document, "clusters", "cluster").map(({ name, where, body }) => parseCluster(name, where, body, resolve))),
    users: byName(entries(document, "users", "user").map(({ name, where, body }) => parseUser(name, where, body, resolve))),
    contexts: byName(entries(document, "contexts", "context").map(({ name, where, body }) => {
      const context = fieldsOf(body, where)
      const cluster = context.string("cluster")
      if (cluster === undefined) throw new KubeconfigProblem(`${where}.cluster is missing`)
      return { name, cluster, user: context.string("user") }
    })),
    currentContext: typeof currentContext === "string" && currentContext !== "" ? currentContext : undefined
  }
}

/** kubectl's KUBECONFIG merge: the first file that defines a name (or sets current-context) wins. */
export const mergeKubeconfigs = (first: Kubeconfig, next: Kubeconfig): Kubeconfig => {
  const merge = <A>(a: ReadonlyMap<string, A>, b: ReadonlyMap<string, A>) => {
    const merged = new Map(a)
    for (const [name, value] of b) if (!merged.has(name)) merged.set(name, value)
    return merged
  }
  return {
    clusters: merge(first.clusters, next.clusters),
    users: merge(first.users, next.users),
    contexts: merge(first.contexts, next.contexts),
    currentContext: first.currentContext ?? next.currentContext
  }
}
