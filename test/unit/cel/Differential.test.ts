import { celEnv, isCelError, parse, plan } from "@bufbuild/cel"
import { describe, expect, it } from "@effect/vitest"
import type { CelRule } from "../../../src/api/ComplianceScanRun.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { engine, meter, packs, rule } from "./CelTestKit.ts"
import { namespace, restrictedPod, seededPod, violating } from "./PodFixtures.ts"
import { seededRandom } from "../../../sim/cluster/SeededRandom.ts"

/**
 * The same rules and objects through @bufbuild/cel (the most faithful engine, test-only)
 * must give the same verdicts as the operator's engine: true, false or an error. Covers
 * every pack rule over Pods and some user-style rules (none uses optional syntax, which bufbuild
 * lacks), over hand-made and seeded random pods.
 */

const userRules: ReadonlyArray<CelRule> = [
  rule("image-from-registry", "object.spec.containers.all(c, c.image.startsWith('registry.example.com/'))"),
  rule("image-pinned", "object.spec.containers.all(c, c.image.contains(':') && !c.image.endsWith(':latest'))"),
  rule("name-is-dns-label", "object.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(object.metadata.name) <= 63"),
  rule("team-label", "has(object.metadata.labels) && 'team' in object.metadata.labels && object.metadata.labels['team'] != ''"),
  rule("namespace-owner", "namespaceObject != null && has(namespaceObject.metadata.labels) && 'owner' in namespaceObject.metadata.labels"),
  rule("limits-set", "object.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && 'memory' in c.resources.limits)"),
  rule("one-app-container", "object.spec.containers.exists_one(c, c.name == 'app')"),
  rule("port-arithmetic", "object.spec.containers.all(c, !has(c.ports) || c.ports.all(p, p.containerPort + 1 > 1024))"),
  rule("first-container-index", "object.spec.containers[0].name == 'app' && object.spec.containers[size(object.spec.containers) - 1].image != ''"),
  rule("uid-range", "!has(object.spec.securityContext) || !has(object.spec.securityContext.runAsUser) || object.spec.securityContext.runAsUser / 1000 >= 1"),
  rule("container-count", "size(object.spec.containers) + (has(object.spec.initContainers) ? size(object.spec.initContainers) : 0) <= 3"),
  rule("ports-map", "object.spec.containers.map(c, has(c.ports) ? size(c.ports) : 0).all(n, n < 2)"),
  // Written without has(): errors on objects that lack the fields (error verdicts to compare).
  rule("strict-non-root", "object.spec.containers.all(c, c.securityContext.runAsNonRoot)"),
  rule("team-is-payments", "object.metadata.labels.team == 'payments'"),
  rule("filter-names", "object.spec.containers.filter(c, c.name.startsWith('side')).size() <= 1 ? true : false")
]

const namespaces = [namespace("shop", { owner: "payments" }), namespace("ops")]

const handMade: ReadonlyArray<KubeObject> = [
  restrictedPod("compliant", "shop"),
  violating("privileged", (pod) => (pod.spec.containers[0].securityContext.privileged = true)),
  violating("host-path", (pod) => pod.spec.volumes.push({ name: "h", hostPath: { path: "/" } })),
  violating("no-security-context", (pod) => {
    delete pod.spec.securityContext
    for (const container of pod.spec.containers) delete container.securityContext
  })
]

type Verdict = "true" | "false" | "error" | "not bool"

const ours = (expression: string) => {
  const compiled = engine.compile(expression, "bool")
  if (compiled._tag === "Failed") throw new Error(`${expression}: ${compiled.failure.message}`)
  const costs = meter()
  return (activation: { object: unknown; namespaceObject: unknown }): Verdict => {
    const result = engine.evaluate(compiled.program, activation, costs)
    if (result._tag === "Exhausted") throw new Error(`${expression} exhausted ${result.exhaustion}`)
    if (result._tag === "Error") return "error"
    return typeof result.value === "boolean" ? (String(result.value) as Verdict) : "not bool"
  }
}

const theirs = (expression: string) => {
  const run = plan(celEnv(), parse(expression))
  return (activation: { object: unknown; namespaceObject: unknown }): Verdict => {
    const result = run(activation as never)
    if (isCelError(result)) return "error"
    return typeof result === "boolean" ? (String(result) as Verdict) : "not bool"
  }
}

describe("differential: @marcbachmann/cel-js (operator) vs @bufbuild/cel", () => {
  it("gives the same verdict for every rule on every object", () => {
    const next = seededRandom(20261103)
    const pods = [...handMade, ...Array.from({ length: 300 }, (_, index) => seededPod(next, index))]
    const namespaceValues = new Map(namespaces.map((ns) => [ns.metadata.name, engine.fromJson(ns)]))
    const activations = pods.map((pod) => ({
      name: pod.metadata.name,
      object: engine.fromJson(pod),
      namespaceObject: namespaceValues.get(pod.metadata.namespace ?? "") ?? null
    }))
    // The default profile's namespace rule reads networkPolicies, which these activations lack.
    const defaultPodRules = packs.get("default")!.rules.filter((rule) => rule.match?.resources?.includes("pods"))
    const rules = [...packs.get("pod-security-restricted")!.rules, ...defaultPodRules, ...userRules]
    const disagreements: Array<string> = []
    const tally: Record<Verdict, number> = { true: 0, false: 0, error: 0, "not bool": 0 }
    for (const { id, expression } of rules) {
      const [left, right] = [ours(expression), theirs(expression)]
      for (const activation of activations) {
        const [a, b] = [left(activation), right(activation)]
        tally[a]++
        if (a !== b) disagreements.push(`${id} on ${activation.name}: operator ${a}, bufbuild ${b}`)
      }
    }
    expect(disagreements).toEqual([])
    // The fixtures exercise both verdicts and errors, or the comparison would prove little.
    expect(tally.true).toBeGreaterThan(1000)
    expect(tally.false).toBeGreaterThan(1000)
    expect(tally.error).toBeGreaterThan(50)
    expect(rules.length * pods.length).toBe(tally.true + tally.false + tally.error + tally["not bool"])
  })
})
