import type { Check, Subject } from "../../api/Check.ts"
import { emptyCounts, type Outcome } from "../../api/Outcome.ts"
import type { CelActivation, CelEngine } from "./CelEngine.ts"
import { CelBoundExceeded } from "./CelErrors.ts"
import type { CelTarget } from "./CelTarget.ts"
import type { CompiledRule } from "./CompiledRule.ts"
import { type CostExhaustion, type CostMeter, objectsPerAllowance } from "./CostMeter.ts"
import { networkPolicyKind } from "./CelKinds.ts"
import { matchesSelector } from "./RuleSelector.ts"
import { type CompiledVariable, withVariables } from "./RuleVariables.ts"

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
  /** The rule set's variables (RuleVariables), read by its rules as `variables.<name>`. */
  readonly variables?: ReadonlyArray<CompiledVariable>
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

const seconds = (millis: number) => (millis >= 1000 ? `${Math.round(millis / 1000)} s` : `${millis} ms`)

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
        message: `the run exceeded its CEL cost budget of ${meter.runBudget} units (${meter.limits.perRun} per ${objectsPerAllowance.toLocaleString("en-US")} objects) while evaluating rule "${id}"`
      })
    case "wall-clock":
      return new CelBoundExceeded({
        reason: "CELTimeout",
        ruleId: id,
        message: `the run exceeded its CEL time bound (${seconds(meter.window)} of evaluation per ${objectsPerAllowance.toLocaleString("en-US")} objects, or the run's timeout) while evaluating rule "${id}"`
      })
  }
}

type Verdict =
  | { readonly outcome: "pass" | "fail" }
  | { readonly outcome: "error"; readonly message: string }
  | { readonly outcome: "exhausted"; readonly exhaustion: CostExhaustion }

const judge = (engine: CelEngine, rule: CompiledRule, activation: CelActivation, meter: CostMeter): Verdict => {
  const result = engine.evaluate(rule.expression, activation, meter)
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
  return { outcome: "fail" }
}

/**
 * The message of a failing object, built only when it is listed as a subject (most failing
 * objects past the first `maxSubjects` are only counted).
 */
const failureMessage = (engine: CelEngine, rule: CompiledRule, activation: CelActivation, meter: CostMeter): string | CostExhaustion => {
  const fallback = () => `failed expression: ${oneLine(rule.rule.expression, 200)}`
  if (rule.message === undefined) return fallback()
  const message = engine.evaluate(rule.message, activation, meter)
  if (message._tag === "Exhausted") return message.exhaustion
  // Like admission policies: a messageExpression that fails or is not text falls back to the default.
  return message._tag === "Value" && typeof message.value === "string" && message.value.trim() !== "" ? oneLine(message.value) : fallback()
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

/** Where the tallies stood, to go back to when a list restarts (a continue token expired). */
export interface TallyMark {
  readonly evaluations: number
  readonly tallies: ReadonlyArray<{ readonly counts: Record<Outcome, number>; readonly subjects: number }>
}

/**
 * The checks of a run under construction, fed page by page: every rule on each object of a
 * page, then the next page, so only one page of objects is held at a time. `mark` and
 * `rewind` undo the pages of a list that has to start again.
 */
export class RuleTallies {
  readonly #engine: CelEngine
  readonly #rules: ReadonlyArray<CompiledRule>
  readonly #meter: CostMeter
  readonly #options: EvaluationOptions
  readonly #unlisted: Map<string, string>
  #blocked: ReadonlyArray<string | undefined>
  readonly #tallies: Array<{ counts: Record<Outcome, number>; subjects: Array<Subject> }>
  #evaluations = 0
  #exceeded: CelBoundExceeded | undefined

  constructor(engine: CelEngine, rules: ReadonlyArray<CompiledRule>, meter: CostMeter, options: EvaluationOptions = defaultEvaluationOptions) {
    this.#engine = engine
    this.#rules = rules
    this.#meter = meter
    this.#options = options
    this.#unlisted = new Map(options.unlisted)
    this.#blocked = rules.map((rule) => blockedBy(rule, this.#unlisted))
    this.#tallies = rules.map(() => ({ counts: emptyCounts(), subjects: [] }))
  }

  get evaluations(): number {
    return this.#evaluations
  }

  /** Set once a bound is exceeded: the run must stop. */
  get exceeded(): CelBoundExceeded | undefined {
    return this.#exceeded
  }

  /** A kind could not be listed: the rules on it end in `error` with this reason. */
  refuse(kindKey: string, reason: string): void {
    this.#unlisted.set(kindKey, reason)
    this.#blocked = this.#rules.map((rule) => blockedBy(rule, this.#unlisted))
  }

  mark(): TallyMark {
    return { evaluations: this.#evaluations, tallies: this.#tallies.map(({ counts, subjects }) => ({ counts: { ...counts }, subjects: subjects.length })) }
  }

  rewind(mark: TallyMark): void {
    this.#evaluations = mark.evaluations
    mark.tallies.forEach((saved, index) => {
      const tally = this.#tallies[index]!
      tally.counts = { ...saved.counts }
      tally.subjects.length = saved.subjects
    })
  }

  /**
   * Evaluates every rule on each target (object by object: the object stays warm in the CPU
   * caches while all rules read it), pausing every `yieldEvery` evaluations. Returns false
   * when a bound was exceeded (see `exceeded`).
   */
  *evaluate(targets: Iterable<CelTarget>): Generator<void, boolean> {
    if (this.#exceeded !== undefined) return false
    const rules = this.#rules
    const { maxSubjects, yieldEvery } = this.#options
    const variables = this.#options.variables ?? []
    for (const target of targets) {
      this.#meter.admitObject()
      /** The target's activation, with its variables once a rule matches it. */
      let activation: CelActivation | undefined
      for (let index = 0; index < rules.length; index++) {
        const rule = rules[index]!
        if (this.#blocked[index] !== undefined || !matches(rule, target)) continue
        if (++this.#evaluations % yieldEvery === 0) {
          if (!this.#meter.checkClock()) return this.#exceed(rule, "wall-clock")
          yield
        }
        activation ??= variables.length === 0 ? target.activation : withVariables(this.#engine, variables, target.activation, this.#meter)
        const verdict = judge(this.#engine, rule, activation, this.#meter)
        if (verdict.outcome === "exhausted") return this.#exceed(rule, verdict.exhaustion)
        const { counts, subjects } = this.#tallies[index]!
        counts[verdict.outcome]++
        if (verdict.outcome === "pass" || subjects.length >= maxSubjects) continue
        const message = verdict.outcome === "error" ? verdict.message : failureMessage(this.#engine, rule, activation, this.#meter)
        if (message === "evaluation-cost" || message === "run-cost" || message === "wall-clock") return this.#exceed(rule, message)
        subjects.push({
          kind: target.kind,
          name: target.name,
          ...(target.namespace === undefined ? {} : { namespace: target.namespace }),
          outcome: verdict.outcome,
          message
        })
      }
    }
    return true
  }

  outcome(): RulesOutcome {
    if (this.#exceeded !== undefined) return { _tag: "Exceeded", error: this.#exceeded, evaluations: this.#evaluations }
    const checks = this.#rules.map((rule, index) => {
      const reason = this.#blocked[index]
      return reason === undefined ? checkOf(rule, this.#tallies[index]!.counts, this.#tallies[index]!.subjects) : blockedCheck(rule, reason)
    })
    return { _tag: "Checked", checks, evaluations: this.#evaluations }
  }

  #exceed(rule: CompiledRule, exhaustion: CostExhaustion): false {
    this.#exceeded = exceeded(rule, exhaustion, this.#meter)
    return false
  }
}

export function* evaluateRules(
  engine: CelEngine,
  rules: ReadonlyArray<CompiledRule>,
  targets: Iterable<CelTarget>,
  meter: CostMeter,
  options: EvaluationOptions = defaultEvaluationOptions
): Generator<void, RulesOutcome> {
  const tallies = new RuleTallies(engine, rules, meter, options)
  yield* tallies.evaluate(targets)
  return tallies.outcome()
}

/** Runs the evaluation to the end without pausing (the offline `cel test`). */
export const evaluateRulesNow = (...args: Parameters<typeof evaluateRules>): RulesOutcome => {
  const iterator = evaluateRules(...args)
  for (;;) {
    const step = iterator.next()
    if (step.done === true) return step.value
  }
}
