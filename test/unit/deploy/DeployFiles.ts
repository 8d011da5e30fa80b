import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse, parseAllDocuments } from "yaml"

/**
 * Reading what users apply: deploy/ through its kustomization, the API contract's RBAC
 * rules, the operator's `run` flags as `--help` prints them. Shared by the fast tier
 * (test/unit/deploy) and the cluster tier (test/cluster/Deploy.test.ts).
 */

export const repoRoot = join(import.meta.dirname, "..", "..", "..")
export const deployDir = join(repoRoot, "deploy")
export const chartDir = join(deployDir, "helm", "compliance-scan")

/** A Kubernetes object as YAML gives it: only the fields every object has are typed. */
export interface Manifest {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [key: string]: unknown }
  readonly [key: string]: any
}

export const parseManifests = (text: string): Array<Manifest> =>
  parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(document.errors.map((error) => error.message).join("; "))
      return document.toJS() as Manifest | null
    })
    .filter((object): object is Manifest => object !== null && typeof object === "object")

export const readManifests = (path: string): Array<Manifest> => parseManifests(readFileSync(path, "utf8"))

/**
 * The objects `kubectl apply -k <dir>` would send, for a kustomization that only lists
 * files under `resources` (deploy/'s does; there is no kustomize binary on this machine).
 */
export const kustomizeResources = (directory: string = deployDir): Array<Manifest> => {
  const kustomization = parse(readFileSync(join(directory, "kustomization.yaml"), "utf8")) as {
    readonly resources?: ReadonlyArray<string>
  }
  return (kustomization.resources ?? []).flatMap((file) => readManifests(join(directory, file)))
}

export const findManifest = (objects: ReadonlyArray<Manifest>, kind: string, name?: string): Manifest => {
  const found = objects.filter((object) => object.kind === kind && (name === undefined || object.metadata.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? "" : ` ${name}`}, found ${found.length}`)
  return found[0]!
}

export interface PolicyRule {
  readonly apiGroups: ReadonlyArray<string>
  readonly resources: ReadonlyArray<string>
  readonly verbs: ReadonlyArray<string>
}

/** Rules as sorted `group/resource:verb` strings: two rule lists grant the same iff these are equal. */
export const grants = (rules: ReadonlyArray<PolicyRule>): Array<string> =>
  [...new Set(rules.flatMap((rule) =>
    rule.apiGroups.flatMap((group) =>
      rule.resources.flatMap((resource) => rule.verbs.map((verb) => `${group === "" ? "core" : group}/${resource}:${verb}`))
    )
  ))].sort()

/** The RBAC rules of the API contract (docs/api.md), from its `rules:` YAML block. */
export const contractRules = (): Array<PolicyRule> => {
  const text = readFileSync(join(repoRoot, "docs", "api.md"), "utf8")
  const section = text.slice(text.indexOf("RBAC: exactly these rules"))
  const block = /```yaml\n([\s\S]*?)```/u.exec(section)
  if (block === null) throw new Error("docs/api.md: no RBAC rules block")
  return (parse(block[1]!) as { rules: Array<PolicyRule> }).rules
}

/** Listing Nodes for targetNodeSelector (part of api.md's rules block). */
export const nodesRule: PolicyRule = { apiGroups: [""], resources: ["nodes"], verbs: ["list"] }

/** What api.md adds in prose: listing NetworkPolicies for the CEL `networkPolicies` variable. */
export const networkPoliciesRule: PolicyRule = { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ["list"] }

/** What api.md adds for the Falco receiver's leader-only routing: a Role in the operator's namespace. */
export const endpointSlicesRule: PolicyRule = { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "create", "update"] }

const nodeBinary = join(repoRoot, "node_modules", ".bin", "node")

/** Runs the operator's CLI on the project's Node 24, from the given entry point (bin/compliance-scan.js by default). */
export const runCli = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Readonly<Record<string, string>>; readonly main?: string } = {}
): Promise<{ readonly status: number | null; readonly stdout: string; readonly stderr: string; readonly output: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(nodeBinary, [options.main ?? join(repoRoot, "bin", "compliance-scan.js"), ...args], {
      // Only what the test gives, plus PATH: no KUBECONFIG or flag variable leaks in.
      env: { PATH: process.env.PATH ?? "", ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.on("error", reject)
    child.on("close", (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr, output: stdout + stderr })
    })
  })

/** The flags of `compliance-scan run` and their environment variables, as `run --help` lists them. */
export const runFlags = async (main?: string): Promise<Array<{ readonly flag: string; readonly env: string }>> => {
  const help = (await runCli(["run", "--help"], main === undefined ? {} : { main })).stdout
  const flagsSection = help.slice(help.indexOf("\nFLAGS\n"), help.indexOf("\nGLOBAL FLAGS\n"))
  return [...flagsSection.matchAll(/^\s+--([a-z0-9-]+)\b.*\[env ([A-Z0-9_]+)\]/gmu)].map((match) => ({
    flag: match[1]!,
    env: match[2]!
  }))
}

interface EnvVar {
  readonly name: string
  readonly value?: string
  readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath: string } }
}

/** The operator container's environment, with downward-API fields filled in as the kubelet would. */
export const containerEnvironment = (deployment: Manifest, pod: { name: string; namespace: string; ip?: string }): Record<string, string> => {
  const container = deployment.spec.template.spec.containers[0]
  return Object.fromEntries((container.env as ReadonlyArray<EnvVar>).map((variable) => {
    const field = variable.valueFrom?.fieldRef?.fieldPath
    if (field === "metadata.name") return [variable.name, pod.name]
    if (field === "metadata.namespace") return [variable.name, pod.namespace]
    if (field === "status.podIP") return [variable.name, pod.ip ?? "10.244.0.7"]
    if (variable.value !== undefined) return [variable.name, variable.value]
    throw new Error(`env ${variable.name}: unsupported source ${JSON.stringify(variable.valueFrom)}`)
  }))
}

/**
 * The chart's value for each flag of `run` (dotted path in values.yaml). The receiver's
 * bind address also needs `falco.receiver.enabled`; the leader-election namespace falls
 * back to the release namespace when its value is empty.
 */
export const chartValueOfFlag: Readonly<Record<string, string>> = {
  "cluster-id": "clusterID",
  "cluster-name": "clusterName",
  "job-namespace": "jobNamespace.name",
  "kube-bench-image": "kubeBench.image",
  "falco-host": "falco.host",
  "falco-port": "falco.port",
  "falco-cert-file": "falco.certFile",
  "falco-key-file": "falco.keyFile",
  "falco-ca-root-file": "falco.caRootFile",
  "falco-receiver-bind-address": "falco.receiver.bindAddress",
  "falco-receiver-cert-file": "falco.receiver.certFile",
  "falco-receiver-key-file": "falco.receiver.keyFile",
  "falco-receiver-client-ca-file": "falco.receiver.clientCAFile",
  "falco-receiver-buffer-size": "falco.receiver.bufferSize",
  "falco-receiver-service": "falco.receiver.service.name",
  "falco-receiver-buffer-bytes": "falco.receiver.bufferBytes",
  "metrics-bind-address": "metrics.bindAddress",
  "health-probe-bind-address": "healthProbeBindAddress",
  "leader-elect": "leaderElection.enabled",
  "leader-election-namespace": "leaderElection.namespace",
  "leader-election-id": "leaderElection.id",
  "lease-duration": "leaderElection.leaseDuration",
  "renew-deadline": "leaderElection.renewDeadline",
  "retry-period": "leaderElection.retryPeriod",
  "max-concurrent-runs": "maxConcurrentRuns",
  "watch-namespace": "watchNamespace",
  kubeconfig: "kubeconfig",
  "log-level": "logLevel",
  "log-format": "logFormat",
  "max-exception-duration": "exceptions.maxDuration",
  "exception-unused-after-runs": "exceptions.unusedAfterRuns",
  "report-api": "openReports.api"
}

/** The value at a dotted path of a values object; undefined when a step is missing. */
export const valueAt = (values: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>(
    (current, key) => (current !== null && typeof current === "object" && key in current ? (current as Record<string, unknown>)[key] : undefined),
    values
  )

/** One Dockerfile instruction: its keyword (upper case) and the rest of it. */
export interface DockerInstruction {
  readonly keyword: string
  readonly args: string
}

/**
 * The Dockerfile's instructions by build stage, as Docker reads them: a line ending in a
 * backslash continues on the next (comment lines between are dropped), comments and blank
 * lines are not instructions. No Docker engine here: the image's recipe is read, not built.
 */
export const dockerfileStages = (): ReadonlyArray<ReadonlyArray<DockerInstruction>> =>
  readFileSync(join(repoRoot, "Dockerfile"), "utf8")
    .replace(/\\\n(?:\s*#.*\n)*\s*/gu, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/u)
      return { keyword: keyword!.toUpperCase(), args: rest.join(" ") }
    })
    .reduce<Array<Array<DockerInstruction>>>((stages, instruction) => {
      if (instruction.keyword === "FROM") stages.push([])
      stages.at(-1)?.push(instruction)
      return stages
    }, [])

/** The final image's ENV: each variable and its value (the Dockerfile's are `NAME=value`, unquoted). */
export const imageEnvironment = (): Readonly<Record<string, string>> =>
  Object.fromEntries(
    dockerfileStages().at(-1)!
      .filter((instruction) => instruction.keyword === "ENV")
      .flatMap((instruction) => instruction.args.split(" "))
      .map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)])
  )

/** The Node flags of the image's ENTRYPOINT (`node <flags> /app/bin/compliance-scan.js`). */
export const imageNodeFlags = (): ReadonlyArray<string> => {
  const entrypoint = dockerfileStages().at(-1)!.find((instruction) => instruction.keyword === "ENTRYPOINT")
  if (entrypoint === undefined) throw new Error("the Dockerfile has no ENTRYPOINT")
  const words = JSON.parse(entrypoint.args) as Array<string>
  return words.slice(1, words.indexOf("/app/bin/compliance-scan.js"))
}
