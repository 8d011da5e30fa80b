import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { parseAllDocuments } from "yaml"
import type { Check } from "../../src/api/Check.ts"
import type { ComplianceScanResult } from "../../src/api/ComplianceScanResult.ts"
import type { ComplianceScanRun } from "../../src/api/ComplianceScanRun.ts"
import { ScheduleLabel } from "../../src/api/SeriesLabels.ts"
import { simulatedAlert, toHttpJson } from "../../sim/falco/SimulatedAlerts.ts"
import { generateTestCertificates, type TestCertificates } from "../../sim/falco/TestCertificates.ts"
import { kubeBenchArgs, kubeBenchContainerName } from "../../src/backends/kube-bench/KubeBenchJob.ts"
import { buildResult, resultByteBudget } from "../../src/reconciler/ResultBuilder.ts"
import { buildReports, labels } from "../../src/reports/OpenReports.ts"
import { type ReportApiName, reportApis } from "../../src/reports/ReportApis.ts"
import { reportApiReprobeMillis } from "../../src/reports/ReportWriter.ts"
import { resourcePath as apiPath } from "../../src/services/kube/live/ResourcePaths.ts"
import type { ResourceType } from "../../src/services/kube/Resources.ts"
import { post } from "../sim/falco/FalcoFixtures.ts"
import { expectOneToOne, resultsOf } from "../support/ReportWalk.ts"
import "./harness/ClusterInfo.ts"
import { applyAll, connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { writeCriLog } from "./harness/CriLog.ts"
import { eventually, sleep } from "./harness/Eventually.ts"
import { freePort } from "./harness/FreePort.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import { repoRoot } from "./harness/Manifests.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { runRealKubeBenchJob } from "./harness/RealKubeBench.ts"
import { resourcePath } from "./harness/ResourcePaths.ts"
import { podsPath, resultPath, runManifest, runPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * OpenReports on the real API server with the official CRDs (fetched from their Go modules
 * by scripts/openreports-crds.sh): the operator, as a process under deploy/'s RBAC, writes
 * the reports of a kube-bench, a CEL and a Falco run; each is read back equal to what the
 * operator built from the stored Result, passes strict field validation, and its results
 * correspond one to one with the Result's checks.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let teamA: string
let teamB: string
let operator: OperatorProcess | undefined
let certificates: TestCertificates
let receiverPort: number
const certificateScope = Effect.runSync(Scope.make())
const token = randomBytes(3).toString("hex")
let crds: Array<Json> = []

const crdDir = () => execFileSync(join(repoRoot, "scripts", "openreports-crds.sh"), { encoding: "utf8" }).trim().split("\n").at(-1)!
const readCrds = (dir: string) =>
  readdirSync(dir).filter((file) => file.endsWith(".yaml")).flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((document) => document.toJS() as Json).filter((object) => object?.kind === "CustomResourceDefinition")
  )

const startOperator = (name: string, flags: ReadonlyArray<string> = []) =>
  startTestOperator(cluster, identity, {
    name,
    namespace,
    flags: [
      `--falco-receiver-bind-address=127.0.0.1:${receiverPort}`,
      `--falco-receiver-cert-file=${certificates.server.certFile}`,
      `--falco-receiver-key-file=${certificates.server.keyFile}`,
      `--falco-receiver-client-ca-file=${certificates.ca.certFile}`,
      ...flags
    ]
  })

const pod = (name: string, privileged: boolean): Json => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name },
  spec: { containers: [{ name: "app", image: `registry.example.com/${name}:1`, ...(privileged ? { securityContext: { privileged: true } } : {}) }] }
})

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "openreports")
  teamA = await createNamespace(admin, "or-team-a")
  teamB = await createNamespace(admin, "or-team-b")
  for (const team of [teamA, teamB]) {
    await admin.mergePatch(resourcePath("v1", "Namespace", undefined, team), { metadata: { labels: { "openreports-test": token } } })
  }
  await admin.create(podsPath(teamA), pod("privileged", true))
  await admin.create(podsPath(teamA), pod("plain", false))
  await admin.create(podsPath(teamB), pod("privileged-b", true))
  await admin.create(resourcePath("apps/v1", "Deployment", teamA), {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web" },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "registry.example.com/web:1" }] } }
    }
  })
  // What the kube-bench Jobs' containers print (the real kube-bench over its real cfg/).
  const args = kubeBenchArgs({ backend: "kube-bench" } as ComplianceScanRun["spec"], "cis-1.10")
  writeCriLog(cluster.podLogFiles.master[kubeBenchContainerName]!, runRealKubeBenchJob(cluster.cacheDir, [...args, "--targets", "master"]).lines)
  writeCriLog(cluster.podLogFiles.workers[kubeBenchContainerName]!, runRealKubeBenchJob(cluster.cacheDir, [...args, "--targets", "node"]).lines)
  certificates = await Effect.runPromise(generateTestCertificates({ serverIpAddresses: ["127.0.0.1"] }).pipe(Effect.provideService(Scope.Scope, certificateScope)))
  receiverPort = await freePort()
  crds = readCrds(join(crdDir(), "openreports"))
  // Not installed yet: the first test installs them while the operator runs.
  for (const crd of crds) await admin.remove(resourcePath("apiextensions.k8s.io/v1", "CustomResourceDefinition", undefined, crd.metadata.name))
  operator = await startOperator("openreports-operator")
}, 300_000)

afterAll(async () => {
  await operator?.stop()
  for (const name of [namespace, teamA, teamB]) if (name !== undefined) await deleteNamespace(admin, name)
  for (const crd of crds) await admin.remove(resourcePath("apiextensions.k8s.io/v1", "CustomResourceDefinition", undefined, crd.metadata.name))
  admin.close()
  await Effect.runPromise(Scope.close(certificateScope, Exit.void))
})

const installCrds = async (objects: ReadonlyArray<Json>) => {
  await applyAll(admin, objects)
  await eventually(async () => {
    for (const crd of objects) {
      const current = await admin.get(resourcePath("apiextensions.k8s.io/v1", "CustomResourceDefinition", undefined, crd.metadata.name))
      const established = (current.status?.conditions ?? []).some((entry: Json) => entry.type === "Established" && entry.status === "True")
      if (!established) return undefined
    }
    return true
  }, { what: "the report CRDs to be Established", timeoutMillis: 60_000 })
}

const reportsPath = (resource: ResourceType, namespace?: string, name?: string) =>
  apiPath(resource, { namespace, name })

/** Every report of `api` a run wrote (by its run-uid label): cluster report(s) first, then by namespace and name. */
const reportsOfRun = async (api: ReportApiName, uid: string): Promise<Array<Json>> => {
  const selector = { labelSelector: `${labels.runUID}=${uid}` }
  const cluster = await admin.list(reportsPath(reportApis[api].cluster), selector)
  const namespaced = await admin.list(reportsPath(reportApis[api].namespaced), selector)
  const key = (report: Json) => `${report.metadata.namespace ?? ""}/${report.metadata.name}`
  return [...cluster, ...namespaced].sort((a, b) => key(a).localeCompare(key(b)))
}

const condition = (run: Json, type: string) => (run.status?.conditions ?? []).find((entry: Json) => entry.type === type)

/** The server's own metadata removed: what the operator wrote, as it reads back. */
const asWritten = (report: Json): Json => {
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, generation: _g, managedFields: _m, ...metadata } = report.metadata
  return { ...report, metadata }
}

/**
 * The reports read back are exactly what the operator builds from the stored Result (so the
 * server pruned nothing), strict field validation accepts each, and the results correspond
 * one to one with the Result's checks. Returns the reports.
 */
const expectReportsOf = async (runName: string, api: ReportApiName = "openreports"): Promise<Array<Json>> => {
  const run = await admin.get(runPath(namespace, runName))
  expect(condition(run, "ReportsWritten")).toMatchObject({ status: "True", reason: "ReportsWritten" })
  const result = (await admin.get(resultPath(namespace, runName))) as ComplianceScanResult
  const reports = await reportsOfRun(api, run.metadata.uid)
  const namespaces = new Set((await admin.list(resourcePath("v1", "Namespace"))).map((entry) => String(entry.metadata.name)))
  const expected = buildReports(reportApis[api], {
    run: run as ComplianceScanRun,
    result,
    finishedAt: condition(run, "Scanned").lastTransitionTime,
    budget: resultByteBudget,
    namespaces
  })
  const key = (report: Json) => `${report.metadata.namespace ?? ""}/${report.metadata.name}`
  expect(reports.map(asWritten)).toEqual([...expected].sort((a, b) => key(a).localeCompare(key(b))))
  for (const report of expected) {
    const copy = { ...report, metadata: { ...report.metadata, name: `${report.metadata.name}-strict` } }
    const resource = report.metadata.namespace === undefined ? reportApis[api].cluster : reportApis[api].namespaced
    const answer = await admin.raw("POST", `${reportsPath(resource, report.metadata.namespace)}?fieldValidation=Strict&dryRun=All`, JSON.stringify(copy))
    expect(answer.status, answer.body).toBe(201)
  }
  expectOneToOne(result.spec.checks, reports)
  return reports
}

const createRunWithLabels = (name: string, spec: Json, runLabels: Record<string, string> = {}) => {
  const manifest = runManifest(namespace, name, spec)
  return admin.create(runPath(namespace), { ...manifest, metadata: { ...manifest.metadata, labels: runLabels } })
}

/** Rules over Pods, Deployments (of the two team namespaces) and the Namespaces themselves. */
const celRules = (teams: Json = { matchLabels: { "openreports-test": token } }) => ({
  rules: [
    {
      id: "no-privileged",
      severity: "critical",
      match: { resources: ["pods"], namespaceSelector: teams },
      expression: "!object.spec.containers.exists(c, has(c.securityContext) && has(c.securityContext.privileged) && c.securityContext.privileged)"
    },
    {
      id: "two-replicas",
      severity: "low",
      match: { apiGroups: ["apps"], resources: ["deployments"], namespaceSelector: teams },
      expression: "has(object.spec.replicas) && object.spec.replicas >= 2"
    },
    {
      id: "owner-label",
      severity: "medium",
      match: { resources: ["namespaces"], labelSelector: teams },
      expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
    }
  ]
})

describe("OpenReports on the real API server", () => {
  it("without the CRDs no report is written (and the run says so); installing the official CRDs turns reports on without a restart", async () => {
    await withOperatorLogs([operator], async () => {
      await createRunWithLabels("before", { backend: "cel", cel: celRules() })
      const before = await waitForRun(admin, namespace, "before")
      expect(before.status.phase).toBe("Succeeded")
      expect(condition(before, "ReportsWritten")).toMatchObject({ status: "True", reason: "NoReportApi" })
      // The operator last asked what is served before "before" finished; a run asks again once that answer is old.
      const askAgainAt = Date.now() + reportApiReprobeMillis

      await installCrds(crds)
      await sleep(Math.max(0, askAgainAt - Date.now()))
      await createRunWithLabels("after", { backend: "cel", cel: celRules() })
      const after = await waitForRun(admin, namespace, "after")
      expect(after.status.phase).toBe("Succeeded")
      await expectReportsOf("after")
      // The change of what is served is logged (JSON in the log line, quotes escaped).
      const detected = operator!.process.tail(400).split("\n").filter((line) => line.includes("report APIs detected"))
      expect(detected.map((line) => /served\\?":\\?"([a-z,]+)\\?".*writing\\?":\\?"([a-z,]+)/u.exec(line)?.slice(1, 3))).toEqual([["none", "none"], ["openreports", "openreports"]])
    })
  })

  it("a CEL run over several namespaces and kinds: a Report per namespace, a ClusterReport for the Namespaces", async () => {
    await withOperatorLogs([operator], async () => {
      await createRunWithLabels("cel", { backend: "cel", cel: celRules() })
      const run = await waitForRun(admin, namespace, "cel")
      expect(run.status.phase).toBe("Succeeded")
      const reports = await expectReportsOf("cel")
      expect(reports.map((report) => `${report.kind}/${report.metadata.namespace ?? ""}`)).toEqual(["ClusterReport/", `Report/${teamA}`, `Report/${teamB}`])
      const inTeamA = resultsOf(reports[1]!)
      expect(inTeamA.flatMap((entry) => (entry.resources ?? []).map((resource) => `${entry.policy}:${entry.result}:${resource.kind}/${resource.name}`)).sort()).toEqual([
        "no-privileged:fail:Pod/privileged",
        "two-replicas:fail:Deployment/web"
      ])
      expect(inTeamA.find((entry) => entry.policy === "no-privileged")).toMatchObject({ severity: "critical", source: "compliance-scan/cel", category: "cel" })
      expect(resultsOf(reports[0]!).find((entry) => entry.policy === "owner-label")!.resources!.map((resource) => resource.name).sort()).toEqual([teamA, teamB].sort())
    })
  })

  it("a kube-bench run: one ClusterReport with every check, node properties from what the operator detected", async () => {
    await withOperatorLogs([operator], async () => {
      await createRunWithLabels("cis", { backend: "kube-bench", benchmark: "cis-1.10", timeout: "5m" })
      const run = await waitForRun(admin, namespace, "cis", { timeoutMillis: 180_000 })
      expect(run.status.phase).toBe("Succeeded")
      const reports = await expectReportsOf("cis")
      expect(reports.map((report) => report.kind)).toEqual(["ClusterReport"])
      const withNodes = resultsOf(reports[0]!).filter((entry) => (entry.resources ?? []).some((resource) => resource.kind === "Node"))
      expect(withNodes.length).toBeGreaterThan(50)
      // What the operator detected of each node (run.status.nodes): platform, and version when the kubelet says it.
      expect((run.status.nodes as Array<Json>).length).toBeGreaterThan(1)
      const names = withNodes[0]!.resources!.map((resource) => resource.name)
      const nodes = (run.status.nodes as Array<Json>).filter((node) => names.includes(node.name))
      const versions = [...new Set(nodes.map((node) => node.version).filter((version) => version !== undefined))].join(", ")
      expect(withNodes[0]!.properties).toMatchObject({ benchmark: "cis-1.10", platform: "kubernetes", node: nodes.map((node) => node.name).join(", ") })
      expect(withNodes[0]!.properties.detectedVersion).toBe(versions === "" ? undefined : versions)
      expect(withNodes[0]!.source).toBe("compliance-scan/kube-bench")
    })
  })

  it("a Falco run: Pods of existing namespaces in their Report, hosts and Pods of absent namespaces in the ClusterReport", async () => {
    await withOperatorLogs([operator], async () => {
      const sent = Date.now()
      for (let index = 0; index < 20; index++) {
        const answer = await Effect.runPromise(post({
          port: receiverPort,
          ca: certificates.ca.cert,
          client: certificates.client,
          body: JSON.stringify(toHttpJson(simulatedAlert(index, sent)))
        }))
        expect(answer.status).toBe(200)
      }
      await createRunWithLabels("falco", { backend: "falco", falco: { window: "2m" } })
      const run = await waitForRun(admin, namespace, "falco", { timeoutMillis: 180_000 })
      expect(run.status.phase).toBe("Succeeded")
      const reports = await expectReportsOf("falco")
      // kube-system exists; the simulated workloads' payments and web do not.
      expect(reports.map((report) => `${report.kind}/${report.metadata.namespace ?? ""}`)).toEqual(["ClusterReport/", "Report/kube-system"])
      const clusterResources = resultsOf(reports[0]!).flatMap((entry) => entry.resources ?? [])
      expect(new Set(clusterResources.map((resource) => resource.kind))).toContain("Host")
      expect(clusterResources.some((resource) => resource.kind === "Pod" && resource.namespace === "payments")).toBe(true)
      expect(resultsOf(reports[1]!).every((entry) => entry.source === "compliance-scan/falco")).toBe(true)
    })
  })

  it("a Result too big for one report is split, every part accepted, in both APIs; written after a restart from the stored Result", async () => {
    await operator?.stop()
    operator = undefined
    const wgpolicy = readCrds(join(crdDir(), "wgpolicyk8s"))
    crds = [...crds, ...wgpolicy]
    await installCrds(wgpolicy)
    // A run whose scan is done and whose Result is stored (a previous leader's work); only the reports remain.
    const created = await createRunWithLabels("big", { backend: "cel" })
    const checks: ReadonlyArray<Check> = Array.from({ length: 3000 }, (_, index) => ({
      checkID: `big-rule-${String(index).padStart(4, "0")}`,
      title: `Rule ${index}: a title as long as the ones of real rule packs are`,
      outcome: "fail",
      severity: "medium",
      subjects: [{ kind: "Pod", name: `pod-${index}`, namespace: teamA, outcome: "fail", message: `pod-${index} breaks rule ${index}` }]
    }))
    const now = new Date().toISOString().replace(/\.\d{3}Z$/u, "Z")
    const { result } = buildResult(created as ComplianceScanRun, checks, undefined, now)
    const { status: _status, ...main } = result
    await admin.create(resultPath(namespace), main)
    const stored = await admin.get(resultPath(namespace, "big"))
    expect(stored.spec.checks).toHaveLength(3000)
    const step = (type: string) => ({ type, status: "True", reason: type === "Scanned" ? "ScanCompleted" : type, message: "", lastTransitionTime: now })
    await admin.mergePatch(`${runPath(namespace, "big")}/status`, {
      status: {
        phase: "Running",
        startTime: now,
        summary: { pass: 0, fail: 3000, warn: 0, skip: 0, error: 0 },
        resultRef: { name: "big" },
        conditions: [{ ...step("Succeeded"), status: "Unknown", reason: "Running" }, step("Scanned"), step("ResultWritten")]
      }
    })
    operator = await startOperator("openreports-both", ["--report-api=both"])
    await withOperatorLogs([operator], async () => {
      const run = await waitForRun(admin, namespace, "big", { timeoutMillis: 120_000 })
      expect(run.status.phase).toBe("Succeeded")
      for (const api of ["openreports", "wgpolicyk8s"] as const) {
        const reports = await expectReportsOf("big", api)
        const parts = reports.filter((report) => report.metadata.namespace === teamA)
        expect(parts.length).toBeGreaterThanOrEqual(2)
        for (const part of parts) {
          expect(Buffer.byteLength(JSON.stringify(asWritten(part)))).toBeLessThanOrEqual(resultByteBudget)
          expect(part.metadata.annotations["security.ugallu.io/report-parts"]).toBe(String(parts.length))
        }
        expect(parts.flatMap(resultsOf)).toHaveLength(3000)
      }
    })
  })

  it("a scheduled series keeps only the latest run's reports; deleting a run removes its reports everywhere", async () => {
    await withOperatorLogs([operator], async () => {
      const series = { [ScheduleLabel]: `nightly-${token}` }
      const first = await createRunWithLabels("nightly-1", { backend: "cel", cel: celRules() }, series)
      await waitForRun(admin, namespace, "nightly-1")
      for (const api of ["openreports", "wgpolicyk8s"] as const) {
        expect((await reportsOfRun(api, first.metadata.uid)).map((report) => report.metadata.namespace ?? "")).toEqual(["", teamA, teamB])
      }
      // The next run of the series finds findings in team A only.
      const second = await createRunWithLabels("nightly-2", { backend: "cel", cel: celRules({ matchLabels: { "kubernetes.io/metadata.name": teamA } }) }, series)
      await waitForRun(admin, namespace, "nightly-2")
      for (const api of ["openreports", "wgpolicyk8s"] as const) {
        await expectReportsOf("nightly-2", api)
        const bySeries = [
          ...(await admin.list(reportsPath(reportApis[api].cluster), { labelSelector: `${ScheduleLabel}=nightly-${token}` })),
          ...(await admin.list(reportsPath(reportApis[api].namespaced), { labelSelector: `${ScheduleLabel}=nightly-${token}` }))
        ]
        expect(bySeries.map((report) => `${report.metadata.namespace ?? ""}:${report.metadata.labels[labels.run]}`).sort()).toEqual([":nightly-2", `${teamA}:nightly-2`])
        expect(await reportsOfRun(api, first.metadata.uid)).toEqual([])
      }
      // Deleting the run removes its reports: the other namespace's and the cluster's (no owner reaches them).
      await admin.remove(runPath(namespace, "nightly-2"))
      const cel = await admin.get(runPath(namespace, "cel"))
      await admin.remove(runPath(namespace, "cel"))
      for (const uid of [second.metadata.uid, cel.metadata.uid]) {
        await eventually(async () => {
          const left = [...(await reportsOfRun("openreports", uid)), ...(await reportsOfRun("wgpolicyk8s", uid))]
          return left.length === 0 ? true : undefined
        }, { what: `the reports of run ${uid} to be deleted`, timeoutMillis: 30_000 })
      }
    })
  })

  it("the chart installs the official OpenReports CRDs only with openReports.installCRDs, and only once they were fetched into it", () => {
    const helm = join(cluster.cacheDir, "bin", "helm")
    const kubeVersion = /^kubernetes=(\S+)$/mu.exec(readFileSync(join(cluster.cacheDir, "manifest.txt"), "utf8"))![1]!
    const scratch = mkdtempSync(join(tmpdir(), "openreports-chart-"))
    try {
      const chart = join(scratch, "compliance-scan")
      cpSync(join(repoRoot, "deploy", "helm", "compliance-scan"), chart, { recursive: true })
      rmSync(join(chart, "files", "openreports-crds"), { recursive: true, force: true })
      const template = (...values: Array<string>) =>
        spawnSync(helm, ["template", "cs", chart, "--kube-version", kubeVersion, "--skip-tests", ...values.flatMap((value) => ["--set", value])], { encoding: "utf8" })
      const kinds = (text: string) =>
        parseAllDocuments(text).map((document) => document.toJS() as Json).filter((object) => object?.kind === "CustomResourceDefinition").map((crd) => crd.metadata.name).sort()
      const byDefault = template()
      expect(byDefault.status, byDefault.stderr).toBe(0)
      expect(kinds(byDefault.stdout).filter((name) => name.endsWith("openreports.io"))).toEqual([])
      const unfetched = template("openReports.installCRDs=true")
      expect(unfetched.status).not.toBe(0)
      expect(unfetched.stderr).toContain("openReports.installCRDs: the chart was packaged without files/openreports-crds/")
      mkdirSync(join(chart, "files", "openreports-crds"))
      for (const file of readdirSync(join(crdDir(), "openreports"))) cpSync(join(crdDir(), "openreports", file), join(chart, "files", "openreports-crds", file))
      const installed = template("openReports.installCRDs=true")
      expect(installed.status, installed.stderr).toBe(0)
      const rendered = parseAllDocuments(installed.stdout).map((document) => document.toJS() as Json).filter((object) => object?.kind === "CustomResourceDefinition" && object.metadata.name.endsWith("openreports.io"))
      expect(rendered.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))).toEqual(readCrds(join(crdDir(), "openreports")).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)))
    } finally {
      rmSync(scratch, { recursive: true, force: true })
    }
  })
})
