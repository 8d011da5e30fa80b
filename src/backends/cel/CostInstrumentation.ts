import { celSize } from "./CelValue.ts"

/**
 * Rewrites a parsed expression so that it pays for its work while it runs. The engine has
 * no cost tracking and no hook into its comprehensions, so the text is regenerated from the
 * AST with calls to metering macros (they return their argument and charge the CostMeter;
 * see KubernetesLibrary):
 *
 * - the receiver of every comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) is
 *   wrapped in `__iterate_cost(...)`, which charges its size before the loop starts: a
 *   nested loop is refused after a bounded amount of work, before it runs;
 * - every maximal `+` chain and every `cel.bind` value is wrapped in `__size_cost(...)`,
 *   which charges the size of what was built (repeated doubling cannot run away);
 * - `s.matches(re)` becomes `__re2_matches(s, re)`: the engine's own `matches` uses a
 *   backtracking JavaScript RegExp, the replacement RE2 (linear time).
 *
 * Literals and identifiers are copied verbatim from the source; operators are re-emitted
 * with parentheses only where precedence needs them, so nesting stays close to the original.
 */

export const meteringFunctions = {
  iterate: "__iterate_cost",
  size: "__size_cost",
  matches: "__re2_matches"
} as const

/** Units for reading a text: one per 32 characters begun, and one for the call. */
export const textUnits = (text: string): number => 1 + (text.length >> 5)

/** What the metering functions charge for their argument's value, whichever path evaluates them. */
export const meteringUnits = {
  /** A comprehension's receiver: its size before the loop starts. */
  iterate: (value: unknown): number => 1 + celSize(value),
  /** What a `+` chain or a `cel.bind` built. */
  built: (value: unknown): number => (typeof value === "string" ? textUnits(value) : 1 + celSize(value))
} as const

/** The slice of the engine's AST this module reads (see ASTNode in @marcbachmann/cel-js). */
export interface ExpressionNode {
  readonly op: string
  readonly args: unknown
  readonly start: number
  readonly end: number
}

export class UninstrumentableExpression extends Error {}

const comprehensionMacros = new Set(["all", "exists", "exists_one", "map", "filter"])

/** Binding strength as the engine's parser sees it; higher binds tighter. */
const precedence = {
  conditional: 1,
  or: 2,
  and: 3,
  equality: 4,
  relation: 5,
  additive: 6,
  multiplicative: 7,
  unary: 8,
  postfix: 9
} as const

const binaryPrecedence: Record<string, number> = {
  "||": precedence.or,
  "&&": precedence.and,
  "==": precedence.equality,
  "!=": precedence.equality,
  "<": precedence.relation,
  "<=": precedence.relation,
  ">": precedence.relation,
  ">=": precedence.relation,
  in: precedence.relation,
  "+": precedence.additive,
  "-": precedence.additive,
  "*": precedence.multiplicative,
  "/": precedence.multiplicative,
  "%": precedence.multiplicative
}

const node = (value: unknown): ExpressionNode => value as ExpressionNode
const nodes = (value: unknown): ReadonlyArray<ExpressionNode> => value as ReadonlyArray<ExpressionNode>

export const instrumentForCost = (root: ExpressionNode, source: string): string => {
  const parenthesize = (text: string, own: number, required: number) => (own < required ? `(${text})` : text)

  const list = (items: ReadonlyArray<ExpressionNode>) => items.map((item) => emit(item, precedence.conditional)).join(", ")

  const emitCall = (name: string, receiver: ExpressionNode | undefined, args: ReadonlyArray<ExpressionNode>): string => {
    if (receiver === undefined) return `${name}(${list(args)})`
    if (name === "matches" && args.length === 1) {
      return `${meteringFunctions.matches}(${emit(receiver, precedence.conditional)}, ${list(args)})`
    }
    if (comprehensionMacros.has(name) && (args.length === 2 || args.length === 3)) {
      return `${meteringFunctions.iterate}(${emit(receiver, precedence.conditional)}).${name}(${list(args)})`
    }
    if (name === "bind" && receiver.op === "id" && receiver.args === "cel" && args.length === 3) {
      const [variable, value, body] = args as [ExpressionNode, ExpressionNode, ExpressionNode]
      return `cel.bind(${emit(variable, 1)}, ${meteringFunctions.size}(${emit(value, 1)}), ${emit(body, 1)})`
    }
    return `${emit(receiver, precedence.postfix)}.${name}(${list(args)})`
  }

  /** `insidePlus`: the parent is a `+`, so this chain is already metered as a whole. */
  const emit = (expression: ExpressionNode, required: number, insidePlus = false): string => {
    const { op, args } = expression
    switch (op) {
      case "value":
      case "id":
        return source.slice(expression.start, expression.end)
      case ".":
      case ".?": {
        const [object, field] = args as [unknown, string]
        return `${emit(node(object), precedence.postfix)}${op}${field}`
      }
      case "[]":
      case "[?]": {
        const [object, index] = nodes(args)
        return `${emit(object!, precedence.postfix)}[${op === "[?]" ? "?" : ""}${emit(index!, 1)}]`
      }
      case "call": {
        const [name, callArgs] = args as [string, ReadonlyArray<ExpressionNode>]
        return emitCall(name, undefined, callArgs)
      }
      case "rcall": {
        const [name, receiver, callArgs] = args as [string, ExpressionNode, ReadonlyArray<ExpressionNode>]
        return emitCall(name, receiver, callArgs)
      }
      case "list":
        return `[${list(nodes(args))}]`
      case "map": {
        const entries = args as ReadonlyArray<readonly [ExpressionNode, ExpressionNode]>
        return `{${entries.map(([key, value]) => `${emit(key, 1)}: ${emit(value, 1)}`).join(", ")}}`
      }
      case "?:": {
        const [condition, whenTrue, whenFalse] = nodes(args)
        const text = `${emit(condition!, precedence.or)} ? ${emit(whenTrue!, precedence.conditional)} : ${emit(whenFalse!, precedence.conditional)}`
        return parenthesize(text, precedence.conditional, required)
      }
      case "!_":
      case "-_": {
        const text = `${op[0]}${emit(node(args), precedence.unary)}`
        return parenthesize(text, precedence.unary, required)
      }
      default: {
        const own = binaryPrecedence[op]
        if (own === undefined) throw new UninstrumentableExpression(`unsupported syntax node "${op}"`)
        const [left, right] = nodes(args)
        const isPlus = op === "+"
        const text = `${emit(left!, own, isPlus)} ${op} ${emit(right!, own + 1, isPlus)}`
        if (isPlus && !insidePlus) return `${meteringFunctions.size}(${text})`
        return parenthesize(text, own, required)
      }
    }
  }

  return emit(root, precedence.conditional)
}
