import { Environment, type ParseResult } from "@marcbachmann/cel-js"
import type {
  CelActivation,
  CelCompileFailure,
  CelCompileResult,
  CelEngine,
  CelEvaluation,
  CelProgram,
  CelResultType
} from "./CelEngine.ts"
import { positionAt } from "./CelEngine.ts"
import { celTypeName, fromJson } from "./CelValue.ts"
import { type CompiledJs, compileToJs } from "./JsCompiler.ts"
import { type ExpressionNode, instrumentForCost, meteringFunctions } from "./CostInstrumentation.ts"
import { CostExhaustedSignal, type CostMeter } from "./CostMeter.ts"
import { registerKubernetesLibrary } from "./library/KubernetesLibrary.ts"
import { Re2Patterns } from "./library/Re2Patterns.ts"

/**
 * The CelEngine on @marcbachmann/cel-js (fast, type-checked, parses Kubernetes optional
 * syntax). What the package lacks is added here: static limits on the expression, RE2
 * regular expressions (validated at compile time when the pattern is a literal), cost
 * metering through CostInstrumentation, and the Kubernetes libraries.
 *
 * Each expression is parsed and type-checked as written (so errors point at the user's
 * text), then its metered rewrite is compiled once and that is what runs: as JavaScript
 * (JsCompiler) when it is within that subset, which hands cel-js every evaluation it is not
 * sure of, and on cel-js otherwise.
 */

export interface CelEngineLimits {
  /** Characters in one expression. */
  readonly maxExpressionLength: number
  /** Syntax nodes in one expression. */
  readonly maxAstNodes: number
  /** Nesting of parentheses, calls, selections, lists and maps. */
  readonly maxNestingDepth: number
  readonly maxListLiteralElements: number
  readonly maxMapLiteralEntries: number
}

export const defaultCelEngineLimits: CelEngineLimits = {
  maxExpressionLength: 10_000,
  maxAstNodes: 2_000,
  maxNestingDepth: 64,
  maxListLiteralElements: 1_000,
  maxMapLiteralEntries: 1_000
}

class CelJsProgram implements CelProgram {
  readonly expression: string
  readonly resultType: CelResultType
  readonly owner: object
  readonly run: ParseResult
  /** The same metered expression compiled to JavaScript (JsCompiler), when it is within its subset. */
  readonly fast: CompiledJs | undefined

  constructor(expression: string, resultType: CelResultType, owner: object, run: ParseResult, fast: CompiledJs | undefined) {
    this.expression = expression
    this.resultType = resultType
    this.owner = owner
    this.run = run
    this.fast = fast
  }
}

interface EngineError {
  readonly summary?: string
  readonly message: string
  readonly range?: { readonly start: number }
  readonly code?: string
}

const limitMessages: Record<string, (limits: CelEngineLimits) => string> = {
  maxDepth: (limits) => `the expression nests deeper than ${limits.maxNestingDepth} levels`,
  maxAstNodes: (limits) => `the expression is too large (more than ${limits.maxAstNodes} syntax nodes)`,
  maxListElements: (limits) => `a list literal has more than ${limits.maxListLiteralElements} elements`,
  maxMapEntries: (limits) => `a map literal has more than ${limits.maxMapLiteralEntries} entries`,
  maxCallArguments: () => "a call has too many arguments"
}

/** The engine's names for the metering rewrites are not the user's: say `matches`. */
const userFacing = (text: string): string => text.replaceAll(meteringFunctions.matches, "matches")

const summaryOf = (error: unknown): string => {
  if (error instanceof Error) return userFacing((error as EngineError).summary ?? error.message)
  return String(error)
}

/** A type the checker inferred that can still turn out to be `expected` at run time. */
const mayBe = (type: string | undefined, expected: CelResultType): boolean =>
  expected === "dyn" || type === undefined || type === expected || type === "dyn" || type === `dyn<${expected}>` || /^[A-Z]$/.test(type)

const regexMethods = new Set(["matches", "find", "findAll"])

/** Literal patterns given to matches/find/findAll, with where they are. */
const literalPatterns = (root: ExpressionNode): Array<{ readonly pattern: string; readonly offset: number }> => {
  const found: Array<{ pattern: string; offset: number }> = []
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit)
    if (typeof value !== "object" || value === null || !("op" in value)) return
    const expression = value as ExpressionNode
    if (expression.op === "rcall" || expression.op === "call") {
      const args = expression.args as ReadonlyArray<unknown>
      const name = args[0] as string
      const callArgs = (expression.op === "rcall" ? args[2] : args[1]) as ReadonlyArray<ExpressionNode>
      const patternArg = expression.op === "rcall" ? callArgs[0] : name === "matches" ? callArgs[1] : undefined
      if (regexMethods.has(name) && patternArg?.op === "value" && typeof patternArg.args === "string") {
        found.push({ pattern: patternArg.args, offset: patternArg.start })
      }
    }
    visit(expression.args)
  }
  visit(root)
  return found
}

export interface CelEngineOptions {
  /** Evaluate with compiled JavaScript where it is certain (JsCompiler); off, cel-js evaluates everything. */
  readonly compiledJs: boolean
  /** Called each time compiled code hands an evaluation to cel-js (tests count them). */
  readonly onFallBack?: () => void
}

/** Whether a program of this engine runs as compiled JavaScript (JsCompiler) before cel-js. */
export const isCompiledToJs = (program: CelProgram): boolean => program instanceof CelJsProgram && program.fast !== undefined

export const makeCelJsEngine = (limits: CelEngineLimits = defaultCelEngineLimits, options: CelEngineOptions = { compiledJs: true }): CelEngine => {
  const owner = {}
  const patterns = new Re2Patterns()
  // The meter of the evaluation in progress: evaluation is synchronous, so one slot per engine.
  let currentMeter: CostMeter | undefined

  const base = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false })
    .registerVariable("object", "map", { description: "The resource being checked." })
    .registerVariable("namespaceObject", "dyn", { description: "The resource's Namespace, or null." })
    .registerVariable("networkPolicies", "list", { description: "The NetworkPolicies of the resource's namespace." })
    .registerVariable("variables", "map", { description: "The rule set's variables, each evaluated once per resource." })
  const charge = (units: number) => currentMeter?.charge(units)
  registerKubernetesLibrary(base, { charge, patterns })

  const asWritten = base.clone({
    limits: {
      maxAstNodes: limits.maxAstNodes,
      maxDepth: limits.maxNestingDepth,
      maxListElements: limits.maxListLiteralElements,
      maxMapEntries: limits.maxMapLiteralEntries
    }
  })
  // The rewrite adds one call around some nodes: give it room, the user's text was checked above.
  const metered = base.clone({
    limits: {
      maxAstNodes: limits.maxAstNodes * 2 + 16,
      maxDepth: limits.maxNestingDepth * 2 + 16,
      maxListElements: limits.maxListLiteralElements,
      maxMapEntries: limits.maxMapLiteralEntries
    }
  })

  const failure = (expression: string, message: string, offset?: number): CelCompileResult => {
    const failed: CelCompileFailure = offset === undefined ? { message } : { message, position: positionAt(expression, offset) }
    return { _tag: "Failed", failure: failed }
  }

  const engineFailure = (expression: string, error: unknown): CelCompileResult => {
    const engineError = error as EngineError
    const limit = /Exceeded (\w+)/.exec(engineError.summary ?? "")?.[1]
    const message = limit !== undefined && limitMessages[limit] ? limitMessages[limit](limits) : summaryOf(error)
    return failure(expression, message, engineError.range?.start)
  }

  const compile = (expression: string, resultType: CelResultType): CelCompileResult => {
    if (expression.length > limits.maxExpressionLength) {
      return failure(expression, `the expression is ${expression.length} characters long; the limit is ${limits.maxExpressionLength}`)
    }
    let parsed: ParseResult
    try {
      parsed = asWritten.parse(expression)
    } catch (error) {
      return engineFailure(expression, error)
    }
    const ast = parsed.ast as unknown as ExpressionNode
    for (const { pattern, offset } of literalPatterns(ast)) {
      const problem = patterns.validate(pattern)
      if (problem !== undefined) return failure(expression, problem, offset)
    }
    const checked = parsed.check()
    if (!checked.valid) return engineFailure(expression, checked.error)
    if (!mayBe(checked.type, resultType)) {
      return failure(expression, `the expression must evaluate to ${resultType}, but its type is ${checked.type}`, 0)
    }
    try {
      const run = metered.parse(instrumentForCost(ast, expression))
      const runChecked = run.check()
      if (!runChecked.valid) throw runChecked.error
      const fast = options.compiledJs ? compileToJs(run.ast as unknown as ExpressionNode, charge) : undefined
      return { _tag: "Compiled", program: new CelJsProgram(expression, resultType, owner, run, fast) }
    } catch (error) {
      // A defect of the instrumentation, not of the user's rule; still reported, never run unmetered.
      return failure(expression, `internal error preparing the expression for bounded evaluation: ${summaryOf(error)}`)
    }
  }

  const evaluate = (program: CelProgram, activation: CelActivation, meter: CostMeter): CelEvaluation => {
    if (!(program instanceof CelJsProgram) || program.owner !== owner) {
      throw new TypeError("a CEL program can only be evaluated by the engine that compiled it")
    }
    // A variable evaluated while a rule is (RuleVariables): it adds to the rule's own cost
    // instead of starting a count of its own, and the rule's meter is back once it is done.
    const outer = currentMeter
    currentMeter = meter
    try {
      if (outer === undefined) meter.startEvaluation()
      else meter.charge(1)
      const value = evaluateFirstFast(program, activation, meter, outer === undefined)
      if (meter.exhaustion !== undefined) return { _tag: "Exhausted", exhaustion: meter.exhaustion }
      if (value instanceof Promise) return { _tag: "Error", message: "the expression did not evaluate synchronously" }
      return { _tag: "Value", value }
    } catch (error) {
      if (meter.exhaustion !== undefined) return { _tag: "Exhausted", exhaustion: meter.exhaustion }
      if (error instanceof CostExhaustedSignal) return { _tag: "Exhausted", exhaustion: error.exhaustion }
      if (error instanceof RangeError) return { _tag: "Error", message: `the expression ran out of resources: ${error.message}` }
      return { _tag: "Error", message: summaryOf(error) }
    } finally {
      currentMeter = outer
    }
  }

  /**
   * The compiled code's value, or cel-js's where it could not be sure (see JsCompiler) or
   * anything but the meter stopped it (a variable that failed: cel-js words its error).
   * Units the compiled code charged before giving up stay on the run's count (that work was
   * done); an outermost evaluation starts its own count again for cel-js.
   */
  const evaluateFirstFast = (program: CelJsProgram, activation: CelActivation, meter: CostMeter, outermost: boolean): unknown => {
    const input = activation as unknown as Record<string, unknown>
    if (program.fast !== undefined) {
      try {
        return program.fast(input)
      } catch (error) {
        if (error instanceof CostExhaustedSignal) throw error
        options.onFallBack?.()
        if (outermost) meter.startEvaluation()
      }
    }
    return program.run(input)
  }

  return { compile, evaluate, fromJson, typeName: celTypeName }
}
