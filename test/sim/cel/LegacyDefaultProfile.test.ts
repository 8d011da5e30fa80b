import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { ComplianceScanResult } from "../../../src/api/ComplianceScanResult.ts"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { networkPolicyKind } from "../../../src/backends/cel/CelKinds.ts"
import { CelScanner } from "../../../src/backends/cel/CelScanner.ts"
import { KubeClient } from "../../../src/services/kube/KubeClient.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { Resources } from "../../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { startOperator } from "../../support/TestOperator.ts"
import { deployDir, readManifests } from "../../unit/deploy/DeployFiles.ts"
import { namespace, restrictedPod, violating } from "../../unit/cel/PodFixtures.ts"

/**
 * deploy/samples/legacy-cel-default.yaml, applied verbatim to the whole operator (real CEL
 * scanner, simulated API server): the earlier implementation's three check ids, per-Pod
 * and per-Namespace subjects, and the soc2 report built from its control mapping.
 */

const [sample] = readManifests(join(deployDir, "samples", "legacy-cel-default.yaml")) as unknown as ReadonlyArray<KubeObject>

const world: ReadonlyArray<KubeObject> = [
  namespace("ugallu-system"),
  namespace("shop"),
  namespace("lab"),
  restrictedPod("web", "shop"),
  { ...violating("root-shell", (pod) => delete pod.spec.securityContext), metadata: { name: "root-shell", namespace: "shop" } },
  { ...violating("scratch", (pod) => (pod.spec.containers[1].securityContext.readOnlyRootFilesystem = false)), metadata: { name: "scratch", namespace: "lab" } },
  { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "default-deny", namespace: "shop" }, spec: { podSelector: {} } }
]

const cluster = SimulatedCluster.layer({ objects: world, resources: [networkPolicyKind] })

describe("the earlier implementation's default-profile run", () => {
  it.live("reaches Succeeded with its three check ids, per-object subjects and the soc2 report", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const scanner = yield* Effect.provide(CelScanner, CelScanner.layer().pipe(Layer.provide(Metrics.layerTest)))
      yield* startOperator({ kube, scanners: [scanner] })
      yield* kube.create(Resources.ComplianceScanRun, sample!)
      const run = yield* Effect.gen(function*() {
        for (;;) {
          const current = (yield* kube.get(Resources.ComplianceScanRun, "ugallu-system", "legacy-cel-default")) as unknown as ComplianceScanRun
          if (current.status?.phase === "Succeeded" || current.status?.phase === "Failed") return current
          yield* Effect.sleep("10 millis")
        }
      }).pipe(Effect.timeout("20 seconds"))
      expect(run.status).toMatchObject({ phase: "Succeeded", worstSeverity: "high" })

      const result = (yield* kube.get(Resources.ComplianceScanResult, "ugallu-system", "legacy-cel-default")) as unknown as ComplianceScanResult
      const byId = Object.fromEntries(result.spec.checks.map((check) => [check.checkID, check]))
      expect(Object.keys(byId)).toEqual(["ugallu.cel.pods-run-as-non-root", "ugallu.cel.read-only-root-fs", "ugallu.cel.netpol-present"])
      const subjects = (id: string) => (byId[id]!.subjects ?? []).map((subject) => `${subject.kind} ${subject.namespace ?? ""}/${subject.name}`)
      expect(byId["ugallu.cel.pods-run-as-non-root"]).toMatchObject({ outcome: "fail", severity: "high", subjectCounts: { pass: 2, fail: 1 } })
      expect(subjects("ugallu.cel.pods-run-as-non-root")).toEqual(["Pod shop/root-shell"])
      expect(byId["ugallu.cel.read-only-root-fs"]).toMatchObject({ outcome: "fail", severity: "medium" })
      expect(subjects("ugallu.cel.read-only-root-fs")).toEqual(["Pod lab/scratch"])
      expect(byId["ugallu.cel.netpol-present"]).toMatchObject({ outcome: "fail", severity: "medium", subjectCounts: { pass: 1, fail: 2 } })
      expect(subjects("ugallu.cel.netpol-present").sort()).toEqual(["Namespace /lab", "Namespace /ugallu-system"])
      // The mapping decorates the check (after its own CIS reference) and builds the soc2 report.
      expect(byId["ugallu.cel.pods-run-as-non-root"]!.frameworks).toContainEqual({ name: "soc2", controlID: "CC6.6" })
      expect(result.spec.frameworks?.find((framework) => framework.name === "soc2")).toEqual({
        name: "soc2",
        controls: [{ controlID: "CC6.6", outcome: "fail", checks: ["ugallu.cel.pods-run-as-non-root"] }],
        passed: 0,
        failed: 1
      })
    }).pipe(Effect.provide(cluster)))
})
