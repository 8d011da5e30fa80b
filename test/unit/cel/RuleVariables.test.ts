import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { CelRule } from "../../../src/api/ComplianceScanRun.ts"
import type { CelEngine } from "../../../src/backends/cel/CelEngine.ts"
import { inventoryOfObjects } from "../../../src/backends/cel/CelInventory.ts"
import { celTargets } from "../../../src/backends/cel/CelTarget.ts"
import { compileRules } from "../../../src/backends/cel/CompiledRule.ts"
import { CostMeter, defaultCostLimits } from "../../../src/backends/cel/CostMeter.ts"
import { defaultEvaluationOptions, evaluateRulesNow } from "../../../src/backends/cel/RuleEvaluation.ts"
import { loadRulePacks } from "../../../src/backends/cel/RulePacks.ts"
import { compileVariables, type RuleVariable } from "../../../src/backends/cel/RuleVariables.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { engine, packs } from "./CelTestKit.ts"
import { restrictedPod, violating, workloadOf } from "./PodFixtures.ts"

/**
 * Variables shared by a rule set (VAP's spec.variables): read as `variables.<name>`, each
 * evaluated at most once per object, its cost the reading rule's, its failure the failure of
 * every expression that reads it.
 */

const rule = (id: string, expression: string, messageExpression?: string): CelRule => ({
  id,
  severity: "low",
  match: { resources: ["pods"] },
  expression,
  ...(messageExpression === undefined ? {} : { messageExpression })
})

/** The rules on the objects with the variables; `evaluations` counts the engine's runs of each program text. */
const run = (rules: ReadonlyArray<CelRule>, variables: ReadonlyArray<RuleVariable>, objects: ReadonlyArray<KubeObject>, perEvaluation = defaultCostLimits.perEvaluation) => {
  const evaluations = new Map<string, number>()
  const counting: CelEngine = {
    ...engine,
    evaluate: (program, activation, meter) => {
      evaluations.set(program.expression, (evaluations.get(program.expression) ?? 0) + 1)
      return engine.evaluate(program, activation, meter)
    }
  }
  const compile = (expression: string, resultType: "bool" | "string" | "dyn") => engine.compile(expression, resultType)
  const compiled = compileRules(compile, rules)
  if (!Array.isArray(compiled)) throw compiled
  const compiledVariables = compileVariables(compile, variables)
  if (typeof compiledVariables === "string") throw new Error(compiledVariables)
  const meter = new CostMeter({ ...defaultCostLimits, perEvaluation }, { start: Date.now(), millis: 60_000 })
  const outcome = evaluateRulesNow(counting, compiled, celTargets(engine.fromJson, inventoryOfObjects(compiled, objects).inventory), meter, { ...defaultEvaluationOptions, variables: compiledVariables })
  return { outcome, evaluations }
}

const names: RuleVariable = { name: "names", expression: "object.spec.containers.map(c, c.name)" }
const pods = [restrictedPod("a"), restrictedPod("b"), violating("c", (pod) => pod.spec.containers.push({ ...pod.spec.containers[0], name: "extra" }))]

describe("rule set variables", () => {
  it("evaluates each variable at most once per object, for every rule that reads it", () => {
    const { outcome, evaluations } = run(
      [rule("two", "variables.names.size() == 2", "'containers: ' + variables.names.join(', ')"), rule("app", "'app' in variables.names"), rule("other", "true")],
      [names],
      pods
    )
    if (outcome._tag !== "Checked") throw new Error(outcome.error.message)
    expect(outcome.checks.map((check) => [check.checkID, check.subjectCounts?.pass, check.subjectCounts?.fail])).toEqual([["two", 2, 1], ["app", 3, 0], ["other", 3, 0]])
    expect(outcome.checks[0]!.subjects?.[0]?.message).toBe("containers: app, sidecar, extra")
    // Three Pods: three evaluations of the variable, though two rules and a message read it.
    expect(evaluations.get(names.expression)).toBe(3)
  })

  it("answers has() and `in` on the variables; an unknown name is absent", () => {
    const { outcome, evaluations } = run(
      [rule("named", "'names' in variables && !('other' in variables)"), rule("has", "has(variables.names)")],
      [names],
      [restrictedPod("a")]
    )
    if (outcome._tag !== "Checked") throw new Error(outcome.error.message)
    expect(outcome.checks.map((check) => [check.checkID, check.outcome])).toEqual([["named", "pass"], ["has", "pass"]])
    // Both read the value, as for any map key: evaluated once for the object.
    expect(evaluations.get(names.expression)).toBe(1)
  })

  it("fails the expressions that read a failing variable, with its message; the others are unaffected", () => {
    const { outcome } = run([rule("reads", "variables.missing.size() > 0"), rule("not", "true")], [{ name: "missing", expression: "object.spec.nothing.here" }], [restrictedPod("a")])
    if (outcome._tag !== "Checked") throw new Error(outcome.error.message)
    expect(outcome.checks[0]).toMatchObject({ outcome: "error", subjectCounts: { error: 1 } })
    expect(outcome.checks[0]!.subjects?.[0]?.message).toMatch(/^expression failed: .*variables\.missing: /u)
    expect(outcome.checks[1]).toMatchObject({ outcome: "pass" })
    const loop = run([rule("loop", "variables.self")], [{ name: "self", expression: "variables.self" }], [restrictedPod("a")]).outcome
    if (loop._tag !== "Checked") throw new Error(loop.error.message)
    expect(loop.checks[0]!.subjects?.[0]?.message).toMatch(/variable "self" reads itself/u)
    // A cycle through another variable is caught too (not an endless recursion).
    const cycle = run([rule("cycle", "variables.a")], [{ name: "a", expression: "variables.b" }, { name: "b", expression: "variables.a" }], [restrictedPod("a")]).outcome
    if (cycle._tag !== "Checked") throw new Error(cycle.error.message)
    expect(cycle.checks[0]!.subjects?.[0]?.message).toMatch(/variable "a" reads itself/u)
  })

  it("charges a variable's cost to the rule that reads it first: no way around the per-evaluation limit", () => {
    const expensive: RuleVariable = { name: "big", expression: "[" + Array.from({ length: 100 }, (_, index) => index).join(",") + "].map(a, [" + Array.from({ length: 100 }, (_, index) => index).join(",") + "].filter(b, a < b)).size()" }
    const { outcome } = run([rule("cheap-itself", "variables.big > 0")], [expensive], [restrictedPod("a")], 5_000)
    expect(outcome._tag).toBe("Exceeded")
    if (outcome._tag === "Exceeded") expect(outcome.error).toMatchObject({ reason: "CELCostExceeded", ruleId: "cheap-itself" })
  })

  it("gives the built-in packs' verdicts with their variables and with them written out, on Pods and on pod templates", () => {
    /** The rules with `variables.<name>` replaced by the variable's expression. */
    const writtenOut = (rules: ReadonlyArray<CelRule>, { name, expression }: RuleVariable) => {
      const write = (text: string) => text.replaceAll(`variables.${name}`, `(${expression})`)
      return rules.map((packRule) => ({
        ...packRule,
        expression: write(packRule.expression),
        ...(packRule.messageExpression === undefined ? {} : { messageExpression: write(packRule.messageExpression) })
      }))
    }
    const restricted = packs.get("pod-security-restricted")!
    expect(restricted.variables.map((variable) => variable.name)).toEqual(["containers"])
    const written = writtenOut(restricted.rules, restricted.variables[0]!)
    expect(written.some((packRule, index) => packRule.expression !== restricted.rules[index]!.expression)).toBe(true)
    const withVariables = run(restricted.rules, restricted.variables, pods).outcome
    expect(withVariables._tag).toBe("Checked")
    expect(withVariables).toEqual(run(written, [], pods).outcome)
    // The pod-template rules read the template's own copy of each Pod variable.
    const workload = packs.get("workload-hardening")!
    expect(workload.variables).toEqual([{
      name: "templateContainers",
      expression: restricted.variables[0]!.expression.replaceAll("object.spec", "object.spec.template.spec")
    }])
    expect(workload.rules.filter((packRule) => packRule.expression.includes("variables.templateContainers"))).toHaveLength(
      restricted.rules.filter((packRule) => packRule.expression.includes("variables.containers")).length
    )
    const privileged = violating("d", (pod) => (pod.spec.containers[0].securityContext = { ...pod.spec.containers[0].securityContext, privileged: true }))
    const workloads = [...pods, privileged].map((pod) => workloadOf("Deployment", pod))
    const onTemplates = run(workload.rules, workload.variables, workloads).outcome
    expect(onTemplates._tag).toBe("Checked")
    expect(onTemplates).toEqual(run(writtenOut(workload.rules, workload.variables[0]!), [], workloads).outcome)
    expect(onTemplates._tag === "Checked" && onTemplates.checks.find((check) => check.checkID === "workload-baseline-privileged")?.subjects?.map((subject) => subject.name)).toEqual(["d"])
  })

  it("refuses a pack whose rule reads an undefined variable, or that defines one twice differently", () => {
    const load = (files: Record<string, string>) => {
      const directory = mkdtempSync(join(tmpdir(), "cel-variables-"))
      try {
        for (const [name, text] of Object.entries(files)) writeFileSync(join(directory, name), text)
        return Effect.runSync(Effect.flip(loadRulePacks(directory, (expression, resultType) => engine.compile(expression, resultType))))
      } finally {
        rmSync(directory, { recursive: true, force: true })
      }
    }
    expect(load({ "a.yaml": "name: a\nrules:\n  - id: x\n    severity: low\n    expression: variables.nope == 1\n" }).message).toBe('rule "x" reads undefined variables: nope')
    expect(load({
      "a.yaml": "name: a\nvariables:\n  - { name: v, expression: '1' }\nrules: []\n",
      "b.yaml": "name: b\ninclude: [a]\nvariables:\n  - { name: v, expression: '2' }\nrules: []\n"
    })).toMatchObject({ pack: "b", message: 'variable "v" is defined twice, differently' })
    expect(load({ "a.yaml": "name: a\nvariables:\n  - { name: v, expression: 'object.(' }\nrules: []\n" }).message).toMatch(/^variable "v" does not compile/u)
  })
})
