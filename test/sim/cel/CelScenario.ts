import { expect } from "@effect/vitest"
import type { Check } from "../../../src/api/Check.ts"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { namespace, restrictedPod, violating } from "../../unit/cel/PodFixtures.ts"

/**
 * One CEL scenario for both the simulated cluster (CelScanner.test.ts) and the real control
 * plane (the cluster tier): create `scenarioObjects` (Namespaces first; a real API server
 * needs each namespace's default ServiceAccount before it accepts Pods), run
 * `scenarioRun`, then `expectScenarioFindings(checks)`. The expectations look only at
 * subjects in the scenario's namespaces, so other Pods in the cluster do not matter.
 */

export const scenarioNamespaces = ["cel-scenario-shop", "cel-scenario-lab"] as const

const [shop, lab] = scenarioNamespaces

const inNamespace = (pod: KubeObject, name: string): KubeObject => ({ ...pod, metadata: { ...pod.metadata, namespace: name } })

export const scenarioObjects: ReadonlyArray<KubeObject> = [
  namespace(shop, { "cel-scenario": "true", team: "payments" }),
  namespace(lab, { "cel-scenario": "true", team: "research" }),
  inNamespace(restrictedPod("web"), shop),
  inNamespace(violating("debugger", (pod) => (pod.spec.containers[0].securityContext.privileged = true)), shop),
  inNamespace(
    violating("agent", (pod) => {
      pod.metadata.labels = { app: "agent", tier: "system" }
      pod.spec.volumes.push({ name: "root", hostPath: { path: "/", type: "Directory" } })
    }),
    lab
  )
]

export const scenarioRun: ComplianceScanRun = {
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "cel-scenario", namespace: "ugallu-system", uid: "uid-cel-scenario" },
  spec: {
    backend: "cel",
    profile: "pod-security-restricted",
    cel: {
      rules: [
        {
          id: "scenario-system-tier-only-in-lab",
          title: "system-tier pods run only in research namespaces",
          severity: "high",
          match: {
            namespaceSelector: { matchLabels: { "cel-scenario": "true" } },
            labelSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["system"] }] }
          },
          expression: "namespaceObject.metadata.labels.team != 'research'",
          messageExpression: "'system-tier pod ' + object.metadata.name + ' runs in team ' + namespaceObject.metadata.labels.team"
        },
        {
          id: "scenario-namespaces-have-team",
          severity: "low",
          match: { resources: ["namespaces"], namespaceSelector: { matchLabels: { "cel-scenario": "true" } } },
          expression: "has(object.metadata.labels.team)"
        }
      ]
    }
  }
}

const inScenario = (check: Check) => (check.subjects ?? []).filter((subject) => scenarioNamespaces.some((name) => name === subject.namespace))

const check = (checks: ReadonlyArray<Check>, id: string): Check => {
  const found = checks.find((candidate) => candidate.checkID === id)
  expect(found, id).toBeDefined()
  return found!
}

/** The findings the scenario must produce, whatever else runs in the cluster. */
export const expectScenarioFindings = (checks: ReadonlyArray<Check>): void => {
  expect(checks).toHaveLength(21)
  const failing = (id: string) => inScenario(check(checks, id)).map((subject) => `${subject.namespace}/${subject.name}`)
  expect(failing("pss-baseline-privileged")).toEqual([`${shop}/debugger`])
  expect(failing("pss-baseline-host-path-volumes")).toEqual([`${lab}/agent`])
  expect(failing("pss-restricted-volume-types")).toEqual([`${lab}/agent`])
  // The compliant pod fails nothing.
  for (const found of checks) expect(inScenario(found).map((subject) => subject.name), found.checkID).not.toContain("web")
  expect(check(checks, "scenario-system-tier-only-in-lab")).toMatchObject({
    outcome: "fail",
    severity: "high",
    subjects: [{ kind: "Pod", name: "agent", namespace: lab, outcome: "fail", message: "system-tier pod agent runs in team research" }],
    subjectCounts: { pass: 0, fail: 1, warn: 0, skip: 0, error: 0 }
  })
  expect(check(checks, "scenario-namespaces-have-team")).toMatchObject({ outcome: "pass", subjectCounts: { pass: 2, fail: 0 } })
  expect(check(checks, "pss-baseline-privileged")).toMatchObject({ outcome: "fail", severity: "critical", frameworks: [{ name: "cis", controlID: "5.2.2" }] })
}
