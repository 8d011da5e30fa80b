import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { parse } from "yaml"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, operatorNamespace, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { podsPath, resultPath, runPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * deploy/samples/legacy-cel-default.yaml (the earlier Go implementation's typical run)
 * applied verbatim to the real API server, evaluated by the operator as a real process with
 * deploy/'s RBAC: the three check ids, per-Pod and per-Namespace subjects, the soc2 report.
 */
const cluster = inject("cluster")
const sample = parse(readFileSync(join(import.meta.dirname, "..", "..", "deploy", "samples", "legacy-cel-default.yaml"), "utf8")) as Json
let admin: KubeHttp
let identity: OperatorIdentity
let isolated: string
let open: string
let operator: OperatorProcess | undefined

const pod = (name: string, podSecurity: Json, container: Json): Json => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels: { app: name } },
  spec: { securityContext: podSecurity, containers: [{ name: "app", image: `registry.example.com/${name}:1`, ...container }] }
})

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  isolated = await createNamespace(admin, "cel-default-isolated")
  open = await createNamespace(admin, "cel-default-open")
  await admin.create(`/apis/networking.k8s.io/v1/namespaces/${isolated}/networkpolicies`, {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "default-deny" },
    spec: { podSelector: {}, policyTypes: ["Ingress"] }
  })
  const pods: ReadonlyArray<readonly [string, Json]> = [
    [isolated, pod("hardened", { runAsNonRoot: true }, { securityContext: { readOnlyRootFilesystem: true } })],
    // The Pod says non-root, its container overrides it: root.
    [isolated, pod("overridden", { runAsNonRoot: true }, { securityContext: { runAsUser: 0, readOnlyRootFilesystem: true } })],
    [open, pod("writable", { runAsUser: 1000 }, { securityContext: { readOnlyRootFilesystem: false } })]
  ]
  for (const [namespace, object] of pods) {
    // A fresh namespace accepts Pods once its default ServiceAccount exists.
    await eventually(async () => admin.create(podsPath(namespace), object).then(() => true, () => undefined), {
      what: `Pod ${namespace}/${object.metadata.name} to be created`,
      timeoutMillis: 30_000
    })
  }
  operator = await startTestOperator(cluster, identity, {
    name: "cel-default-operator",
    namespace: operatorNamespace,
    flags: ["--leader-election-id=cel-default-profile-test"]
  })
})

afterAll(async () => {
  await operator?.stop()
  await admin.remove(runPath(operatorNamespace, sample.metadata.name))
  await deleteNamespace(admin, isolated)
  await deleteNamespace(admin, open)
  admin.close()
})

/** Failing and erroring subjects of a check in the test's namespaces: "kind namespace/name". */
const subjectsOf = (check: Json): Array<string> =>
  ((check.subjects ?? []) as Array<Json>)
    .map((subject) => `${subject.kind} ${subject.namespace ?? ""}/${subject.name}`)
    .filter((text) => text.includes(isolated) || text.includes(open))
    .sort()

describe("the earlier implementation's default-profile run", () => {
  it("reaches Succeeded with the three check ids, per-object subjects and the soc2 report from the mapping", async () => {
    await withOperatorLogs([operator], async () => {
      await admin.create(runPath(operatorNamespace), sample)
      const run = await waitForRun(admin, operatorNamespace, sample.metadata.name, { timeoutMillis: 60_000 })
      expect(run.status).toMatchObject({ phase: "Succeeded", worstSeverity: "high" })

      const result = await admin.get(resultPath(operatorNamespace, sample.metadata.name))
      const checks = Object.fromEntries((result.spec.checks as Array<Json>).map((check) => [check.checkID, check]))
      expect(Object.keys(checks)).toEqual(["ugallu.cel.pods-run-as-non-root", "ugallu.cel.read-only-root-fs", "ugallu.cel.netpol-present"])

      const nonRoot = checks["ugallu.cel.pods-run-as-non-root"]!
      expect(nonRoot).toMatchObject({ outcome: "fail", severity: "high" })
      expect(subjectsOf(nonRoot)).toEqual([`Pod ${isolated}/overridden`])
      expect(nonRoot.frameworks).toContainEqual({ name: "soc2", controlID: "CC6.6" })

      const readOnly = checks["ugallu.cel.read-only-root-fs"]!
      expect(readOnly).toMatchObject({ outcome: "fail", severity: "medium" })
      expect(subjectsOf(readOnly)).toEqual([`Pod ${open}/writable`])

      const netpol = checks["ugallu.cel.netpol-present"]!
      expect(netpol).toMatchObject({ outcome: "fail", severity: "medium" })
      expect(subjectsOf(netpol)).toEqual([`Namespace /${open}`])
      expect(netpol.subjectCounts.pass).toBeGreaterThanOrEqual(1)

      const soc2 = (result.spec.frameworks as Array<Json>).find((framework) => framework.name === "soc2")
      expect(soc2).toEqual({
        name: "soc2",
        controls: [{ controlID: "CC6.6", outcome: "fail", checks: ["ugallu.cel.pods-run-as-non-root"] }],
        passed: 0,
        failed: 1
      })
    })
  })
})
