import type { Check, Subject } from "../../api/Check.ts"
import { emptyCounts, type Outcome } from "../../api/Outcome.ts"
import type { CelEngine } from "./CelEngine.ts"
import { CelBoundExceeded } from "./CelErrors.ts"
import type { CelTarget } from "./CelTarget.ts"
import type { CompiledRule } from "./CompiledRule.ts"
import type { CostExhaustion, CostMeter } from "./CostMeter.ts"
import { networkPolicyKind } from "./CelKinds.ts"
import { matchesSelector } from "./RuleSelector.ts"

/**
 * Evaluates compiled rules against targets and builds one check per rule. Shared by the
 * scanner and `cel test`. It is a generator that pauses every `yieldEvery` evaluations so
 * the scanner can give other fibers a turn (and be interrupted) during a long run; `cel
 * test` simply runs it to the end.
 */

/** At most this many subjects (failing and erroring objects) are listed per check; counts stay complete. */
export const maxSubjectsPerCheck = 100

export interface EvaluationOptions {
  readonly maxSubjects: number
  readonly yieldEvery: number
  /** Kinds that could not be listed, by key: the rules on them end in `error` with this reason. */
  readonly unlisted?: ReadonlyMap<string, string>
}

export const defaultEvaluationOptions: EvaluationOptions = { maxSubjects: maxSubjectsPerCheck, yieldEvery: 2_000 }

export type RulesOutcome =
  | { readonly _tag: "Checked"; readonly checks: ReadonlyArray<Check>; readonly evaluations: number }
  | { readonly _tag: "Exceeded"; readonly error: CelBoundExceeded; readonly evaluations: number }

const matches = (rule: CompiledRule, target: CelTarget): boolean =>
  rule.resources.has(target.resource) &&
  matchesSelector(rule.labelRequirements, target.labels) &&
  // Cluster-scoped objects other than Namespaces pass every namespaceSelector, as in admission.
  ((target.clusterScoped && target.kind !== "Namespace") || matchesSelector(rule.namespaceRequirements, target.namespaceLabels))

/** Why a rule cannot be evaluated: the kinds it needs that could not be listed. */
const blockedBy = (rule: CompiledRule, unlisted: ReadonlyMap<string, string>): string | undefined => {
  const needed = [...rule.resources, ...(rule.readsNetworkPolicies ? [networkPolicyKind.key] : [])]
  const reasons = [...new Set(needed.flatMap((key) => unlisted.get(key) ?? []))]
  return reasons.length === 0 ? undefined : reasons.join("; ")
}

const blockedCheck = (rule: CompiledRule, reason: string): Check => ({
  ...checkOf(rule, emptyCounts(), []),
  outcome: "error",
  detail: reason
})

const oneLine = (text: string, limit = 300): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > limit ? `${flat.slice(0, limit - 3)}...` : flat
}

const exceeded = (rule: CompiledRule, exhaustion: CostExhaustion, meter: CostMeter): CelBoundExceeded => {
  const id = rule.rule.id
  switch (exhaustion) {
    case "evaluation-cost":
      return new CelBoundExceeded({
        reason: "CELCostExceeded",
        ruleId: id,
        message: `rule "${id}" exceeded the cost limit of ${meter.limits.perEvaluation} units for one evaluation`
      })
    case "run-cost":
      return new CelBoundExceeded({
        reason: "CELCostExceeded",
        ruleId: id,
        message: `the run exceeded its CEL cost budget of ${meter.limits.perRun} units while evaluating rule "${id}"`
      })
    case "wall-clock":
      return new CelBoundExceeded({
        reason: "CELTimeout",
        ruleId: id,
        message: `the run exceeded its CEL time bound while evaluating rule "${id}"`
      })
  }
}

type Verdict =
  | { readonly outcome: "pass" }
  | { readonly outcome: "fail" | "error"; readonly message: string }
  | { readonly outcome: "exhausted"; readonly exhaustion: CostExhaustion }

const judge = (engine: CelEngine, rule: CompiledRule, target: CelTarget, meter: CostMeter): Verdict => {
  const result = engine.evaluate(rule.expression, target.activation, meter)
  switch (result._tag) {
    case "Exhausted":
      return { outcome: "exhausted", exhaustion: result.exhaustion }
    case "Error":
      return { outcome: "error", message: `expression failed: ${result.message}` }
    case "Value":
      if (result.value === true) return { outcome: "pass" }
      if (result.value !== false) {
        return { outcome: "error", message: `expression must evaluate to bool, got ${engine.typeName(result.value)}` }
      }
  }
  const fallback = `failed expression: ${oneLine(rule.rule.expression, 200)}`
  if (rule.message === undefined) return { outcome: "fail", message: fallback }
  const message = engine.evaluate(rule.message, target.activation, meter)
  if (message._tag === "Exhausted") return { outcome: "exhausted", exhaustion: message.exhaustion }
  // Like admission policies: a messageExpression that fails or is not text falls back to the default.
  const text = message._tag === "Value" && typeof message.value === "string" && message.value.trim() !== "" ? message.value : fallback
  return { outcome: "fail", message: oneLine(text) }
}

const checkOf = (rule: CompiledRule, counts: Record<Outcome, number>, subjects: ReadonlyArray<Subject>): Check => {
  const matched = counts.pass + counts.fail + counts.error
  const outcome: Outcome = counts.fail > 0 ? "fail" : counts.error > 0 ? "error" : matched > 0 ? "pass" : "skip"
  const detail =
    matched === 0
      ? "no matching objects"
      : `${matched} checked: ${counts.pass} pass, ${counts.fail} fail, ${counts.error} error`
  const { rule: source } = rule
  return {
    checkID: source.id,
    title: source.title ?? source.id,
    detail,
    ...(source.remediation === undefined ? {} : { remediation: source.remediation }),
    outcome,
    severity: source.severity,
    ...(subjects.length === 0 ? {} : { subjects }),
    subjectCounts: { ...counts },
    ...(source.frameworks === undefined ? {} : { frameworks: source.frameworks })
  }
}

export function* evaluateRules(
  engine: CelEngine,
  rules: ReadonlyArray<CompiledRule>,
  targets: ReadonlyArray<CelTarget>,
  meter: CostMeter,
  options: EvaluationOptions = defaultEvaluationOptions
): Generator<void, RulesOutcome> {
  const unlisted = options.unlisted ?? new Map<string, string>()
  const blocked = rules.map((rule) => blockedBy(rule, unlisted))
  const tallies = rules.map(() => ({ counts: emptyCounts(), subjects: [] as Array<Subject> }))
  let evaluations = 0
  // Object by object (every rule on one object, then the next): the object stays warm in
  // the CPU caches while all rules read it.
  for (const target of targets) {
    for (let index = 0; index < rules.length; index++) {
      const rule = rules[index]!
      if (blocked[index] !== undefined || !matches(rule, target)) continue
      if (++evaluations % options.yieldEvery === 0) {
        if (!meter.checkClock()) return { _tag: "Exceeded", error: exceeded(rule, "wall-clock", meter), evaluations }
        yield
      }
      const verdict = judge(engine, rule, target, meter)
      if (verdict.outcome === "exhausted") return { _tag: "Exceeded", error: exceeded(rule, verdict.exhaustion, meter), evaluations }
      const { counts, subjects } = tallies[index]!
      counts[verdict.outcome]++
      if (verdict.outcome !== "pass" && subjects.length < options.maxSubjects) {
        subjects.push({
          kind: target.kind,
          name: target.name,
          ...(target.namespace === undefined ? {} : { namespace: target.namespace }),
          outcome: verdict.outcome,
          message: verdict.message
        })
      }
    }
  }
  const checks = rules.map((rule, index) => {
    const reason = blocked[index]
    return reason === undefined ? checkOf(rule, tallies[index]!.counts, tallies[index]!.subjects) : blockedCheck(rule, reason)
  })
  return { _tag: "Checked", checks, evaluations }
}

/** Runs the evaluation to the end without pausing (the offline `cel test`). */
export const evaluateRulesNow = (...args: Parameters<typeof evaluateRules>): RulesOutcome => {
  const iterator = evaluateRules(...args)
  for (;;) {
    const step = iterator.next()
    if (step.done === true) return step.value
  }
}
