import { Effect } from "effect"
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { parse } from "yaml"
import { envName } from "../../src/cli/OperatorFlags.ts"
import { Metrics } from "../../src/services/Metrics.ts"
import {
  chartDir,
  chartValueOfFlag,
  containerEnvironment,
  contractRules,
  findManifest,
  grants,
  kustomizeResources,
  type Manifest,
  endpointSlicesRule,
  networkPoliciesRule,
  nodesRule,
  parseManifests,
  repoRoot,
  runCli,
  runFlags
} from "../unit/deploy/DeployFiles.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import { type Json, KubeApiError, type KubeHttp } from "./harness/KubeHttp.ts"
import { isNamespacedKind, objectPath } from "./harness/ResourcePaths.ts"
import { createRun, runPath } from "./harness/Scans.ts"

/**
 * What users apply, on the real API server: deploy/ (`kubectl apply -k`, read from its
 * kustomization since there is no kubectl or kustomize here) and the Helm chart (`helm
 * lint`, `helm template` with default values and with every value set), each sent as a
 * server-side dry run first and then for real; the chart's admission policy; the operator's
 * RBAC as the API server's authorizer sees it; and the production bundle of `npm run build`.
 */
const cluster = inject("cluster")
const helm = join(cluster.cacheDir, "bin", "helm")
const run = promisify(execFile)
const scratch = mkdtempSync(join(tmpdir(), "deploy-cluster-test-"))
let admin: KubeHttp

/** Objects this file created that other test files must not meet (policies with other caps, a second operator's RBAC). */
const cleanup: Array<string> = []

beforeAll(() => {
  admin = connectAdmin(cluster)
})

afterAll(async () => {
  for (const path of cleanup.reverse()) await admin.remove(path).catch(() => undefined)
  admin.close()
  rmSync(scratch, { recursive: true, force: true })
})

const describeObject = (object: Manifest) => `${object.kind} ${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name}`

/** Server-side apply (`kubectl apply --server-side [--dry-run=server]`); the API server's answer verbatim on failure. */
const apply = async (object: Manifest, options: { readonly dryRun: boolean; readonly fieldManager: string }): Promise<Json> => {
  const query = `fieldManager=${options.fieldManager}&force=true${options.dryRun ? "&dryRun=All" : ""}`
  const response = await admin.raw("PATCH", `${objectPath(object)}?${query}`, JSON.stringify(object), "application/apply-patch+yaml")
  if (response.status >= 200 && response.status < 300) return JSON.parse(response.body) as Json
  throw new Error(`${options.dryRun ? "dry-run " : ""}apply of ${describeObject(object)}: ${response.status} ${response.body}`)
}

/**
 * Like `kubectl apply`: Namespaces and CRDs first (the objects in them need them), a
 * server-side dry run of everything, then the real apply; returns what the server stored.
 */
const applyAllTwice = async (objects: ReadonlyArray<Manifest>, fieldManager: string): Promise<Array<Json>> => {
  const first = (object: Manifest) => (object.kind === "Namespace" ? 0 : object.kind === "CustomResourceDefinition" ? 1 : 2)
  const ordered = [...objects].sort((left, right) => first(left) - first(right))
  // A dry run of an object in a namespace, or of a kind, that does not exist yet fails, as
  // with kubectl: Namespaces and CRDs are created first, for real, after their own dry run.
  const foundations = ordered.filter((object) => first(object) < 2)
  for (const object of foundations) {
    await apply(object, { dryRun: true, fieldManager })
    await apply(object, { dryRun: false, fieldManager })
    if (object.kind === "CustomResourceDefinition") await established(object.metadata.name)
  }
  const rest = ordered.filter((object) => first(object) === 2)
  for (const object of rest) await apply(object, { dryRun: true, fieldManager })
  const stored: Array<Json> = []
  for (const object of ordered) stored.push(await apply(object, { dryRun: false, fieldManager }))
  return stored
}

const established = (name: string) =>
  eventually(
    async () => {
      const crd = await admin.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`)
      const conditions: Array<{ type: string; status: string }> = crd.status?.conditions ?? []
      return conditions.some((condition) => condition.type === "Established" && condition.status === "True") ? crd : undefined
    },
    { what: `CRD ${name} to become Established`, timeoutMillis: 60_000 }
  )

/** The API server does not store empty strings of optional fields (`value: ""` of an env var). */
const withoutEmptyStrings = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutEmptyStrings)
  if (value === null || typeof value !== "object") return value
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== "").map(([key, entry]) => [key, withoutEmptyStrings(entry)]))
}

/** Every object exists on the server with the fields the manifest gives (the server may add defaults). */
const expectStoredAsWritten = async (objects: ReadonlyArray<Manifest>) => {
  for (const object of objects) {
    const stored = await admin.get(objectPath(object))
    const { metadata, ...content } = withoutEmptyStrings(object) as Manifest
    expect(stored, describeObject(object)).toMatchObject(content)
    expect(stored.metadata.labels ?? {}, describeObject(object)).toMatchObject(metadata.labels ?? {})
    expect(stored.metadata.annotations ?? {}, describeObject(object)).toMatchObject(metadata.annotations ?? {})
  }
}

// ------------------------------------------------------------------ authorization as the API server decides it

interface Access {
  readonly verb: string
  readonly group?: string
  readonly resource: string
  readonly subresource?: string
  readonly namespace?: string
}

const serviceAccountMayDo = async (serviceAccount: { namespace: string; name: string }, access: Access): Promise<boolean> => {
  const review = await admin.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: `system:serviceaccount:${serviceAccount.namespace}:${serviceAccount.name}`,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${serviceAccount.namespace}`, "system:authenticated"],
      resourceAttributes: { group: access.group ?? "", ...access }
    }
  })
  return review.status.allowed === true
}

const expectOperatorPermissions = async (serviceAccount: { namespace: string; name: string }, jobNamespace: string, leaderElection = true) => {
  const allowed: Array<Access> = [
    { verb: "create", group: "batch", resource: "jobs", namespace: jobNamespace },
    { verb: "delete", group: "batch", resource: "jobs", namespace: jobNamespace },
    { verb: "get", resource: "pods", subresource: "log", namespace: jobNamespace },
    { verb: "list", resource: "pods" },
    { verb: "get", group: "security.ugallu.io", resource: "securityevents" },
    { verb: "get", resource: "events", namespace: "team-a" },
    { verb: "list", resource: "namespaces" },
    { verb: "list", resource: "nodes" },
    // CEL rules on the built-in kinds: listed cluster-wide.
    { verb: "list", group: "apps", resource: "deployments" },
    { verb: "list", group: "batch", resource: "cronjobs" },
    { verb: "list", group: "batch", resource: "jobs", namespace: "team-a" },
    { verb: "list", resource: "configmaps", namespace: "team-a" },
    { verb: "list", group: "networking.k8s.io", resource: "ingresses" },
    { verb: "list", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings" },
    { verb: "patch", group: "security.ugallu.io", resource: "compliancescanruns", subresource: "status", namespace: "team-a" },
    { verb: "create", group: "security.ugallu.io", resource: "compliancescanresults", namespace: "team-a" },
    { verb: "create", group: "security.ugallu.io", resource: "securityevents" },
    { verb: "create", resource: "events", namespace: "team-a" },
    // The runs of ComplianceScanSchedules: created, replaced and pruned.
    { verb: "create", group: "security.ugallu.io", resource: "compliancescanruns", namespace: "team-a" },
    { verb: "delete", group: "security.ugallu.io", resource: "compliancescanruns", namespace: "team-a" },
    { verb: "patch", group: "security.ugallu.io", resource: "compliancescanschedules", subresource: "status", namespace: "team-a" },
    // Leases only where leader election keeps its Lease (a Role there; none without leader election).
    ...(leaderElection ? [{ verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: serviceAccount.namespace }] : []),
    { verb: "update", group: "discovery.k8s.io", resource: "endpointslices", namespace: serviceAccount.namespace }
  ]
  const denied: Array<Access> = [
    { verb: "create", group: "batch", resource: "jobs", namespace: "kube-system" },
    { verb: "get", resource: "pods", subresource: "log", namespace: "kube-system" },
    { verb: "create", resource: "pods", namespace: jobNamespace },
    { verb: "get", resource: "secrets", namespace: serviceAccount.namespace },
    { verb: "list", resource: "secrets" },
    { verb: "list", resource: "limitranges" },
    { verb: "get", group: "apps", resource: "deployments", namespace: "team-a" },
    { verb: "watch", resource: "configmaps" },
    { verb: "create", group: "batch", resource: "jobs", namespace: "team-a" },
    { verb: "watch", resource: "nodes" },
    { verb: "update", group: "security.ugallu.io", resource: "compliancescanruns", namespace: "team-a" },
    { verb: "watch", resource: "pods" },
    // Schedules are the users': the operator patches them (run-now, status), never creates or deletes them.
    { verb: "create", group: "security.ugallu.io", resource: "compliancescanschedules", namespace: "team-a" },
    { verb: "delete", group: "security.ugallu.io", resource: "compliancescanschedules", namespace: "team-a" },
    { verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "team-a" },
    { verb: "update", group: "discovery.k8s.io", resource: "endpointslices", namespace: "team-a" },
    { verb: "delete", group: "discovery.k8s.io", resource: "endpointslices", namespace: serviceAccount.namespace },
    { verb: "patch", resource: "pods", namespace: serviceAccount.namespace }
  ]
  for (const access of allowed) expect(await serviceAccountMayDo(serviceAccount, access), `allowed: ${JSON.stringify(access)}`).toBe(true)
  for (const access of denied) expect(await serviceAccountMayDo(serviceAccount, access), `denied: ${JSON.stringify(access)}`).toBe(false)
}

/** The Deployment's Pod, created as a dry run: Pod Security admission of its namespace judges it. */
const podOf = (deployment: Manifest, patch: (spec: Json) => Json = (spec) => spec): Manifest => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: `${deployment.metadata.name}-pod-security-check`, namespace: deployment.metadata.namespace!, labels: deployment.spec.template.metadata.labels },
  spec: patch(structuredClone(deployment.spec.template.spec))
})

const createPodDryRun = async (pod: Manifest) => {
  const response = await admin.raw("POST", `/api/v1/namespaces/${pod.metadata.namespace}/pods?dryRun=All`, JSON.stringify(pod))
  return { status: response.status, message: String((JSON.parse(response.body) as Json).message ?? "") }
}

// ------------------------------------------------------------------ deploy/

describe("deploy/ (kubectl apply -k deploy/)", () => {
  const objects = kustomizeResources()
  const deployment = findManifest(objects, "Deployment")

  it("passes a server-side dry run, then applies; every object is stored as written", async () => {
    // The dry run must not create anything: the Deployment is deploy/'s alone.
    await admin.remove(objectPath(deployment))
    await apply(findManifest(objects, "Namespace", deployment.metadata.namespace!), { dryRun: false, fieldManager: "deploy-test" })
    const dryRun = await apply(deployment, { dryRun: true, fieldManager: "deploy-test" })
    expect(dryRun.metadata.name).toBe(deployment.metadata.name)
    expect(await admin.find(objectPath(deployment))).toBeUndefined()

    const stored = await applyAllTwice(objects, "deploy-test")
    expect(stored.map((object) => `${object.kind}/${object.metadata.name}`).sort()).toEqual(
      objects.map((object) => `${object.kind}/${object.metadata.name}`).sort()
    )
    await expectStoredAsWritten(objects)
    const run = await admin.get(objectPath(deployment))
    expect(run.spec.replicas).toBe(1)
  })

  it("the operator's Pod passes its namespace's restricted Pod Security level (and one without its hardening would not)", async () => {
    const accepted = await createPodDryRun(podOf(deployment))
    expect(accepted, accepted.message).toMatchObject({ status: 201 })
    const unhardened = await createPodDryRun(podOf(deployment, (spec) => {
      delete spec.containers[0].securityContext
      return spec
    }))
    expect(unhardened.status).toBe(403)
    expect(unhardened.message).toContain('violates PodSecurity "restricted:latest"')
  })

  it("gives the operator's ServiceAccount what the operator needs and nothing more", async () => {
    const serviceAccount = findManifest(objects, "ServiceAccount")
    const env = containerEnvironment(deployment, { name: "operator-0", namespace: deployment.metadata.namespace! })
    await expectOperatorPermissions({ namespace: serviceAccount.metadata.namespace!, name: serviceAccount.metadata.name }, env.JOB_NAMESPACE!)
  })
})

// ------------------------------------------------------------------ the Helm chart

const defaultRelease = { name: "cs-default", namespace: "cs-default" }
const fullRelease = { name: "cs-full", namespace: "cs-full" }

/** Every value set, none to its default: each must show in the rendered objects. */
const everyValue = {
  image: {
    repository: "registry.example.com/security/compliance-scan",
    tag: "9.9.9-test",
    digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    pullPolicy: "Always"
  },
  imagePullSecrets: [{ name: "registry-credentials" }],
  nameOverride: "scanner",
  fullnameOverride: "cs-full-operator",
  clusterID: "cluster-0042",
  clusterName: "payments-prod-eu",
  jobNamespace: { name: "cs-full-privileged", create: true },
  kubeBench: { image: "registry.example.com/aquasec/kube-bench:v0.15.6" },
  falco: {
    host: "falco-grpc.falco.svc",
    port: 5061,
    certsSecret: "falco-grpc-client",
    certFile: "/etc/falco-client/client.crt",
    keyFile: "/etc/falco-client/client.key",
    caRootFile: "/etc/falco-client/root-ca.crt",
    receiver: {
      enabled: true,
      bindAddress: ":9443",
      certsSecret: "falco-receiver-tls",
      certFile: "/etc/falco-receiver/server.crt",
      keyFile: "/etc/falco-receiver/server.key",
      clientCAFile: "/etc/falco-receiver/clients-ca.crt",
      bufferSize: 20000,
      bufferBytes: 67108864,
      service: { enabled: true, name: "cs-full-falco-alerts", type: "ClusterIP", port: 443, annotations: { "example.com/receiver": "yes" } }
    }
  },
  metrics: { bindAddress: ":9090", service: { enabled: true, type: "ClusterIP", port: 9090, annotations: { "example.com/scrape": "yes" } } },
  healthProbeBindAddress: ":9091",
  leaderElection: {
    enabled: false,
    namespace: "cs-full-leases",
    id: "cs-full-leader",
    leaseDuration: "30s",
    renewDeadline: "20s",
    retryPeriod: "5s"
  },
  maxConcurrentRuns: 3,
  watchNamespace: "payments",
  kubeconfig: "/etc/remote-cluster/kubeconfig",
  logLevel: "debug",
  logFormat: "text",
  replicaCount: 2,
  podDisruptionBudget: { enabled: true, minAvailable: 1 },
  topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway" }],
  extraArgs: ["--max-concurrent-runs=4"],
  livenessProbe: { httpGet: { path: "/healthz", port: "probes" }, initialDelaySeconds: 15, periodSeconds: 30, failureThreshold: 5 },
  readinessProbe: { httpGet: { path: "/readyz", port: "probes" }, periodSeconds: 5 },
  terminationGracePeriodSeconds: 45,
  helmTest: { enabled: true },
  resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
  podSecurityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: "RuntimeDefault" } },
  securityContext: {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" }
  },
  nodeSelector: { "kubernetes.io/os": "linux", "node-role.example.com/infra": "true" },
  tolerations: [{ key: "dedicated", operator: "Equal", value: "infra", effect: "NoSchedule" }],
  affinity: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["amd64", "arm64"] }] }]
      }
    }
  },
  priorityClassName: "infra-critical",
  podAnnotations: { "example.com/team": "security" },
  podLabels: { "example.com/cost-center": "sec-42" },
  extraEnv: [{ name: "NODE_OPTIONS", value: "--max-old-space-size=200" }],
  extraVolumes: [{ name: "remote-kubeconfig", secret: { secretName: "remote-kubeconfig", optional: true } }],
  extraVolumeMounts: [{ name: "remote-kubeconfig", mountPath: "/etc/remote-cluster", readOnly: true }],
  serviceAccount: { create: true, name: "cs-full-sa", annotations: { "example.com/identity": "scanner" } },
  rbac: { create: true, celReadRules: [{ apiGroups: ["", "example.com"], resources: ["persistentvolumeclaims", "widgets"], verbs: ["get", "list"] }] },
  crds: { install: true, keep: false },
  installSecurityEventCRD: false,
  admissionPolicy: { enabled: true, maxTimeout: "20m" },
  exceptions: { maxDuration: "720h", unusedAfterRuns: 5, approverRole: { create: true, aggregateToAdmin: true } },
  serviceMonitor: { enabled: true, interval: "15s", labels: { release: "prometheus" } },
  prometheusRule: { enabled: true, labels: { release: "prometheus" } },
  grafanaDashboard: { enabled: true, labels: { grafana_dashboard: "1", "example.com/folder": "security" }, annotations: { "grafana-folder": "Security" } },
  // installCRDs needs the CRDs fetched into the chart first (test/cluster/OpenReports.test.ts renders it).
  openReports: { api: "both", installCRDs: false }
}

/**
 * The cluster tier's Kubernetes version. `helm template` and `helm lint` render for a default
 * version that a helm built from source leaves at v1.20 (release builds stamp theirs), which
 * the chart's kubeVersion refuses: like a GitOps tool, they are told the target cluster's.
 */
const kubeVersion = /^kubernetes=(\S+)$/mu.exec(readFileSync(join(cluster.cacheDir, "manifest.txt"), "utf8"))![1]!

const helmCommand = async (args: ReadonlyArray<string>) => {
  const offline = (args[0] === "template" || args[0] === "lint") && !args.includes("--kube-version")
  try {
    const { stdout, stderr } = await run(helm, [...args, ...(offline ? ["--kube-version", kubeVersion] : [])], { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string }
    return { code: failed.code ?? 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" }
  }
}

const valuesFile = join(scratch, "every-value.yaml")
writeFileSync(valuesFile, JSON.stringify(everyValue, null, 2))

/** `helm template` without the `helm test` hooks (what `helm install` applies before `helm test`). */
const template = async (release: { name: string; namespace: string }, values?: string): Promise<Array<Manifest>> => {
  const result = await helmCommand(["template", release.name, chartDir, "--namespace", release.namespace, "--skip-tests", ...(values ? ["--values", values] : [])])
  expect(result.code, result.stderr).toBe(0)
  return parseManifests(result.stdout)
}

/** Stand-ins for the Prometheus Operator's CRDs, so that ServiceMonitor and PrometheusRule can be applied. */
const monitoringCrd = (kind: string, plural: string): Manifest => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${plural}.monitoring.coreos.com` },
  spec: {
    group: "monitoring.coreos.com",
    scope: "Namespaced",
    names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
    versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }]
  }
})

const rbacGrants = (objects: ReadonlyArray<Manifest>) =>
  grants(
    objects
      .filter((object) => object.kind === "ClusterRole" || object.kind === "Role")
      // Bound to people who may waive findings, never to the operator.
      .filter((object) => object.metadata.name !== "compliance-scan-exception-approver")
      .flatMap((role) => role.rules)
  )

const crdsOfRepository = () =>
  readdirSync(join(repoRoot, "crds")).filter((file) => file.endsWith(".yaml")).sort().map((file) => parse(readFileSync(join(repoRoot, "crds", file), "utf8")))

const withoutKeepAnnotation = (crd: Manifest) => {
  const { annotations, ...metadata } = crd.metadata as { annotations?: Record<string, string> } & Manifest["metadata"]
  expect(annotations ?? {}).toEqual(annotations === undefined ? {} : { "helm.sh/resource-policy": "keep" })
  return { ...crd, metadata }
}

/** Creating a run with this timeout: undefined when admitted (the run is deleted again), else the API error. */
const createWithTimeout = async (namespace: string, timeout: string): Promise<KubeApiError | undefined> => {
  const name = `timeout-${timeout.replace(/[^a-z0-9]/gu, "")}`
  try {
    await createRun(admin, namespace, name, { backend: "cel", profile: "pod-security-baseline", timeout })
    await admin.remove(runPath(namespace, name))
    return undefined
  } catch (error) {
    if (error instanceof KubeApiError) return error
    throw error
  }
}

describe("Helm chart", () => {
  it("passes helm lint --strict, with default values and with every value set", async () => {
    // valuesFile: replicas 2 (with a PodDisruptionBudget), an image digest, the test hook.
    for (const extra of [[], ["--values", valuesFile]]) {
      const result = await helmCommand(["lint", "--strict", chartDir, ...extra])
      expect(result.code, result.stdout + result.stderr).toBe(0)
      expect(result.stdout).toContain("1 chart(s) linted, 0 chart(s) failed")
    }
  })

  it("refuses a cluster older than its kubeVersion with a clear message", async () => {
    const result = await helmCommand(["template", "old", chartDir, "--kube-version", "1.29.9"])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain("chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.29.9")
    expect((await helmCommand(["template", "current", chartDir, "--kube-version", "1.30.0"])).code).toBe(0)
  })

  it("refuses a ServiceMonitor without the metrics Service, and an image digest that is not one", async () => {
    const monitorWithoutMetrics = await helmCommand(["template", "bad", chartDir, "--set", "serviceMonitor.enabled=true", "--set", "metrics.bindAddress=0"])
    expect(monitorWithoutMetrics.code).not.toBe(0)
    expect(monitorWithoutMetrics.stderr).toContain("serviceMonitor.enabled needs the metrics Service")
    const badDigest = await helmCommand(["template", "bad", chartDir, "--set", "image.digest=latest"])
    expect(badDigest.code).not.toBe(0)
    expect(badDigest.stderr).toContain("/image/digest")
  })

  it("renders a `helm test` hook: a Job in the operator's image that reads /metrics through the metrics Service", async () => {
    const result = await helmCommand(["template", defaultRelease.name, chartDir, "--namespace", defaultRelease.namespace, "--show-only", "templates/tests/metrics-test.yaml"])
    expect(result.code, result.stderr).toBe(0)
    const [job] = parseManifests(result.stdout)
    expect(job!.kind).toBe("Job")
    expect(job!.metadata.annotations).toMatchObject({ "helm.sh/hook": "test" })
    const container = job!.spec.template.spec.containers[0]
    expect(container.image).toBe("ghcr.io/ugallu/compliance-scan:0.1.0")
    expect(container.env).toEqual([{ name: "METRICS_URL", value: "http://cs-default-compliance-scan-metrics.cs-default.svc:8080/metrics" }])
    // Its script, run as the container runs it, against the operator's real /metrics text and against another service.
    const operatorMetrics = await Effect.runPromise(Effect.flatMap(Metrics.make({ processMetrics: false }), (metrics) => metrics.render))
    for (const [body, expected] of [[operatorMetrics.body, 0], ["<html>not the operator</html>", 1]] as const) {
      const server = createServer((_, response) => response.end(body))
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`
      const outcome = await run(process.execPath, container.command.slice(1), { env: { METRICS_URL: url } }).then(() => 0, (error: { code?: number }) => error.code)
      server.close()
      expect(outcome, body.slice(0, 40)).toBe(expected)
    }
    expect(container.command.slice(0, 2)).toEqual(["node", "--input-type=module"])
    // The Pod passes the release namespace's restricted level.
    const accepted = await createPodDryRun({ apiVersion: "v1", kind: "Pod", metadata: { name: "helm-test", namespace: "ugallu-system" }, spec: job!.spec.template.spec })
    expect(accepted, accepted.message).toMatchObject({ status: 201 })
  })

  it("refuses values its schema does not know or allow", async () => {
    const result = await helmCommand(["template", "bad", chartDir, "--set", "logLevel=verbose", "--set", "unknownValue=1"])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain("/logLevel")
  })

  describe("with default values", () => {
    let objects: Array<Manifest>

    beforeAll(async () => {
      objects = await template(defaultRelease)
    })

    it("renders deploy/'s objects: the same RBAC grants, CRDs equal to crds/, the same operator configuration", async () => {
      expect(rbacGrants(objects)).toEqual(grants([...contractRules(), nodesRule, networkPoliciesRule, endpointSlicesRule]))
      const crds = objects.filter((object) => object.kind === "CustomResourceDefinition").map(withoutKeepAnnotation)
      expect(crds.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))).toEqual(crdsOfRepository())
      const pod = { name: "operator-0", namespace: defaultRelease.namespace }
      const rendered = containerEnvironment(findManifest(objects, "Deployment"), pod)
      const plain = containerEnvironment(findManifest(kustomizeResources(), "Deployment"), pod)
      expect(rendered).toEqual(plain)
      const flags = await runFlags()
      expect(Object.keys(rendered).sort()).toEqual([...flags.map((flag) => flag.env), "POD_IP", "POD_NAME", "POD_NAMESPACE"].sort())
      expect(objects.map((object) => object.kind).sort()).toEqual([
        "ClusterRole", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
        "CustomResourceDefinition", "CustomResourceDefinition", "Deployment", "Namespace", "Role", "Role", "Role", "RoleBinding", "RoleBinding", "RoleBinding",
        "Service", "ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding"
      ])
      // One replica: no PodDisruptionBudget (it would block every drain).
      expect(objects.some((object) => object.kind === "PodDisruptionBudget")).toBe(false)
    })

    it("applies to the API server (dry run, then for real) into the release namespace, as `helm install` would", async () => {
      // `helm install --create-namespace` creates the release namespace; label it as docs/operations.md says.
      await admin.apply(`/api/v1/namespaces/${defaultRelease.namespace}`, {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: defaultRelease.namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } }
      }, "deploy-test")
      cleanup.push(`/api/v1/namespaces/${defaultRelease.namespace}`)
      for (const object of objects.filter((candidate) => !isNamespacedKind(candidate.kind) && candidate.kind !== "Namespace" && candidate.kind !== "CustomResourceDefinition")) {
        cleanup.push(objectPath(object))
      }
      for (const object of objects.filter((candidate) => candidate.metadata.namespace === "ugallu-system-privileged")) cleanup.push(objectPath(object))
      await applyAllTwice(objects, "deploy-test-helm-default")
      await expectStoredAsWritten(objects)
      const accepted = await createPodDryRun(podOf(findManifest(objects, "Deployment")))
      expect(accepted, accepted.message).toMatchObject({ status: 201 })
      const serviceAccount = findManifest(objects, "ServiceAccount")
      await expectOperatorPermissions({ namespace: defaultRelease.namespace, name: serviceAccount.metadata.name }, "ugallu-system-privileged")
    })

    it("installs an admission policy that rejects timeout 31m with a clear message and accepts 30m", async () => {
      const policy = objects.find((object) =>
        object.kind === "ValidatingAdmissionPolicy" && object.metadata.name.endsWith("-timeout") && !object.metadata.name.endsWith("-schedule-timeout")
      )!
      // deploy/'s policy has the same cap: take its binding away for this test, so that the
      // rejection can only come from the chart's policy.
      const deployBinding = findManifest(kustomizeResources(), "ValidatingAdmissionPolicyBinding", "ugallu-compliance-scan-timeout")
      await admin.remove(objectPath(deployBinding))
      try {
        const namespace = defaultRelease.namespace
        const denied = await eventually(async () => {
          const error = await createWithTimeout(namespace, "31m")
          return error?.message.includes(`'${policy.metadata.name}'`) ? error : undefined
        }, {
          what: "the chart's admission policy (alone) to reject timeout 31m",
          timeoutMillis: 30_000,
          intervalMillis: 500
        })
        expect(denied.status).toBe(422)
        expect(denied.message).toContain(`ValidatingAdmissionPolicy '${policy.metadata.name}' with binding '${policy.metadata.name}' denied request`)
        expect(denied.message).toContain(
          "spec.timeout 31m is above the maximum of 30m: use a timeout of 30m or less (split a long scan into several runs)"
        )
        expect(await createWithTimeout(namespace, "30m")).toBeUndefined()
        expect(await createWithTimeout(namespace, "1800s")).toBeUndefined()
        expect((await createWithTimeout(namespace, "2h"))?.status).toBe(422)
        // Beyond CEL's duration range: the policy's own message, not a "type conversion error".
        const absurd = await createWithTimeout(namespace, "9999999999h")
        expect(absurd?.status).toBe(422)
        expect(absurd?.message).toContain("spec.timeout 9999999999h is above the maximum of 30m")
      } finally {
        await apply(deployBinding, { dryRun: false, fieldManager: "deploy-test" })
      }
    })
  })

  describe("with every value set", () => {
    let objects: Array<Manifest>
    let deployment: Manifest

    beforeAll(async () => {
      objects = await template(fullRelease, valuesFile)
      deployment = findManifest(objects, "Deployment")
    })

    it("aggregates the exception approver role into admin when asked", () => {
      const approver = findManifest(objects, "ClusterRole", "compliance-scan-exception-approver")
      expect((approver.metadata.labels as Record<string, string>)["rbac.authorization.k8s.io/aggregate-to-admin"]).toBe("true")
      expect(grants(approver.rules)).toEqual(
        ["create", "delete", "get", "list", "patch", "update", "watch"].map((verb) => `security.ugallu.io/complianceexceptions:${verb}`)
      )
    })

    it("adds rbac.celReadRules to the ClusterRole, nothing else", () => {
      const added = grants(everyValue.rbac.celReadRules)
      // Without leader election there is no Lease Role.
      const contract = grants([...contractRules(), nodesRule, networkPoliciesRule])
        .filter((grant) => everyValue.leaderElection.enabled || !grant.startsWith("coordination.k8s.io/"))
      expect(rbacGrants(objects)).toEqual([...contract, ...added].sort())
    })

    it("sets every flag's variable from its value", async () => {
      const env = containerEnvironment(deployment, { name: "operator-0", namespace: fullRelease.namespace })
      for (const [flag, path] of Object.entries(chartValueOfFlag)) {
        const value = path.split(".").reduce<any>((current, key) => current[key], everyValue)
        expect(env[envName(flag)], `${envName(flag)} from ${path}`).toBe(String(value))
      }
      expect(env.NODE_OPTIONS).toBe("--max-old-space-size=200")
    })

    it("the operator accepts every one of those values (it gets as far as the kubeconfig)", async () => {
      const env = containerEnvironment(deployment, { name: "operator-0", namespace: fullRelease.namespace })
      const kubeconfig = join(scratch, "remote-kubeconfig")
      const result = await runCli(deployment.spec.template.spec.containers[0].args, {
        env: { ...env, KUBECONFIG: kubeconfig, METRICS_BIND_ADDRESS: "127.0.0.1:0", HEALTH_PROBE_BIND_ADDRESS: "127.0.0.1:0", NODE_OPTIONS: "" }
      })
      expect(result.stderr.trim()).toBe(`compliance-scan: kubeconfig ${kubeconfig}: ENOENT: no such file or directory, open '${kubeconfig}'`)
    })

    it("puts the image, scheduling, resources, ports, Secrets and extras where they belong", () => {
      const spec = deployment.spec.template.spec
      const container = spec.containers[0]
      expect(container.image).toBe(`registry.example.com/security/compliance-scan@${everyValue.image.digest}`)
      expect(container.args).toEqual(["run", "--max-concurrent-runs=4"])
      expect(container.livenessProbe).toEqual(everyValue.livenessProbe)
      expect(container.readinessProbe).toEqual(everyValue.readinessProbe)
      expect(spec.terminationGracePeriodSeconds).toBe(45)
      expect(deployment.spec.replicas).toBe(2)
      const operatorPods = { ...deployment.spec.selector.matchLabels }
      expect(operatorPods["app.kubernetes.io/component"]).toBe("operator")
      expect(spec.topologySpreadConstraints).toEqual([{ ...everyValue.topologySpreadConstraints[0], labelSelector: { matchLabels: operatorPods } }])
      const budget = findManifest(objects, "PodDisruptionBudget")
      expect(budget.spec).toEqual({ minAvailable: 1, selector: { matchLabels: operatorPods } })
      expect(container.imagePullPolicy).toBe("Always")
      expect(spec.imagePullSecrets).toEqual(everyValue.imagePullSecrets)
      expect(spec.nodeSelector).toEqual(everyValue.nodeSelector)
      expect(spec.tolerations).toEqual(everyValue.tolerations)
      expect(spec.affinity).toEqual(everyValue.affinity)
      expect(spec.priorityClassName).toBe("infra-critical")
      expect(spec.securityContext).toEqual(everyValue.podSecurityContext)
      expect(container.securityContext).toEqual(everyValue.securityContext)
      expect(container.resources).toEqual(everyValue.resources)
      expect(spec.serviceAccountName).toBe("cs-full-sa")
      expect(deployment.metadata.name).toBe("cs-full-operator")
      expect(deployment.spec.template.metadata.annotations).toEqual(everyValue.podAnnotations)
      expect(deployment.spec.template.metadata.labels).toMatchObject(everyValue.podLabels)
      expect(container.ports).toEqual([
        { name: "metrics", containerPort: 9090, protocol: "TCP" },
        { name: "probes", containerPort: 9091, protocol: "TCP" },
        { name: "falco-receiver", containerPort: 9443, protocol: "TCP" }
      ])
      const secretOf = (mountPath: string) => {
        const mount = container.volumeMounts.find((candidate: { mountPath: string }) => candidate.mountPath === mountPath)
        expect(mount.readOnly).toBe(true)
        return spec.volumes.find((volume: { name: string }) => volume.name === mount.name).secret
      }
      expect(secretOf("/etc/falco-client")).toEqual({ secretName: "falco-grpc-client", optional: true })
      expect(secretOf("/etc/falco-receiver")).toEqual({ secretName: "falco-receiver-tls", optional: true })
      expect(secretOf("/etc/remote-cluster")).toEqual({ secretName: "remote-kubeconfig", optional: true })
      const receiver = findManifest(objects, "Service", "cs-full-falco-alerts")
      // No selector: the leader's EndpointSlice routes it; the operator is told its name.
      expect(receiver.spec.selector).toBeUndefined()
      expect(receiver.spec.ports).toEqual([{ name: "https", port: 443, targetPort: 9443, protocol: "TCP" }])
      expect(container.env).toContainEqual({ name: "FALCO_RECEIVER_SERVICE", value: "cs-full-falco-alerts" })
      expect(findManifest(objects, "Service", "cs-full-operator-metrics").spec.ports[0].port).toBe(9090)
      const jobNamespace = findManifest(objects, "Namespace", "cs-full-privileged")
      expect((jobNamespace.metadata.labels as Record<string, string>)["pod-security.kubernetes.io/enforce"]).toBe("privileged")
      expect(findManifest(objects, "Role", "cs-full-operator-jobs").metadata.namespace).toBe("cs-full-privileged")
      expect(findManifest(objects, "Role", "cs-full-operator-endpoints").metadata.namespace).toBe(deployment.metadata.namespace)
    })

    it("skips the SecurityEvent CRD, drops the keep annotation, and adds the monitoring objects", () => {
      const crds = objects.filter((object) => object.kind === "CustomResourceDefinition")
      expect(crds.map((crd) => crd.metadata.name).sort()).toEqual([
        "complianceexceptions.security.ugallu.io",
        "compliancescanresults.security.ugallu.io",
        "compliancescanruns.security.ugallu.io",
        "compliancescanschedules.security.ugallu.io"
      ])
      for (const crd of crds) expect(crd.metadata.annotations).toBeUndefined()
      expect(findManifest(objects, "ServiceMonitor").spec.endpoints).toEqual([{ port: "metrics", path: "/metrics", interval: "15s", honorLabels: true }])
      const rules = parse(readFileSync(join(repoRoot, "deploy", "monitoring", "compliance-scan.rules.yaml"), "utf8"))
      expect(findManifest(objects, "PrometheusRule").spec).toEqual(rules)
      const dashboard = findManifest(objects, "ConfigMap")
      expect(JSON.parse(dashboard.data["compliance-scan.json"])).toEqual(
        JSON.parse(readFileSync(join(repoRoot, "deploy", "monitoring", "grafana-dashboard.json"), "utf8"))
      )
    })

    it("applies to the API server (dry run, then for real), and its policy enforces the configured cap", async () => {
      // What the values point at and a cluster would have: the Prometheus Operator's CRDs
      // (stand-ins) and the PriorityClass.
      const priorityClass: Manifest = {
        apiVersion: "scheduling.k8s.io/v1",
        kind: "PriorityClass",
        metadata: { name: everyValue.priorityClassName },
        value: 100000
      }
      const standIns = [monitoringCrd("ServiceMonitor", "servicemonitors"), monitoringCrd("PrometheusRule", "prometheusrules"), priorityClass]
      for (const object of [...standIns, ...objects.filter((candidate) => !isNamespacedKind(candidate.kind) && candidate.kind !== "CustomResourceDefinition")]) {
        cleanup.push(objectPath(object))
      }
      cleanup.push(`/api/v1/namespaces/${fullRelease.namespace}`)
      await admin.apply(`/api/v1/namespaces/${fullRelease.namespace}`, {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: fullRelease.namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } }
      }, "deploy-test")
      await applyAllTwice([...standIns, ...objects], "deploy-test-helm-full")
      await expectStoredAsWritten(objects)
      const accepted = await createPodDryRun(podOf(deployment))
      expect(accepted, accepted.message).toMatchObject({ status: 201 })
      await expectOperatorPermissions({ namespace: fullRelease.namespace, name: "cs-full-sa" }, "cs-full-privileged", false)

      const denied = await eventually(() => createWithTimeout(fullRelease.namespace, "21m"), {
        what: "the 20m policy to reject timeout 21m",
        timeoutMillis: 30_000,
        intervalMillis: 500
      })
      expect(denied.message).toContain("spec.timeout 21m is above the maximum of 20m")
      expect(await createWithTimeout(fullRelease.namespace, "20m")).toBeUndefined()
    })
  })
})

// ------------------------------------------------------------------ the production bundle

describe("npm run build (the bundle the container image copies)", () => {
  const out = join(scratch, "bundle")

  it("runs: `run --help` lists every flag; no devDependency is in it; the data files are where src/ reads them", async () => {
    const build = await run("npm", ["run", "build", "--", "--out", out], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 })
    expect(build.stdout).toContain(`${out}: bin/, src/ and`)
    // The simulations (simulated cluster and Falco, the demo) stay out of the bundle.
    expect(existsSync(join(out, "sim")), "sim/ in the bundle").toBe(false)
    expect(existsSync(join(out, "src", "main.ts"))).toBe(true)
    const main = join(out, "src", "main.ts")
    expect(await runFlags(main)).toEqual(await runFlags())

    const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> }
    const devOnly = Object.entries(lock.packages).filter(([path, entry]) => path !== "" && entry.dev === true).map(([path]) => path)
    expect(devOnly).toEqual(expect.arrayContaining(["node_modules/vitest", "node_modules/typescript", "node_modules/node"]))
    expect(devOnly.filter((path) => existsSync(join(out, path)))).toEqual([])
    for (const dependency of Object.keys(JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).dependencies)) {
      expect(existsSync(join(out, "node_modules", dependency, "package.json")), dependency).toBe(true)
    }
    for (const data of [
      "src/backends/cel/packs/pod-security-baseline.yaml",
      "src/backends/kube-bench/kube-bench-severities.yaml",
      "src/backends/falco/proto"
    ]) expect(existsSync(join(out, data)), data).toBe(true)

    // Commands that read data files at run time (the CIS severity table, the CEL packs)
    // print from the bundle exactly what they print from the repository.
    const pod = join(scratch, "privileged-pod.yaml")
    writeFileSync(pod, JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web", namespace: "default" },
      spec: { containers: [{ name: "web", image: "nginx", securityContext: { privileged: true } }] }
    }))
    const report = join(repoRoot, "test", "fixtures", "kube-bench", "sample-cis-1.10-v0.15.json")
    for (const args of [
      ["kube-bench", "parse", report, "--node", "cp-1", "-o", "json"],
      ["cel", "test", "--profile", "pod-security-baseline", "--objects", pod, "-o", "json"]
    ]) {
      const [fromBundle, fromRepository] = await Promise.all([runCli(args, { main }), runCli(args)])
      expect(fromBundle.status, fromBundle.stderr).toBe(0)
      expect(JSON.parse(fromBundle.stdout).summary.fail).toBeGreaterThan(0)
      expect(fromBundle.stdout).toBe(fromRepository.stdout)
    }
  })
})
