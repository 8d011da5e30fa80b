import type { CelRule } from "../../api/ComplianceScanRun.ts"
import type { CelCompileResult, CelProgram, CelResultType } from "./CelEngine.ts"
import { CelCompileError } from "./CelErrors.ts"
import { type CelKind, kindsOfRule } from "./CelKinds.ts"
import { compileSelector, type SelectorRequirement, selectorQuery } from "./RuleSelector.ts"


/** A rule ready to evaluate: programs compiled, selectors parsed, kinds resolved. */

export interface CompiledRule {
  readonly rule: CelRule
  /** The kinds it matches, and their keys (`deployments.apps`). */
  readonly kinds: ReadonlyArray<CelKind>
  readonly resources: ReadonlySet<string>
  readonly expression: CelProgram
  readonly message: CelProgram | undefined
  /**
   * The labelSelector in list-request syntax for the API server to pre-filter with ("" selects
   * everything), or undefined when that syntax cannot say it exactly. Objects are matched
   * against `labelRequirements` whatever the server did.
   */
  readonly labelSelector: string | undefined
  readonly labelRequirements: ReadonlyArray<SelectorRequirement>
  /** Empty when the rule has no namespaceSelector (every namespace matches). */
  readonly namespaceRequirements: ReadonlyArray<SelectorRequirement>
  /** Whether an expression reads `networkPolicies` (so the run lists them). */
  readonly readsNetworkPolicies: boolean
  /** What of `object` its expressions may read: the scan leaves the rest out of the pages it parses. */
  readonly reads: ObjectReads
}

/**
 * What of `object` some expressions may read, so that a scan parses no more of each listed
 * object than its rules need (ListOptions.omitManagedFields and onlyMembers).
 */
export interface ObjectReads {
  /**
   * Whether they may see `metadata.managedFields` (about half of a listed Pod's JSON, which
   * the API server's field managers write and rules almost never read).
   */
  readonly managedFields: boolean
  /**
   * The members of `object` they select (`object.spec...`, `has(object.status)`), or
   * undefined when they may see all of it (`object` used other than by selecting a field).
   */
  readonly members: ReadonlySet<string> | undefined
}

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

const requirementsOf = (rule: CelRule, which: "labelSelector" | "namespaceSelector"): ReadonlyArray<SelectorRequirement> | CelCompileError => {
  const compiled = compileSelector(rule.match?.[which])
  if (compiled._tag === "Selector") return compiled.requirements
  const problems = compiled.problems.map((problem) => `match.${which}.${problem.path}: ${problem.message}`).join("; ")
  return new CelCompileError({ ruleId: rule.id, field: "match", message: `rule "${rule.id}": invalid selector: ${problems}` })
}

/** The identifier anywhere in the text: may over-approximate (a string literal), never misses a use. */
const mentions = (rule: CelRule, identifier: RegExp) => identifier.test(rule.expression) || identifier.test(rule.messageExpression ?? "")

/** A field selection after a name: `.name` not followed by `(` (a call such as `.all(` or `.size(` sees the whole value). */
const fieldSelection = /^\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\()?/u

/**
 * The fields of `name` the text selects (`object.metadata.name` selects `metadata` of
 * `object`), or undefined when it may see every field: `object.metadata.size()`,
 * `object.all(k, ...)`, `[object.metadata]`, `object['x']`, `object.?metadata`.
 * Over-approximates (a string literal, a comment), never misses a use.
 */
const fieldsSelected = (text: string, name: string): ReadonlySet<string> | undefined => {
  const fields = new Set<string>()
  for (const match of text.matchAll(new RegExp(`\\b${name}\\b`, "gu"))) {
    const selection = fieldSelection.exec(text.slice(match.index + name.length))
    if (selection === null || selection[2] !== undefined) return undefined
    fields.add(selection[1]!)
  }
  return fields
}

/** What of `object` the texts may read (over-approximated: a string literal, a comment; never a use missed). */
export const objectReads = (texts: ReadonlyArray<string>): ObjectReads => {
  let members: Set<string> | undefined = new Set()
  let managedFields = false
  for (const text of texts) {
    const selected = fieldsSelected(text, "object")
    members = selected === undefined || members === undefined ? undefined : new Set([...members, ...selected])
    managedFields ||= selected === undefined || /\bmanagedFields\b/u.test(text) || fieldsSelected(text, "metadata") === undefined
  }
  return { managedFields, members }
}

/** What of `object` all the given reads together may read. */
export const combinedReads = (reads: ReadonlyArray<ObjectReads>): ObjectReads => ({
  managedFields: reads.some((read) => read.managedFields),
  members: reads.some((read) => read.members === undefined) ? undefined : new Set(reads.flatMap((read) => [...read.members!]))
})

export const compileRule = (compile: Compile, rule: CelRule): CompiledRule | CelCompileError => {
  const expression = compileField(compile, rule, "expression", rule.expression, "bool")
  if (expression instanceof CelCompileError) return expression
  const message = rule.messageExpression === undefined ? undefined : compileField(compile, rule, "messageExpression", rule.messageExpression, "string")
  if (message instanceof CelCompileError) return message
  const labelRequirements = requirementsOf(rule, "labelSelector")
  if (labelRequirements instanceof CelCompileError) return labelRequirements
  const namespaceRequirements = requirementsOf(rule, "namespaceSelector")
  if (namespaceRequirements instanceof CelCompileError) return namespaceRequirements
  const kinds = kindsOfRule(rule)
  if (typeof kinds === "string") return new CelCompileError({ ruleId: rule.id, field: "match", message: `rule "${rule.id}": invalid match: ${kinds}` })
  return {
    rule,
    kinds,
    resources: new Set(kinds.map((known) => known.key)),
    expression,
    message,
    labelSelector: selectorQuery(labelRequirements),
    labelRequirements,
    namespaceRequirements,
    readsNetworkPolicies: mentions(rule, /\bnetworkPolicies\b/u),
    reads: objectReads([rule.expression, rule.messageExpression ?? ""])
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
