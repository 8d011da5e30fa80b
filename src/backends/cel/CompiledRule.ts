import type { CelRule } from "../../api/ComplianceScanRun.ts"
import { parseSelector, SelectorSyntaxError, selectorToString } from "../../services/kube/LabelSelector.ts"
import type { CelCompileResult, CelProgram, CelResultType } from "./CelEngine.ts"
import { CelCompileError } from "./CelErrors.ts"

/** A rule ready to evaluate: programs compiled, selectors parsed, defaults applied. */
export type CelResource = "pods" | "namespaces"

type Requirements = ReturnType<typeof parseSelector>

export interface CompiledRule {
  readonly rule: CelRule
  readonly resources: ReadonlySet<CelResource>
  readonly expression: CelProgram
  readonly message: CelProgram | undefined
  /** The labelSelector in list-request syntax ("" selects everything). */
  readonly labelSelector: string
  readonly labelRequirements: Requirements
  /** Undefined when the rule has no namespaceSelector (every namespace matches). */
  readonly namespaceRequirements: Requirements | undefined
}

/** Rules without `match.resources` check Pods, the common case. */
export const defaultResources: ReadonlyArray<CelResource> = ["pods"]

export type Compile = (expression: string, resultType: CelResultType) => CelCompileResult

const compileField = (
  compile: Compile,
  rule: CelRule,
  field: "expression" | "messageExpression",
  expression: string,
  resultType: CelResultType
): CelProgram | CelCompileError => {
  const compiled = compile(expression, resultType)
  if (compiled._tag === "Compiled") return compiled.program
  const { message, position } = compiled.failure
  const where = position === undefined ? "" : ` at line ${position.line}, column ${position.column}`
  return new CelCompileError({
    ruleId: rule.id,
    field,
    message: `rule "${rule.id}": ${field} does not compile${where}: ${message}`,
    ...(position === undefined ? {} : { line: position.line, column: position.column })
  })
}

const requirementsOf = (rule: CelRule, which: "labelSelector" | "namespaceSelector", text: string): Requirements | CelCompileError => {
  try {
    return parseSelector(text)
  } catch (error) {
    if (!(error instanceof SelectorSyntaxError)) throw error
    return new CelCompileError({ ruleId: rule.id, field: "match", message: `rule "${rule.id}": invalid match.${which}: ${error.message}` })
  }
}

export const compileRule = (compile: Compile, rule: CelRule): CompiledRule | CelCompileError => {
  const expression = compileField(compile, rule, "expression", rule.expression, "bool")
  if (expression instanceof CelCompileError) return expression
  const message = rule.messageExpression === undefined ? undefined : compileField(compile, rule, "messageExpression", rule.messageExpression, "string")
  if (message instanceof CelCompileError) return message
  const labelSelector = selectorToString(rule.match?.labelSelector)
  const labelRequirements = requirementsOf(rule, "labelSelector", labelSelector)
  if (labelRequirements instanceof CelCompileError) return labelRequirements
  const namespaceSelector = rule.match?.namespaceSelector
  const namespaceRequirements =
    namespaceSelector === undefined ? undefined : requirementsOf(rule, "namespaceSelector", selectorToString(namespaceSelector))
  if (namespaceRequirements instanceof CelCompileError) return namespaceRequirements
  const resources = rule.match?.resources
  return {
    rule,
    resources: new Set(resources !== undefined && resources.length > 0 ? resources : defaultResources),
    expression,
    message,
    labelSelector,
    labelRequirements,
    namespaceRequirements
  }
}

/** Every rule compiled, or the first that does not compile. */
export const compileRules = (compile: Compile, rules: ReadonlyArray<CelRule>): ReadonlyArray<CompiledRule> | CelCompileError => {
  const compiled: Array<CompiledRule> = []
  for (const rule of rules) {
    const result = compileRule(compile, rule)
    if (result instanceof CelCompileError) return result
    compiled.push(result)
  }
  return compiled
}
