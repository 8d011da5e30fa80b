import { Effect } from "effect"
import type { Check } from "../../../src/api/Check.ts"
import type { CelRule } from "../../../src/api/ComplianceScanRun.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import type { CelResultType } from "../../../src/backends/cel/CelEngine.ts"
import { type CelEngineLimits, defaultCelEngineLimits, makeCelJsEngine } from "../../../src/backends/cel/CelJsEngine.ts"
import { inventoryOfObjects } from "../../../src/backends/cel/CelInventory.ts"
import { celTargets } from "../../../src/backends/cel/CelTarget.ts"
import { compileRules } from "../../../src/backends/cel/CompiledRule.ts"
import { type CostLimits, CostMeter, defaultCostLimits } from "../../../src/backends/cel/CostMeter.ts"
import { ProgramCache } from "../../../src/backends/cel/ProgramCache.ts"
import { defaultEvaluationOptions, evaluateRulesNow, type RulesOutcome } from "../../../src/backends/cel/RuleEvaluation.ts"
import { compileVariables, type RuleVariable } from "../../../src/backends/cel/RuleVariables.ts"
import { defaultPacksDirectory, loadRulePacks, type RulePack } from "../../../src/backends/cel/RulePacks.ts"

/** Shared helpers for the CEL tests: the same modules the scanner and `cel test` use. */

export const engine = makeCelJsEngine()

export const meter = (limits: CostLimits = defaultCostLimits, millis = 10_000) => new CostMeter(limits, { start: Date.now(), millis })

/** Compiles and evaluates one expression against an object (as JSON). */
export const evaluate = (expression: string, object: unknown = {}, resultType: CelResultType = "bool", namespaceObject: unknown = null) => {
  const compiled = engine.compile(expression, resultType)
  if (compiled._tag === "Failed") return compiled
  return engine.evaluate(compiled.program, { object: engine.fromJson(object), namespaceObject: engine.fromJson(namespaceObject) }, meter())
}

/** The value of an expression that must evaluate; throws with the reason otherwise. */
export const valueOf = (expression: string, object: unknown = {}, resultType: CelResultType = "bool"): unknown => {
  const result = evaluate(expression, object, resultType)
  if (result._tag !== "Value") throw new Error(`${expression}: ${JSON.stringify(result)}`)
  return result.value
}

export const packs: ReadonlyMap<string, RulePack> = Effect.runSync(
  loadRulePacks(defaultPacksDirectory, (expression, resultType) => engine.compile(expression, resultType))
)

export const packRule = (id: string): CelRule => {
  for (const pack of packs.values()) {
    const rule = pack.rules.find((candidate) => candidate.id === id)
    if (rule !== undefined) return rule
  }
  throw new Error(`no pack rule ${id}`)
}

/** The variables of every built-in pack (pack rules read them as `variables.<name>`). */
export const packVariables: ReadonlyArray<RuleVariable> = [...new Map([...packs.values()].flatMap((pack) => pack.variables.map((variable) => [variable.name, variable] as const))).values()]

/** Rules evaluated against objects the way a run does (with the packs' variables); throws when a rule does not compile. */
export const check = (
  rules: ReadonlyArray<CelRule>,
  objects: ReadonlyArray<KubeObject>,
  options: { readonly costLimits?: CostLimits; readonly millis?: number; readonly engineLimits?: CelEngineLimits } = {}
): RulesOutcome => {
  const cache = new ProgramCache(options.engineLimits === undefined ? engine : makeCelJsEngine(options.engineLimits ?? defaultCelEngineLimits), 100)
  const compiled = compileRules((expression, resultType) => cache.compile(expression, resultType), rules)
  if (!Array.isArray(compiled)) throw compiled
  const targets = celTargets(cache.engine.fromJson, inventoryOfObjects(compiled, objects).inventory)
  const variables = compileVariables((expression, resultType) => cache.compile(expression, resultType), packVariables)
  if (typeof variables === "string") throw new Error(variables)
  return evaluateRulesNow(cache.engine, compiled, targets, meter(options.costLimits, options.millis), { ...defaultEvaluationOptions, variables })
}

export const checksOf = (outcome: RulesOutcome): ReadonlyArray<Check> => {
  if (outcome._tag !== "Checked") throw new Error(`expected checks, got ${outcome.error.reason}: ${outcome.error.message}`)
  return outcome.checks
}

export const rule = (id: string, expression: string, extra: Partial<CelRule> = {}): CelRule => ({ id, severity: "high", expression, ...extra })
