import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Check } from "../../../src/api/Check.ts"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { builtInKinds } from "../../../src/backends/cel/CelKinds.ts"
import { CelScanner } from "../../../src/backends/cel/CelScanner.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import type { KubeClient, ListOptions } from "../../../src/services/kube/KubeClient.ts"
import { type KubeObject, pageOfList } from "../../../src/services/kube/KubeObject.ts"
import { SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"
import { kindPackTable } from "../../unit/cel/KindFixtures.ts"
import { namespace, restrictedPod, samplePods, violating, workloadOf } from "../../unit/cel/PodFixtures.ts"
import { withListPage } from "./ListPageClient.ts"

/**
 * A scan asks its client to leave out of each listed kind what no rule on it (and no
 * variable) may read: `metadata.managedFields` and the members `object` is never selected
 * by. The verdicts are those of a scan that parses everything, with a client that does leave
 * them out the way LiveKubeClient does (null for the members, managedFields gone).
 */

const running = (pod: KubeObject, phase: string): KubeObject => ({ ...pod, status: { phase, containerStatuses: [{ name: "app", ready: phase === "Running" }] } })

const world: ReadonlyArray<KubeObject> = [
  namespace("shop", { team: "payments" }),
  running(restrictedPod("web", "shop"), "Running"),
  running(violating("root", (pod) => {
    pod.metadata.namespace = "shop"
    pod.spec.securityContext.runAsUser = 0
  }), "Failed"),
  {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "managed", namespace: "shop", managedFields: [{ manager: "kubectl", operation: "Update" }] },
    spec: { containers: [{ name: "app", image: "registry.example.com/app:1" }] }
  },
  { apiVersion: "v1", kind: "Secret", metadata: { name: "token", namespace: "shop" }, type: "Opaque", data: { password: "aHVudGVyMg==" } }
]

const runWith = (spec: ComplianceScanRun["spec"]): ComplianceScanRun => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "reads", namespace: "ugallu-system", uid: "uid-reads" },
  spec
})

/** What the live client does with `omitManagedFields` and `onlyMembers`, on a copy. */
const leftOut = (object: KubeObject, options: ListOptions | undefined): KubeObject => {
  const copy = structuredClone(object) as Record<string, any>
  if (options?.omitManagedFields === true) delete copy.metadata.managedFields
  const kept = options?.onlyMembers
  if (kept !== undefined) {
    for (const [key, value] of Object.entries(copy)) {
      if (!["apiVersion", "kind", "metadata", ...kept].includes(key) && typeof value === "object" && value !== null) copy[key] = null
    }
  }
  return copy as KubeObject
}

/** The simulated KubeClient with a `listPage` that leaves out what it is asked to, recording what that was per kind. */
const leavingOut = (asked: Map<string, ListOptions | undefined>) =>
  withListPage((kube) => (resource, options) =>
    Effect.map(kube.list(resource, options), (list) => {
      asked.set(resource.plural, options)
      return pageOfList({ ...list, items: list.items.map((item) => leftOut(item, options)) })
    })
  )

const checksOf = (run: ComplianceScanRun, client: Layer.Layer<KubeClient, never, KubeClient>, objects: ReadonlyArray<KubeObject> = world) =>
  Effect.gen(function*() {
    const scanner = yield* CelScanner
    return (yield* Effect.scoped(scanner.scan({ run, deadline: Date.now() + 60_000, reportProgress: () => Effect.void }))).checks
  }).pipe(
    Effect.provide(CelScanner.layer().pipe(Layer.provideMerge(Layer.mergeAll(client.pipe(Layer.provideMerge(SimulatedCluster.layer({ objects, resources: builtInKinds }))), Metrics.layerTest))))
  )

const verdicts = (checks: ReadonlyArray<Check>) => checks.map((check) => ({ id: check.checkID, counts: check.subjectCounts, subjects: check.subjects }))

describe("what a cel scan parses of each object", () => {
  it.effect("a built-in pack: only the Pods' spec (the pack's variables read it too), no managedFields; the same verdicts", () =>
    Effect.gen(function*() {
      const run = runWith({ backend: "cel", profile: "pod-security-restricted" })
      const asked = new Map<string, ListOptions | undefined>()
      const parsedLess = yield* checksOf(run, leavingOut(asked))
      expect(asked.get("pods")).toMatchObject({ omitManagedFields: true, onlyMembers: ["metadata", "spec"] })
      expect(verdicts(parsedLess)).toEqual(verdicts(yield* checksOf(run, Layer.empty as never)))
      expect(parsedLess.find((check) => check.checkID === "pss-restricted-run-as-user")?.subjectCounts).toMatchObject({ pass: 2, fail: 1 })
    }))

  it.effect("rules that read status, managedFields or a Secret: what each kind's rules read, a Secret's type only", () =>
    Effect.gen(function*() {
      const run = runWith({
        backend: "cel",
        cel: {
          rules: [
            { id: "not-failed", severity: "high", match: { resources: ["pods"] }, expression: "!has(object.status) || object.status.phase != 'Failed'" },
            { id: "no-kubectl", severity: "low", match: { resources: ["pods"] }, expression: "!has(object.metadata.managedFields) || object.metadata.managedFields.all(m, m.manager != 'kubectl')" },
            { id: "typed", severity: "low", match: { resources: ["secrets"] }, expression: "object.type == 'Opaque' && !has(object.data)" }
          ]
        }
      })
      const asked = new Map<string, ListOptions | undefined>()
      const parsedLess = yield* checksOf(run, leavingOut(asked))
      expect(asked.get("pods")).toMatchObject({ onlyMembers: ["metadata", "status"] })
      expect(asked.get("pods")?.omitManagedFields).toBeUndefined()
      expect(asked.get("secrets")).toMatchObject({ omitManagedFields: true, onlyMembers: ["type"] })
      expect(verdicts(parsedLess)).toEqual(verdicts(yield* checksOf(run, Layer.empty as never)))
      expect(parsedLess.map((check) => [check.checkID, check.subjectCounts?.pass, check.subjectCounts?.fail])).toEqual([
        ["not-failed", 2, 1],
        ["no-kubectl", 2, 1],
        ["typed", 1, 0]
      ])
    }))

  it.effect("the profile's variables count as read by every rule: a rule that reads only variables keeps what they read", () =>
    Effect.gen(function*() {
      const run = runWith({
        backend: "cel",
        profile: "pod-security-restricted",
        cel: {
          rules: [{
            id: "named-containers",
            severity: "low",
            match: { apiGroups: ["apps"], resources: ["deployments"] },
            expression: "variables.containers.all(c, c.name != '')"
          }]
        }
      })
      const asked = new Map<string, ListOptions | undefined>()
      yield* checksOf(run, leavingOut(asked))
      // The rule selects nothing of the Deployment itself; the containers variable reads its spec.
      expect(asked.get("deployments")).toMatchObject({ omitManagedFields: true, onlyMembers: ["spec"] })
    }))

  it.effect("a rule that may see the whole object: every member kept", () =>
    Effect.gen(function*() {
      const run = runWith({
        backend: "cel",
        cel: { rules: [{ id: "few-members", severity: "low", match: { resources: ["pods"] }, expression: "object.size() < 10" }] }
      })
      const asked = new Map<string, ListOptions | undefined>()
      yield* checksOf(run, leavingOut(asked))
      expect(asked.get("pods")?.onlyMembers).toBeUndefined()
      expect(asked.get("pods")?.omitManagedFields).toBeUndefined()
    }))

  it.effect("every built-in pack: the same verdicts as a scan that parses everything, on Pods, workloads, RBAC and network objects", () =>
    Effect.gen(function*() {
      const objects = [
        namespace("default"),
        namespace("team"),
        ...samplePods,
        ...samplePods.map((pod) => workloadOf("Deployment", pod)),
        // The simulated API server takes only DNS names (the real one takes `system:masters` for RBAC objects).
        ...Object.values(kindPackTable).flatMap((entry) => [...entry.pass, ...entry.fail]).map((object) => ({
          ...object,
          metadata: { ...object.metadata, name: object.metadata.name.replaceAll(":", "-") }
        }))
      ]
      for (const profile of ["default", "pod-security-baseline", "pod-security-restricted", "workload-hardening", "rbac", "network"]) {
        const run = runWith({ backend: "cel", profile })
        const parsedLess = yield* checksOf(run, leavingOut(new Map()), objects)
        expect(verdicts(parsedLess), profile).toEqual(verdicts(yield* checksOf(run, Layer.empty as never, objects)))
        // The world gives every pack objects to pass and to fail.
        const total = (outcome: "pass" | "fail") => parsedLess.reduce((sum, check) => sum + (check.subjectCounts?.[outcome] ?? 0), 0)
        expect(total("fail"), profile).toBeGreaterThan(0)
        expect(total("pass"), profile).toBeGreaterThan(0)
      }
    }))
})
