import { Duration, UnsignedInt } from "@marcbachmann/cel-js/evaluator"

/**
 * `"...".format([args])` from the Kubernetes CEL strings library: verbs %s %d %f %e %b
 * %o %x %X and %%, with an optional precision for %f and %e (`%.2f`).
 */

export class FormatError extends Error {}

const isInteger = (value: unknown): value is bigint | UnsignedInt => typeof value === "bigint" || value instanceof UnsignedInt

const integerOf = (value: bigint | UnsignedInt): bigint => (typeof value === "bigint" ? value : value.valueOf())

const doubleOf = (value: unknown, verb: string): number => {
  if (typeof value === "number") return value
  if (isInteger(value)) return Number(integerOf(value))
  throw new FormatError(`format: %${verb} needs a number, got ${describe(value)}`)
}

const describe = (value: unknown): string => (value === null ? "null" : Array.isArray(value) ? "list" : typeof value)

const formatDouble = (value: number): string => {
  if (Number.isNaN(value)) return "NaN"
  if (value === Infinity) return "+Inf"
  if (value === -Infinity) return "-Inf"
  return String(value)
}

/** The text of a value for %s (and string contexts). */
export const displayValue = (value: unknown): string => {
  if (typeof value === "string") return value
  if (typeof value === "number") return formatDouble(value)
  if (typeof value === "bigint" || typeof value === "boolean") return String(value)
  if (value === null || value === undefined) return "null"
  if (value instanceof UnsignedInt) return String(value.valueOf())
  if (value instanceof Uint8Array) return new TextDecoder().decode(value)
  if (value instanceof Date) return value.toISOString()
  if (value instanceof Duration) return value.toString()
  if (Array.isArray(value)) return `[${value.map(displayValue).join(", ")}]`
  if (value instanceof Map) return displayEntries([...value.entries()])
  if (Object.getPrototypeOf(value) === Object.prototype) return displayEntries(Object.entries(value))
  return String(value)
}

const displayEntries = (entries: Array<[unknown, unknown]>): string =>
  `{${entries
    .map(([key, item]) => [displayValue(key), displayValue(item)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, item]) => `${key}: ${item}`)
    .join(", ")}`

const withSign = (value: bigint, radix: number, upper = false): string => {
  const digits = (value < 0n ? -value : value).toString(radix)
  return (value < 0n ? "-" : "") + (upper ? digits.toUpperCase() : digits)
}

/** Go prints at least two exponent digits: 1.5e+00. */
const exponential = (value: number, precision: number): string => {
  if (!Number.isFinite(value)) return formatDouble(value)
  return value.toExponential(precision).replace(/e([+-])(\d)$/, "e$10$2")
}

const hex = (value: unknown, upper: boolean): string => {
  if (isInteger(value)) return withSign(integerOf(value), 16, upper)
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value instanceof Uint8Array ? value : undefined
  if (bytes === undefined) throw new FormatError(`format: %${upper ? "X" : "x"} needs an integer, string or bytes, got ${describe(value)}`)
  const text = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")
  return upper ? text.toUpperCase() : text
}

const integerVerb = (value: unknown, verb: string, radix: number): string => {
  if (!isInteger(value)) throw new FormatError(`format: %${verb} needs an integer, got ${describe(value)}`)
  return withSign(integerOf(value), radix)
}

export const formatString = (template: string, args: ReadonlyArray<unknown>): string => {
  let output = ""
  let next = 0
  for (let index = 0; index < template.length; index++) {
    const char = template[index]!
    if (char !== "%") {
      output += char
      continue
    }
    let cursor = index + 1
    let precision: number | undefined
    const precisionMatch = /^\.(\d+)/.exec(template.slice(cursor))
    if (precisionMatch) {
      precision = Number(precisionMatch[1])
      cursor += precisionMatch[0].length
    }
    const verb = template[cursor]
    if (verb === undefined) throw new FormatError("format: the template ends inside a % clause")
    index = cursor
    if (verb === "%") {
      output += "%"
      continue
    }
    if (next >= args.length) throw new FormatError(`format: too few arguments for the template (needed more than ${args.length})`)
    const value = args[next++]
    switch (verb) {
      case "s":
        output += displayValue(value)
        break
      case "d":
        output += integerVerb(value, verb, 10)
        break
      case "b":
        output += integerVerb(value, verb, 2)
        break
      case "o":
        output += integerVerb(value, verb, 8)
        break
      case "x":
      case "X":
        output += hex(value, verb === "X")
        break
      case "f": {
        const number = doubleOf(value, verb)
        output += Number.isFinite(number) ? number.toFixed(Math.min(precision ?? 6, 100)) : formatDouble(number)
        break
      }
      case "e":
        output += exponential(doubleOf(value, verb), Math.min(precision ?? 6, 100))
        break
      default:
        throw new FormatError(`format: unknown verb %${verb}`)
    }
  }
  return output
}
