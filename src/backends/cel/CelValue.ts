import { Duration, UnsignedInt } from "@marcbachmann/cel-js/evaluator"
import { Optional } from "@marcbachmann/cel-js"

/**
 * CEL values as @marcbachmann/cel-js represents them: int is bigint, double is number,
 * uint is UnsignedInt, list is Array, map is a plain object (or Map), bytes Uint8Array,
 * timestamp Date. Helpers for the Kubernetes library functions that compare values.
 */

/** The range of CEL's int: a result outside it is an overflow error. */
export const int64Max = (1n << 63n) - 1n
export const int64Min = -(1n << 63n)

/** Outside the int64 range an integral JSON number stays a double (as the API server would). */
const int64Limit = 9_223_372_036_854_775_807

/**
 * A JSON value as CEL sees it. JSON has one number type, so integral numbers become CEL
 * ints (`object.spec.replicas + 1` works) and the others stay doubles. Copies, never mutates.
 */
export const fromJson = (json: unknown): unknown => {
  switch (typeof json) {
    case "number":
      return Number.isInteger(json) && Math.abs(json) < int64Limit ? BigInt(json) : json
    case "object": {
      if (json === null) return null
      if (Array.isArray(json)) return json.map(fromJson)
      if (json instanceof Date || json instanceof Uint8Array) return json
      const source = json as Record<string, unknown>
      const copy: Record<string, unknown> = {}
      const keys = Object.keys(source)
      for (let index = 0; index < keys.length; index++) {
        const key = keys[index]!
        // A "__proto__" key from JSON.parse must stay a plain key, never set the prototype.
        if (key === "__proto__") Object.defineProperty(copy, key, { value: fromJson(source[key]), enumerable: true })
        else copy[key] = fromJson(source[key])
      }
      return copy
    }
    default:
      return json
  }
}

/**
 * `fromJson` for values the caller owns and never reads as JSON again (a page of a list,
 * just parsed): converted in place, so a scan makes no second copy of every object it
 * reads. Frozen parts (the simulated cluster's stored objects) are copied instead.
 */
export const adoptJson = (json: unknown): unknown => {
  if (typeof json !== "object" || json === null || Object.isFrozen(json)) return fromJson(json)
  if (Array.isArray(json)) {
    for (let index = 0; index < json.length; index++) {
      const item: unknown = json[index]
      if (typeof item === "number" || (typeof item === "object" && item !== null)) json[index] = adoptJson(item)
    }
    return json
  }
  if (json instanceof Date || json instanceof Uint8Array) return json
  const record = json as Record<string, unknown>
  const keys = Object.keys(record)
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index]!
    const value = record[key]
    if (typeof value !== "number" && (typeof value !== "object" || value === null)) continue
    // A "__proto__" key from JSON.parse must stay a plain key, never set the prototype.
    if (key === "__proto__") Object.defineProperty(record, key, { value: adoptJson(value), enumerable: true, writable: true, configurable: true })
    else record[key] = adoptJson(value)
  }
  return record
}

/** Values of the Kubernetes library types name their CEL type themselves. */
export interface CelTypedValue {
  readonly celTypeName: string
}

const isTyped = (value: object): value is CelTypedValue => typeof (value as Partial<CelTypedValue>).celTypeName === "string"

export const celTypeName = (value: unknown): string => {
  switch (typeof value) {
    case "boolean":
      return "bool"
    case "string":
      return "string"
    case "bigint":
      return "int"
    case "number":
      return "double"
    case "undefined":
      return "unknown"
    case "object": {
      if (value === null) return "null_type"
      if (Array.isArray(value) || value instanceof Set) return "list"
      if (value instanceof Uint8Array) return "bytes"
      if (value instanceof UnsignedInt) return "uint"
      if (value instanceof Date) return "google.protobuf.Timestamp"
      if (value instanceof Duration) return "google.protobuf.Duration"
      if (value instanceof Optional) return "optional_type"
      if (isTyped(value)) return value.celTypeName
      return "map"
    }
    default:
      return typeof value
  }
}

const isNumeric = (value: unknown): value is bigint | number | UnsignedInt =>
  typeof value === "bigint" || typeof value === "number" || value instanceof UnsignedInt

const numericValue = (value: bigint | number | UnsignedInt): bigint | number =>
  value instanceof UnsignedInt ? value.valueOf() : value

const isMapValue = (value: unknown): value is Record<string, unknown> | Map<unknown, unknown> =>
  typeof value === "object" && value !== null && (value instanceof Map || Object.getPrototypeOf(value) === Object.prototype)

const mapEntries = (value: Record<string, unknown> | Map<unknown, unknown>): Array<[unknown, unknown]> =>
  value instanceof Map ? [...value.entries()] : Object.entries(value)

/** CEL equality: numbers compare across int, uint and double; lists and maps deeply. */
export const celEquals = (left: unknown, right: unknown): boolean => {
  if (left === right) return true
  if (isNumeric(left) && isNumeric(right)) {
    // Loose equality compares bigint and number exactly (1n == 1, NaN never equal).
    // eslint-disable-next-line eqeqeq
    return numericValue(left) == numericValue(right)
  }
  if (typeof left !== "object" || typeof right !== "object" || left === null || right === null) return false
  if (Array.isArray(left) && Array.isArray(right)) {
    return left.length === right.length && left.every((item, index) => celEquals(item, right[index]))
  }
  if (left instanceof Uint8Array && right instanceof Uint8Array) {
    return left.length === right.length && left.every((byte, index) => byte === right[index])
  }
  if (left instanceof Date && right instanceof Date) return left.getTime() === right.getTime()
  if (left instanceof Duration && right instanceof Duration) {
    return left.seconds === right.seconds && left.nanos === right.nanos
  }
  if (isMapValue(left) && isMapValue(right)) {
    const leftEntries = mapEntries(left)
    const rightEntries = new Map(mapEntries(right))
    return (
      leftEntries.length === rightEntries.size &&
      leftEntries.every(([key, value]) => rightEntries.has(key) && celEquals(value, rightEntries.get(key)))
    )
  }
  const comparable = left as { equals?: (other: unknown) => boolean }
  return typeof comparable.equals === "function" && comparable.equals(right)
}

/**
 * CEL ordering (`<`) of two values: negative, zero or positive; undefined when the types
 * cannot be ordered against each other.
 */
export const celCompare = (left: unknown, right: unknown): number | undefined => {
  if (isNumeric(left) && isNumeric(right)) {
    const a = numericValue(left)
    const b = numericValue(right)
    if (Number.isNaN(a) || Number.isNaN(b)) return undefined
    return a < b ? -1 : a > b ? 1 : 0
  }
  if (typeof left === "string" && typeof right === "string") return left < right ? -1 : left > right ? 1 : 0
  if (typeof left === "boolean" && typeof right === "boolean") return Number(left) - Number(right)
  if (left instanceof Date && right instanceof Date) return Math.sign(left.getTime() - right.getTime())
  if (left instanceof Duration && right instanceof Duration) return Math.sign(left.valueOf() - right.valueOf())
  const ordered = left as { compareTo?: (other: unknown) => number | undefined }
  if (typeof ordered?.compareTo === "function" && celTypeName(left) === celTypeName(right)) return ordered.compareTo(right)
  return undefined
}

/** How much a value weighs for the cost meter: its element or character count. */
export const celSize = (value: unknown): number => {
  if (typeof value === "string") return value.length
  if (Array.isArray(value)) return value.length
  if (value instanceof Uint8Array) return value.length
  if (value instanceof Map || value instanceof Set) return value.size
  if (isMapValue(value)) return Object.keys(value).length
  return 1
}
