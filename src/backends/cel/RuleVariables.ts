import type { CelActivation, CelEngine, CelProgram } from "./CelEngine.ts"
import type { Compile } from "./CompiledRule.ts"
import { type CostMeter, CostExhaustedSignal } from "./CostMeter.ts"

/**
 * Variables shared by the rules of a rule set, as a ValidatingAdmissionPolicy's
 * `spec.variables`: a name and an expression, read by rules as `variables.<name>`. A built-in
 * pack defines them for what many of its rules derive from an object (all containers of a
 * Pod: 13 of the 19 restricted rules built that list themselves, a third of their evaluation).
 * Each is evaluated when a rule first reads it, at most once per object.
 */

export interface RuleVariable {
  readonly name: string
  readonly expression: string
}

export interface CompiledVariable {
  readonly name: string
  readonly program: CelProgram
}

/** Every variable compiled, or the message of the first that does not compile. */
export const compileVariables = (compile: Compile, variables: ReadonlyArray<RuleVariable>): ReadonlyArray<CompiledVariable> | string => {
  const compiled: Array<CompiledVariable> = []
  for (const { name, expression } of variables) {
    const result = compile(expression, "dyn")
    if (result._tag === "Failed") return `variable "${name}" does not compile: ${result.failure.message}`
    compiled.push({ name, program: result.program })
  }
  return compiled
}

/** `variables.<name>` in a text (over-approximates: a string literal, a comment). */
const reference = /\bvariables\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/gu

/** The names a text reads as `variables.<name>`. */
export const variableReferences = (text: string): ReadonlyArray<string> => [...text.matchAll(reference)].map((match) => match[1]!)

/** A text with every `variables.<name>` read as `variables.<rename(name)>`. */
export const renameVariables = (text: string, rename: (name: string) => string): string =>
  text.replace(reference, (_written, name: string) => `variables.${rename(name)}`)

/**
 * The activation of one object with its `variables`: a CEL map whose entries are computed on
 * first read with the same activation and meter (the cost is the reading rule's) and then
 * kept. A variable that fails fails every expression that reads it, with its message; one
 * that reads itself fails.
 *
 * A Map whose `get` computes the entry (cel-js reads a map variable with `get`), not an
 * object with an accessor per variable: V8 kept what such accessors' closures reached (the
 * whole object being evaluated) through every young-generation collection until the next
 * full one, which promoted a third of all the Pods a scan parsed (sampling heap profile).
 */
export const withVariables = (
  engine: CelEngine,
  variables: ReadonlyArray<CompiledVariable>,
  activation: CelActivation,
  meter: CostMeter
): CelActivation => {
  const results = new Map<string, ReturnType<CelEngine["evaluate"]>>()
  const values = new Map<string, unknown>()
  const scope: CelActivation = { ...activation, variables: values }
  /** Variables being evaluated: one read again before it has a value reads itself (a cycle through others too). */
  const evaluating = new Set<string>()
  const read = (name: string): unknown => {
    let result = results.get(name)
    if (result === undefined) {
      const variable = variables.find((candidate) => candidate.name === name)
      if (variable === undefined) return undefined
      if (evaluating.has(name)) throw new Error(`variable "${name}" reads itself`)
      evaluating.add(name)
      try {
        result = engine.evaluate(variable.program, scope, meter)
      } finally {
        evaluating.delete(name)
      }
      results.set(name, result)
    }
    switch (result._tag) {
      case "Value":
        return result.value
      case "Error":
        throw new Error(`variables.${name}: ${result.message}`)
      case "Exhausted":
        throw new CostExhaustedSignal(result.exhaustion)
    }
  }
  // cel-js reads a map with `get` for field selection, has() and `in` alike.
  values.get = read
  return scope
}
