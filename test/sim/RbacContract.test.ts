import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parseAllDocuments } from "yaml"
import { builtInKinds } from "../../src/backends/cel/CelKinds.ts"
import { CelScanner } from "../../src/backends/cel/CelScanner.ts"
import { writeLeaderEndpointSlice } from "../../src/backends/falco/LeaderEndpointSlice.ts"
import { kubeBenchJob, kubeBenchLabelKeys } from "../../src/backends/kube-bench/KubeBenchJob.ts"
import { KubeBenchScanner } from "../../src/backends/kube-bench/KubeBenchScanner.ts"
import type { ComplianceScanRun } from "../../src/api/ComplianceScanRun.ts"
import { runNowAnnotation } from "../../src/api/ComplianceScanSchedule.ts"
import { ScheduleLabel } from "../../src/api/SeriesLabels.ts"
import { Scanners, scannersOf } from "../../src/backends/Scanner.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { securityEventName } from "../../src/services/SecurityEvents.ts"
import { reportName } from "../../src/reports/OpenReports.ts"
import { reportApis } from "../../src/reports/ReportApis.ts"
import { squatter } from "../support/ForeignEvents.ts"
import { type ApiCall, recordingKubeClient } from "../support/RecordingKubeClient.ts"
import { namespaceObject, runManifest, startOperator, testNamespace, waitForPhase } from "../support/TestOperator.ts"
import { sampleReport } from "./kube-bench/KubeBenchSimulation.ts"

const operatorNamespace = "ugallu-system"
const jobNamespace = "ugallu-system-privileged"

interface Rule {
  readonly apiGroups: ReadonlyArray<string>
  readonly resources: ReadonlyArray<string>
  readonly verbs: ReadonlyArray<string>
}
interface RbacObject {
  readonly kind: string
  readonly metadata: { readonly namespace?: string }
  readonly rules?: ReadonlyArray<Rule>
}

/** deploy/rbac.yaml as grants `group/resource:verb`, per namespace ("" = the ClusterRole, everywhere). */
const deployedGrants = (): Map<string, Set<string>> => {
  const objects = parseAllDocuments(readFileSync(join(import.meta.dirname, "..", "..", "deploy", "rbac.yaml"), "utf8"))
    .map((document) => document.toJS() as RbacObject)
    .filter((object) => object.kind === "ClusterRole" || object.kind === "Role")
  const grants = new Map<string, Set<string>>()
  for (const object of objects) {
    const scope = object.kind === "ClusterRole" ? "" : object.metadata.namespace!
    const set = grants.get(scope) ?? new Set<string>()
    for (const rule of object.rules ?? []) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) for (const verb of rule.verbs) set.add(`${group || "core"}/${resource}:${verb}`)
      }
    }
    grants.set(scope, set)
  }
  return grants
}

const grantOf = (call: ApiCall) => `${call.resource}:${call.verb}`

const podTemplate = { spec: { restartPolicy: "Never", containers: [{ name: "task", image: "busybox" }] } }

/**
 * The built-in kinds the ClusterRole lets CEL rules list (group, plural, one object of each
 * in the simulated cluster): a run with one rule per kind uses every one of those grants.
 */
const celKinds: ReadonlyArray<readonly [group: string, plural: string, object: KubeObject]> = [
  ["", "namespaces", namespaceObject(testNamespace)],
  ["", "pods", { apiVersion: "v1", kind: "Pod", metadata: { name: "web", namespace: testNamespace }, spec: { containers: [{ name: "web", image: "nginx" }] } }],
  ["", "nodes", { apiVersion: "v1", kind: "Node", metadata: { name: "node-0" } }],
  ["", "services", { apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: testNamespace }, spec: { ports: [{ port: 80 }] } }],
  ["", "serviceaccounts", { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "web", namespace: testNamespace } }],
  ["", "configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: testNamespace }, data: { mode: "prod" } }],
  ["", "persistentvolumes", { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-0" }, spec: { capacity: { storage: "1Gi" } } }],
  ["apps", "deployments", { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: testNamespace }, spec: {} }],
  ["apps", "statefulsets", { apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "db", namespace: testNamespace }, spec: {} }],
  ["apps", "daemonsets", { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "agent", namespace: testNamespace }, spec: {} }],
  ["apps", "replicasets", { apiVersion: "apps/v1", kind: "ReplicaSet", metadata: { name: "web-1", namespace: testNamespace }, spec: {} }],
  // Suspended: the simulated Job controller starts no Pod for it.
  ["batch", "jobs", { apiVersion: "batch/v1", kind: "Job", metadata: { name: "once", namespace: testNamespace }, spec: { suspend: true, template: podTemplate } }],
  ["batch", "cronjobs", { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "nightly", namespace: testNamespace }, spec: { schedule: "0 1 * * *", jobTemplate: { spec: { template: podTemplate } } } }],
  ["networking.k8s.io", "ingresses", { apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name: "web", namespace: testNamespace }, spec: {} }],
  ["networking.k8s.io", "networkpolicies", { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "deny", namespace: testNamespace }, spec: { podSelector: {} } }],
  ["rbac.authorization.k8s.io", "roles", { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "reader", namespace: testNamespace }, rules: [] }],
  ["rbac.authorization.k8s.io", "clusterroles", { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "reader" }, rules: [] }],
  ["rbac.authorization.k8s.io", "rolebindings", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "reader", namespace: testNamespace },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" }
  }],
  ["rbac.authorization.k8s.io", "clusterrolebindings", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: "reader" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "reader" }
  }]
]

const node = (name: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" } }
})

describe("RBAC contract", () => {
  it.live("deploy/rbac.yaml grants exactly the API calls the operator makes, per resource and namespace", () =>
    Effect.gen(function*() {
      const sim = yield* SimulatedCluster
      const raw = yield* KubeClient
      const recording = recordingKubeClient(raw)
      // The "cis" run's Jobs finish once the test has relabelled the run (below).
      const relabelled = yield* Deferred.make<void>()
      yield* sim.setJobExecutor(({ job }) =>
        Effect.as(
          job.metadata.labels?.[kubeBenchLabelKeys.runName] === "cis" ? Deferred.await(relabelled) : Effect.void,
          { _tag: "Succeeded" as const, log: sampleReport }
        )
      )

      // Paths that only a history takes: a Result left by an earlier leader (upsert = get + update),
      // a Kubernetes Event recorded before (get + patch), a squatted SecurityEvent name (get).
      const resumed = yield* raw.create(Resources.ComplianceScanRun, runManifest("rewritten", { backend: "cel", profile: "pod-security-baseline" }))
      yield* raw.create(Resources.ComplianceScanResult, {
        apiVersion: "security.ugallu.io/v1alpha1",
        kind: "ComplianceScanResult",
        metadata: { name: "rewritten", namespace: testNamespace },
        spec: { derivedFromRun: { name: "rewritten", uid: resumed.metadata.uid! }, backend: "cel", checks: [], summary: { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 } }
      })
      yield* raw.create(Resources.Event, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `rewritten.${resumed.metadata.uid!.slice(0, 8)}.started`, namespace: testNamespace },
        involvedObject: { kind: "ComplianceScanRun", name: "rewritten", namespace: testNamespace },
        reason: "Started",
        message: "Started",
        count: 1
      })
      yield* raw.create(Resources.SecurityEvent, squatter(securityEventName(resumed.metadata.uid!, "ComplianceScanStarted"), "someone-else"))

      // A kube-bench Job a previous leader started: the operator adopts it (create -> AlreadyExists -> get).
      const adopted = yield* raw.create(Resources.ComplianceScanRun, runManifest("adopted", { backend: "kube-bench", benchmark: "cis-1.10" }))
      yield* raw.create(Resources.Job, kubeBenchJob({
        run: adopted as unknown as ComplianceScanRun,
        nodeName: "node-1",
        namespace: jobNamespace,
        image: "kube-bench",
        benchmark: "cis-1.10",
        mounts: [],
        activeDeadlineSeconds: 600
      }))

      // An exception: read for every Result, its status written by the exception controller.
      yield* raw.create(Resources.ComplianceException, {
        apiVersion: "security.ugallu.io/v1alpha1",
        kind: "ComplianceException",
        metadata: { name: "accepted", namespace: testNamespace, creationTimestamp: new Date().toISOString() },
        spec: {
          match: { checks: ["pss-baseline-*"] },
          justification: "accepted risk",
          approvedBy: "security-team",
          expiresAt: new Date(Date.now() + 86_400_000).toISOString()
        }
      })
      // Reports left by an earlier leader (create -> AlreadyExists -> get + update), in both
      // report APIs: the namespaced ones of "reported", the cluster ones of "cis".
      const reportOf = (run: string) => ({ metadata: { name: run, namespace: testNamespace } }) as unknown as ComplianceScanRun
      for (const api of Object.values(reportApis)) {
        yield* raw.create(api.namespaced, {
          apiVersion: api.namespaced.apiVersion,
          kind: api.namespaced.kind,
          metadata: { name: reportName(reportOf("reported"), 1), namespace: testNamespace }
        })
        yield* raw.create(api.cluster, { apiVersion: api.cluster.apiVersion, kind: api.cluster.kind, metadata: { name: reportName(reportOf("cis"), 1) } })
      }

      const scanners = Layer.effect(
        Scanners,
        Effect.gen(function*() {
          return scannersOf([yield* KubeBenchScanner, yield* CelScanner])
        })
      ).pipe(Layer.provide(Layer.mergeAll(KubeBenchScanner.layer(), CelScanner.layer())))
      yield* startOperator({
        kube: recording.client,
        scanners,
        config: {
          leaderElect: true,
          leaderElectionNamespace: operatorNamespace,
          leaseDurationMillis: 2_000,
          renewDeadlineMillis: 1_500,
          retryPeriodMillis: 200,
          jobNamespace,
          identity: "rbac-contract",
          reportApi: "both"
        }
      })
      // A run relabelled while it scans: its terminal write meets a Conflict and reads the run again (get).
      yield* raw.create(Resources.ComplianceScanRun, runManifest("cis", { backend: "kube-bench", benchmark: "cis-1.10" }))
      yield* waitForPhase("cis", ["Running"], "20 seconds")
      yield* raw.patch(Resources.ComplianceScanRun, testNamespace, "cis", { metadata: { labels: { team: "platform" } } })
      yield* Deferred.succeed(relabelled, undefined)
      // The default profile reads NetworkPolicies (ugallu.cel.netpol-present).
      yield* raw.create(Resources.ComplianceScanRun, runManifest("legacy", { backend: "cel", profile: "default" }))
      // Rules on every built-in kind the ClusterRole lists.
      yield* raw.create(Resources.ComplianceScanRun, runManifest("kinds", {
        backend: "cel",
        cel: {
          rules: celKinds.map(([group, plural]) => ({
            id: `named-${plural}`,
            severity: "low",
            match: { apiGroups: [group], resources: [plural] },
            expression: "object.metadata.name != ''"
          }))
        }
      }))
      // A finding about a Pod: a namespaced report (created for "reported-2", updated for "reported").
      const podRule = { rules: [{ id: "never", severity: "low", match: { resources: ["pods"] }, expression: "false" }] }
      yield* raw.create(Resources.ComplianceScanRun, runManifest("reported", { backend: "cel", cel: podRule }))
      yield* raw.create(Resources.ComplianceScanRun, runManifest("reported-2", { backend: "cel", cel: podRule }))
      for (const name of ["rewritten", "adopted", "cis", "legacy", "kinds", "reported", "reported-2"]) yield* waitForPhase(name, ["Succeeded"], "20 seconds")
      // Deleting a run deletes its reports the garbage collector cannot reach (owner references
      // stay within one namespace): team-a's and the cluster's, in both APIs.
      yield* raw.delete(Resources.ComplianceScanRun, testNamespace, "reported-2")
      const deletedReports = () => recording.calls().filter((call) => call.verb === "delete" && /reports$/u.test(call.resource)).length
      while (deletedReports() < 4) yield* Effect.sleep("20 millis")
      // A schedule asked for a run now, with no history kept: its run is created, then deleted.
      yield* raw.create(Resources.ComplianceScanSchedule, {
        apiVersion: "security.ugallu.io/v1alpha1",
        kind: "ComplianceScanSchedule",
        metadata: { name: "yearly", namespace: testNamespace, annotations: { [runNowAnnotation]: "rbac" } },
        spec: { schedule: "@yearly", successfulRunsHistoryLimit: 0, runTemplate: { backend: "cel", profile: "pod-security-baseline" } }
      })
      for (const name of ["rewritten", "adopted", "cis", "legacy", "kinds"]) yield* waitForPhase(name, ["Succeeded"], "20 seconds")
      const scheduleDone = Effect.gen(function*() {
        const schedule = yield* raw.get(Resources.ComplianceScanSchedule, testNamespace, "yearly")
        const runs = (yield* raw.list(Resources.ComplianceScanRun, { namespace: testNamespace, labelSelector: `${ScheduleLabel}=yearly` })).items
        return (schedule.status as { scoredRun?: string } | undefined)?.scoredRun !== undefined && runs.length === 0
      })
      while (!(yield* scheduleDone)) yield* Effect.sleep("50 millis")
      // Each kind was listed and its object evaluated (a refused list would be an `error` check).
      const kinds = yield* raw.get(Resources.ComplianceScanResult, testNamespace, "kinds")
      const checks = (kinds.spec as { checks: ReadonlyArray<{ checkID: string; outcome: string; subjectCounts?: { pass?: number } }> }).checks
      expect(checks.map((check) => [check.checkID, check.outcome, (check.subjectCounts?.pass ?? 0) > 0])).toEqual(
        celKinds.map(([, plural]) => [`named-${plural}`, "pass", true])
      )
      // Leadership renewed at least once (update).
      const renewed = () => recording.calls().some((call) => call.verb === "update" && call.resource === "coordination.k8s.io/leases")
      while (!renewed()) yield* Effect.sleep("50 millis")
      // The leader routes the Falco receiver Service to itself (create), then to a new Pod IP
      // after a takeover (update); the full wiring runs in test/cluster/FalcoLeaderRouting.test.ts.
      const endpoint = { service: "compliance-scan-falco", namespace: operatorNamespace, podName: "compliance-scan-0", port: 8443 }
      expect(yield* writeLeaderEndpointSlice(recording.client, { ...endpoint, podIP: "10.0.0.7" })).toBe("created")
      expect(yield* writeLeaderEndpointSlice(recording.client, { ...endpoint, podIP: "10.0.0.8" })).toBe("updated")

      const used = new Map<string, Set<string>>()
      for (const call of recording.calls()) {
        const set = used.get(call.namespace) ?? new Set<string>()
        set.add(grantOf(call))
        used.set(call.namespace, set)
      }
      const granted = deployedGrants()
      const cluster = granted.get("") ?? new Set<string>()
      // Less: every call is allowed where it was made.
      const denied = recording.calls().filter((call) => !cluster.has(grantOf(call)) && !granted.get(call.namespace)?.has(grantOf(call)))
      expect([...new Set(denied.map((call) => `${call.namespace || "(cluster)"} ${grantOf(call)}`))].sort()).toEqual([])
      // More: every grant is used; a Role's in its namespace, the ClusterRole's somewhere.
      const everywhere = new Set([...used.values()].flatMap((set) => [...set]))
      const unusedCluster = [...cluster].filter((grant) => !everywhere.has(grant))
      const unusedRoles = [...granted.entries()].filter(([scope]) => scope !== "").flatMap(([scope, set]) =>
        [...set].filter((grant) => !(used.get(scope)?.has(grant) ?? false)).map((grant) => `${scope} ${grant}`)
      )
      expect({ unusedCluster: unusedCluster.sort(), unusedRoles: unusedRoles.sort() }).toEqual({ unusedCluster: [], unusedRoles: [] })
      // Nothing in the ClusterRole that only one namespace needs (a Role's job).
      const onlyIn = (grant: string) => [...used.entries()].filter(([, set]) => set.has(grant)).map(([scope]) => scope)
      expect([...cluster].filter((grant) => onlyIn(grant).every((scope) => scope === operatorNamespace || scope === jobNamespace))).toEqual([])
    }).pipe(
      Effect.provide(SimulatedCluster.layer({
        objects: [
          namespaceObject(operatorNamespace),
          namespaceObject(jobNamespace),
          node("node-1"),
          namespaceObject("team-a"),
          { apiVersion: "v1", kind: "Pod", metadata: { name: "elsewhere", namespace: "team-a" }, spec: { containers: [{ name: "web", image: "nginx" }] } },
          ...celKinds.map(([, , object]) => object)
        ],
        resources: builtInKinds
      }))
    ), 60_000)
})
