import { int64Max, int64Min } from "./CelValue.ts"
import { type ExpressionNode, meteringFunctions, meteringUnits } from "./CostInstrumentation.ts"

/**
 * A fast path for the CEL that rules are made of. @marcbachmann/cel-js interprets its AST
 * and works out the CEL type of every dyn value at run time: 0.9-1.5 CPU-µs per evaluation
 * of a restricted-pack rule on a Pod, the largest part of a 100,000-Pod scan's CPU (0.13-0.2
 * compiled, see docs/cel.md). This module compiles the same
 * metered AST into one JavaScript function per expression, for a subset: JSON values,
 * field selection, `has`, `!`/`&&`/`||`/`?:`, equality and int order, `in`, `+` on lists,
 * strings and ints, `size`, `startsWith`/`endsWith`/`contains`, the comprehension macros and
 * the metering functions. Generated code, not closures over the AST: each field selection
 * is then its own property access that V8 caches for the shapes it meets (closures share one
 * cache per kind of node, and every lookup went to the slow path).
 *
 * **Never a different answer.** It returns a value only where the value is certain: every
 * operation checks that its operands are of the plain kinds it handles, and anything else (an
 * error to report, a missing key, a double, a mix of types, a value of a library type) throws
 * `fallBack`; the engine then evaluates the expression with cel-js, which gives the real
 * value or error. Errors are rare in a scan, so that costs little. An expression with a node
 * outside the subset compiles to `undefined` and always runs on cel-js. The metering
 * functions charge exactly what cel-js charges for them, in the same order.
 *
 * **No user text in the code.** The source is built from fixed templates, generated names
 * and CEL field names, which CEL's grammar limits to `[A-Za-z_][A-Za-z0-9_]*` (checked
 * again here). Literals are passed in an array; comprehension variables get generated names.
 */

/** Thrown where the compiled code cannot be sure: evaluate with cel-js instead. Preallocated: no stack to capture. */
const fallBack: unique symbol = Symbol("evaluate with cel-js")

/** The variables an expression sees (CelActivation), by name. */
export type JsActivation = Readonly<Record<string, unknown>>

export type CompiledJs = (activation: JsActivation) => unknown

const bail = (): never => {
  throw fallBack
}

/**
 * A JSON object as cel-js takes it for a CEL map, whose fields are its own keys. cel-js tells
 * a value's type by its `constructor`: an object with a "constructor" key of its own (a label
 * named so) is no map to it but an error, so it is none here either.
 */
const isPlainMap = (value: unknown): value is Record<string, unknown> =>
  value !== null && value !== undefined && (value as { readonly constructor?: unknown }).constructor === Object

const asString = (value: unknown): string => (typeof value === "string" ? value : bail())

/** The kinds whose CEL equality is JavaScript's `===`. */
const isScalar = (value: unknown): value is string | boolean | bigint => {
  const type = typeof value
  return type === "string" || type === "boolean" || type === "bigint"
}

/** The run-time helpers the generated code calls (no property reads in them: V8 inlines them). */
const helpers = {
  bail,
  /** A field of a value that is not a plain map, or whose name is also on Object.prototype. */
  selectField: (value: unknown, field: string): unknown => {
    if (isPlainMap(value)) return Object.hasOwn(value, field) && value[field] !== undefined ? value[field] : bail()
    // The rule set's `variables` (RuleVariables): a Map whose `get` computes the entry.
    if (value instanceof Map) {
      const selected: unknown = value.get(field)
      return selected === undefined ? bail() : selected
    }
    return bail()
  },
  hasField: (value: unknown, field: string): boolean => (isPlainMap(value) ? Object.hasOwn(value, field) && value[field] !== undefined : bail()),
  present: (value: unknown): unknown => (value === undefined ? bail() : value),
  asBool: (value: unknown): boolean => (value === true || value === false ? value : bail()),
  /** What a comprehension iterates: a list's elements, a map's keys. */
  iterable: (value: unknown): ReadonlyArray<unknown> => (Array.isArray(value) ? value : isPlainMap(value) ? Object.keys(value) : bail()),
  equals: (left: unknown, right: unknown): boolean => {
    if (left === null || right === null) {
      if (left === right) return true
      // null against a scalar, a list or a JSON map: different types, so unequal (CEL's heterogeneous equality).
      const other = left === null ? right : left
      return isScalar(other) || Array.isArray(other) || isPlainMap(other) ? false : bail()
    }
    return isScalar(left) && typeof left === typeof right ? left === right : bail()
  },
  compareInts: (left: unknown, right: unknown): number => {
    if (typeof left !== "bigint" || typeof right !== "bigint") return bail()
    return left < right ? -1 : left > right ? 1 : 0
  },
  contains: (container: unknown, item: unknown): boolean => {
    if (Array.isArray(container)) {
      if (!isScalar(item)) return bail()
      for (let index = 0; index < container.length; index++) {
        const element: unknown = container[index]
        if (typeof element !== typeof item) return bail()
        if (element === item) return true
      }
      return false
    }
    return isPlainMap(container) && typeof item === "string" ? Object.hasOwn(container, item) : bail()
  },
  plus: (left: unknown, right: unknown): unknown => {
    if (Array.isArray(left) && Array.isArray(right)) return left.concat(right)
    if (typeof left === "string" && typeof right === "string") return left + right
    if (typeof left === "bigint" && typeof right === "bigint") {
      const sum = left + right
      return sum > int64Max || sum < int64Min ? bail() : sum
    }
    return bail()
  },
  size: (value: unknown): bigint => {
    if (typeof value === "string") return BigInt(codePoints(value))
    if (Array.isArray(value)) return BigInt(value.length)
    if (isPlainMap(value)) return BigInt(Object.keys(value).length)
    return bail()
  },
  startsWith: (text: unknown, prefix: unknown): boolean => asString(text).startsWith(asString(prefix)),
  endsWith: (text: unknown, suffix: unknown): boolean => asString(text).endsWith(asString(suffix)),
  includes: (text: unknown, part: unknown): boolean => asString(text).includes(asString(part)),
  index: (value: unknown, at: unknown): unknown => {
    if (Array.isArray(value) && typeof at === "bigint") return at >= 0n && at < BigInt(value.length) ? value[Number(at)] : bail()
    return typeof at === "string" ? helpers.selectField(value, at) : bail()
  },
  iterationUnits: meteringUnits.iterate,
  builtUnits: meteringUnits.built,
  /**
   * The expression's value if cel-js would take it as it is: cel-js checks the type of what
   * it returns and errs on an object it cannot type (a map with a "constructor" key).
   */
  certain: (value: unknown): unknown => (value === null || typeof value !== "object" || isJsonValue(value) ? value : bail())
}

/** A list or map of JSON values all the way down (what cel-js can type). Allocates nothing. */
const isJsonValue = (value: unknown): boolean => {
  if (value === null) return true
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
    case "number":
      return true
    case "object":
      if (Array.isArray(value)) {
        for (let index = 0; index < value.length; index++) if (!isJsonValue(value[index])) return false
        return true
      }
      if (!isPlainMap(value)) return false
      for (const key in value) if (!isJsonValue(value[key])) return false
      return true
    default:
      return false
  }
}

/** Code points of a text; a lone surrogate is left to cel-js. */
const codePoints = (text: string): number => {
  let count = 0
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index)
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(index + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return bail()
      index++
    } else if (unit >= 0xdc00 && unit <= 0xdfff) return bail()
    count++
  }
  return count
}

const literalValue = (value: unknown): unknown => {
  const type = typeof value
  return value === null || type === "boolean" || type === "string" || type === "bigint" || type === "number" ? value : unsupported("literal")
}

/** CEL's field names; anything else never reaches the generated code. */
const fieldName = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Names a plain object inherits: a field by one of them must be read as an own key. */
const inherited = (field: string): boolean => field in Object.prototype

const rootVariables = new Set(["object", "namespaceObject", "networkPolicies", "variables"])

const stringMethods: Record<string, string> = { startsWith: "startsWith", endsWith: "endsWith", contains: "includes" }

const binaryOperators: Record<string, (left: string, right: string) => string> = {
  "==": (left, right) => `equals(${left}, ${right})`,
  "!=": (left, right) => `!equals(${left}, ${right})`,
  "<": (left, right) => `(compareInts(${left}, ${right}) < 0)`,
  "<=": (left, right) => `(compareInts(${left}, ${right}) <= 0)`,
  ">": (left, right) => `(compareInts(${left}, ${right}) > 0)`,
  ">=": (left, right) => `(compareInts(${left}, ${right}) >= 0)`,
  in: (left, right) => `contains(${right}, ${left})`,
  "+": (left, right) => `plus(${left}, ${right})`
}

/** What a comprehension does with each element's value `r` (the element is `item`), and its result. */
const comprehensionSteps: Record<string, { readonly start: string; readonly step: string; readonly result: string }> = {
  all: { start: "", step: "if (!asBool(r)) return false", result: "true" },
  exists: { start: "", step: "if (asBool(r)) return true", result: "false" },
  exists_one: { start: "let count = 0", step: "if (asBool(r)) count++", result: "count === 1" },
  filter: { start: "const kept = []", step: "if (asBool(r)) kept.push(item)", result: "kept" },
  map: { start: "const mapped = []", step: "mapped.push(r)", result: "mapped" }
}

/** Thrown while compiling: the expression has a node outside the subset. */
class Unsupported extends Error {}

const unsupported = (what: string): never => {
  throw new Unsupported(what)
}

const nodes = (value: unknown): ReadonlyArray<ExpressionNode> => value as ReadonlyArray<ExpressionNode>

/**
 * The compiled function of a metered expression's AST (see CostInstrumentation), or
 * undefined when it uses anything outside the subset. `charge` charges the evaluation's meter.
 */
export const compileToJs = (root: ExpressionNode, charge: (units: number) => void): CompiledJs | undefined => {
  const constants: Array<unknown> = []
  let temporaries = 0
  let comprehensionCount = 0
  const comprehensions: Array<string> = []
  /** Comprehension variables in scope, innermost last, with their generated names. */
  const scope: Array<{ readonly name: string; readonly variable: string }> = []

  const temporary = () => `t${temporaries++}`

  const constant = (value: unknown): string => {
    constants.push(value)
    return `k[${constants.length - 1}]`
  }

  const literal = (value: unknown): string => {
    if (value === null || value === true || value === false) return String(value)
    return constant(literalValue(value))
  }

  const identifier = (name: string): string => {
    for (let index = scope.length - 1; index >= 0; index--) if (scope[index]!.name === name) return scope[index]!.variable
    return rootVariables.has(name) ? `present(a.${name})` : unsupported(`identifier ${name}`)
  }

  const field = (name: unknown): string => (typeof name === "string" && fieldName.test(name) ? name : unsupported("field name"))

  /** Assigns `target` to `value` and tests it with isPlainMap, inline: the property read is then this site's own. */
  const isJsonObject = (value: string, target: string) => `((${value} = ${target}) != null && ${value}.constructor === Object)`

  /** `target.name`: a property read of its own for JSON objects, the helper for the rest. */
  const select = (target: string, name: string): string => {
    if (inherited(name)) return `selectField(${target}, "${name}")`
    const value = temporary()
    return `(${isJsonObject(value, target)} ? ((${value} = ${value}.${name}) === undefined ? bail() : ${value}) : selectField(${value}, "${name}"))`
  }

  /** `has(target.name)`: the selections before the last must exist (they are ordinary selections). */
  const has = (argument: ExpressionNode): string => {
    if (argument.op !== ".") return unsupported("has argument")
    const [target, name] = argument.args as [ExpressionNode, unknown]
    const checked = field(name)
    if (inherited(checked)) return `hasField(${emit(target)}, "${checked}")`
    const value = temporary()
    return `(${isJsonObject(value, emit(target))} ? ${value}.${checked} !== undefined : hasField(${value}, "${checked}"))`
  }

  const comprehension = (name: string, receiver: ExpressionNode, args: ReadonlyArray<ExpressionNode>): string => {
    const steps = comprehensionSteps[name]!
    if (args.length !== 2 || args[0]!.op !== "id" || typeof args[0]!.args !== "string") return unsupported(`macro ${name}`)
    const items = emit(receiver)
    const index = comprehensionCount++
    const variable = `v${index}`
    scope.push({ name: args[0]!.args, variable })
    const body = emit(args[1]!)
    scope.pop()
    comprehensions.push(
      `const c${index} = (items) => { ${steps.start}; for (let i = 0; i < items.length; i++) { const item = items[i]; ${variable} = item; const r = ${body}; ${steps.step} } return ${steps.result} }`
    )
    return `c${index}(iterable(${items}))`
  }

  const metering = (name: string, args: ReadonlyArray<ExpressionNode>): string => {
    const units = name === meteringFunctions.iterate ? "iterationUnits" : name === meteringFunctions.size ? "builtUnits" : undefined
    if (units === undefined || args.length !== 1) return unsupported(`function ${name}`)
    const value = temporary()
    return `(${value} = ${emit(args[0]!)}, charge(${units}(${value})), ${value})`
  }

  const call = (name: string, args: ReadonlyArray<ExpressionNode>): string => {
    if (name === "has" && args.length === 1) return has(args[0]!)
    if (name === "size" && args.length === 1) return `size(${emit(args[0]!)})`
    return metering(name, args)
  }

  const receiverCall = (name: string, receiver: ExpressionNode, args: ReadonlyArray<ExpressionNode>): string => {
    if (Object.hasOwn(comprehensionSteps, name)) return comprehension(name, receiver, args)
    if (name === "size" && args.length === 0) return `size(${emit(receiver)})`
    const method = Object.hasOwn(stringMethods, name) ? stringMethods[name] : undefined
    if (method === undefined || args.length !== 1) return unsupported(`method ${name}`)
    return `${method}(${emit(receiver)}, ${emit(args[0]!)})`
  }

  const emit = (expression: ExpressionNode): string => {
    const { op, args } = expression
    switch (op) {
      case "value":
        return literal(args)
      case "id":
        return typeof args === "string" ? identifier(args) : unsupported("identifier")
      case ".": {
        const [target, name] = args as [ExpressionNode, unknown]
        return select(emit(target), field(name))
      }
      case "[]": {
        const [target, index] = nodes(args)
        return `index(${emit(target!)}, ${emit(index!)})`
      }
      case "call": {
        const [name, callArgs] = args as [string, ReadonlyArray<ExpressionNode>]
        return call(name, callArgs)
      }
      case "rcall": {
        const [name, receiver, callArgs] = args as [string, ExpressionNode, ReadonlyArray<ExpressionNode>]
        return receiverCall(name, receiver, callArgs)
      }
      case "list": {
        const items = nodes(args)
        // A list of literals is built once (frozen: nothing may change it).
        if (items.every((item) => item.op === "value")) return constant(Object.freeze(items.map((item) => literalValue(item.args))))
        return `[${items.map(emit).join(", ")}]`
      }
      case "!_":
        return `!asBool(${emit(args as ExpressionNode)})`
      case "&&":
      case "||": {
        const [left, right] = nodes(args)
        return `(asBool(${emit(left!)}) ${op} asBool(${emit(right!)}))`
      }
      case "?:": {
        const [condition, whenTrue, whenFalse] = nodes(args)
        return `(asBool(${emit(condition!)}) ? ${emit(whenTrue!)} : ${emit(whenFalse!)})`
      }
      default: {
        const operator = Object.hasOwn(binaryOperators, op) ? binaryOperators[op] : undefined
        if (operator === undefined) return unsupported(`operator ${op}`)
        const [left, right] = nodes(args)
        return operator(emit(left!), emit(right!))
      }
    }
  }

  let body: string
  try {
    body = emit(root)
  } catch (error) {
    if (error instanceof Unsupported) return undefined
    throw error
  }
  const locals = [
    ...Array.from({ length: temporaries }, (_, index) => `t${index}`),
    ...Array.from({ length: comprehensionCount }, (_, index) => `v${index}`)
  ]
  // Made once per expression: an evaluation allocates no functions. The slots are cleared
  // after each one, so nothing long-lived keeps an object of a page reachable (it would be
  // promoted to the old generation). An evaluation nested in another of the same function
  // (possible only through a variable that reads itself, an error) goes to cel-js.
  const slots = ["a", ...locals]
  const source = [
    `"use strict"`,
    `const { ${Object.keys(helpers).join(", ")} } = h`,
    `let busy = false`,
    `let ${slots.join(", ")}`,
    ...comprehensions,
    `return (activation) => {`,
    `if (busy) bail()`,
    `busy = true`,
    `a = activation`,
    `try { return certain(${body}) } finally { busy = false; ${slots.map((slot) => `${slot} = undefined`).join("; ")} }`,
    `}`
  ].join("\n")
  type Factory = (h: typeof helpers, k: ReadonlyArray<unknown>, charge: (units: number) => void) => CompiledJs
  let factory: Factory
  try {
    // Built from templates, generated names and checked field names only (see the top of this module).
    factory = new Function("h", "k", "charge", source) as Factory
  } catch (error) {
    // Node run with --disallow-code-generation-from-strings: cel-js evaluates everything.
    if (error instanceof EvalError) return undefined
    throw error
  }
  return factory(helpers, constants, charge)
}
