import type { CostExhaustion, CostMeter } from "./CostMeter.ts"

/**
 * The project's own small interface to a CEL engine, so the implementation
 * (@marcbachmann/cel-js today, see CelJsEngine) can be swapped without touching the
 * scanner, the rule packs or the `cel test` command.
 *
 * Every expression sees the same environment: `object` (the resource, a map),
 * `namespaceObject` (its Namespace, or null) and `networkPolicies` (the NetworkPolicies of
 * its namespace), with the Kubernetes CEL libraries.
 */

/** Where in an expression a problem is: 0-based offset, 1-based line and column. */
export interface CelPosition {
  readonly offset: number
  readonly line: number
  readonly column: number
}

export interface CelCompileFailure {
  readonly message: string
  readonly position?: CelPosition
}

/** What an expression must evaluate to: rules are predicates, messageExpressions text, variables anything. */
export type CelResultType = "bool" | "string" | "dyn"

/** A compiled, reusable expression. Opaque: only the engine that made it can run it. */
export interface CelProgram {
  readonly expression: string
  readonly resultType: CelResultType
}

export type CelCompileResult =
  | { readonly _tag: "Compiled"; readonly program: CelProgram }
  | { readonly _tag: "Failed"; readonly failure: CelCompileFailure }

export type CelEvaluation =
  /** `value` is a CEL value in the engine's representation (booleans and strings are plain JS). */
  | { readonly _tag: "Value"; readonly value: unknown }
  /** The expression failed on this input (no such key, no matching overload, ...). */
  | { readonly _tag: "Error"; readonly message: string }
  /** A cost or time bound ran out: the run must stop. */
  | { readonly _tag: "Exhausted"; readonly exhaustion: CostExhaustion }

/** Variables of one evaluation (already converted with `fromJson`). */
export interface CelActivation {
  readonly object: unknown
  readonly namespaceObject: unknown
  /** The NetworkPolicies of the object's namespace (a CEL list); absent when no rule uses them. */
  readonly networkPolicies?: unknown
  /** The rule set's variables (RuleVariables), each evaluated at most once per object; absent when it has none. */
  readonly variables?: unknown
}

export interface CelEngine {
  readonly compile: (expression: string, resultType: CelResultType) => CelCompileResult
  readonly evaluate: (program: CelProgram, activation: CelActivation, meter: CostMeter) => CelEvaluation
  /** A JSON value as CEL sees it: integral numbers become ints so arithmetic works. */
  readonly fromJson: (json: unknown) => unknown
  /** The CEL type name of a value, for messages ("got string"). */
  readonly typeName: (value: unknown) => string
}

/** 1-based line and column of an offset in a text. */
export const positionAt = (text: string, offset: number): CelPosition => {
  const clamped = Math.max(0, Math.min(offset, text.length))
  let line = 1
  let lineStart = 0
  for (let index = 0; index < clamped; index++) {
    if (text.charCodeAt(index) === 10) {
      line++
      lineStart = index + 1
    }
  }
  return { offset: clamped, line, column: clamped - lineStart + 1 }
}
