import type { CelRule } from "../../api/ComplianceScanRun.ts"
import { CelRuleSetInvalid } from "./CelErrors.ts"
import { type Compile, type ObjectReads, objectReads } from "./CompiledRule.ts"
import type { RulePack } from "./RulePacks.ts"
import { type CompiledVariable, compileVariables } from "./RuleVariables.ts"

/**
 * The rules a run evaluates: the built-in pack named by `spec.profile` (if any) followed by
 * the inline `spec.cel.rules`. An inline rule with the id of a pack rule replaces it, so a
 * team can tune one control without copying the pack; two inline rules with one id are an
 * error (check ids must be unique in a Result).
 */
export const resolveRuleSet = (
  packs: ReadonlyMap<string, RulePack>,
  profile: string | undefined,
  inline: ReadonlyArray<CelRule>
): ReadonlyArray<CelRule> | CelRuleSetInvalid => {
  const seen = new Set<string>()
  for (const rule of inline) {
    if (seen.has(rule.id)) return new CelRuleSetInvalid({ reason: "DuplicateRuleID", message: `two rules have the id "${rule.id}"` })
    seen.add(rule.id)
  }
  let packRules: ReadonlyArray<CelRule> = []
  if (profile !== undefined && profile !== "") {
    const pack = packs.get(profile)
    if (pack === undefined) {
      const known = [...packs.keys()].sort().join(", ")
      return new CelRuleSetInvalid({ reason: "UnknownProfile", message: `unknown CEL profile "${profile}"; known profiles: ${known}` })
    }
    packRules = pack.rules
  }
  const rules = [...packRules.filter((rule) => !seen.has(rule.id)), ...inline]
  if (rules.length === 0) {
    return new CelRuleSetInvalid({ reason: "NoRules", message: "the run has no CEL rules: set spec.cel.rules or spec.profile (a built-in pack)" })
  }
  return rules
}

/**
 * The variables the run's rules may read: those of the pack named by `spec.profile` (its
 * inline rules may read them too), compiled. The packs' variables compiled when the packs
 * were loaded, so a failure here is a defect.
 */
export const runVariables = (packs: ReadonlyMap<string, RulePack>, profile: string | undefined, compile: Compile): ReadonlyArray<CompiledVariable> => {
  const compiled = compileVariables(compile, profile === undefined || profile === "" ? [] : packs.get(profile)?.variables ?? [])
  if (typeof compiled === "string") throw new Error(`built-in CEL rule pack "${profile}": ${compiled}`)
  return compiled
}

/** What of `object` the run's variables may read (every rule may read every variable). */
export const runVariableReads = (packs: ReadonlyMap<string, RulePack>, profile: string | undefined): ObjectReads =>
  objectReads((profile === undefined || profile === "" ? [] : packs.get(profile)?.variables ?? []).map((variable) => variable.expression))
