/**
 * JSON value helpers of the simulated API server: merge patches, structural equality and
 * copies, over plain JSON data (objects as they travel on the wire).
 */
type JsonRecord = Record<string, unknown>

const isRecord = (value: unknown): value is JsonRecord =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * RFC 7386 JSON merge patch: `null` removes a key, objects merge recursively, anything
 * else (arrays included) replaces the target value.
 */
export const mergePatch = (target: unknown, patch: unknown): unknown => {
  if (!isRecord(patch)) return patch
  const result: JsonRecord = isRecord(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key]
    } else {
      result[key] = mergePatch(result[key], value)
    }
  }
  return result
}

/** Structural equality of JSON values; key order does not matter, `undefined` keys count as absent. */
export const jsonEqual = (left: unknown, right: unknown): boolean => {
  if (left === right) return true
  if (Array.isArray(left)) {
    return Array.isArray(right) && left.length === right.length && left.every((item, index) => jsonEqual(item, right[index]))
  }
  if (isRecord(left) && isRecord(right)) {
    const leftKeys = Object.keys(left).filter((key) => left[key] !== undefined)
    const rightKeys = Object.keys(right).filter((key) => right[key] !== undefined)
    return leftKeys.length === rightKeys.length && leftKeys.every((key) => jsonEqual(left[key], right[key]))
  }
  return false
}

/** A deep copy, so a caller can never reach into the store (nor the store into the caller). */
export const copy = <A>(value: A): A => structuredClone(value)

export const asRecord = (value: unknown): JsonRecord => (isRecord(value) ? value : {})

export { isRecord }

/**
 * Freezes a stored object and everything in it. The store hands out its own objects
 * (no copy per read, which matters for lists of thousands of Pods); freezing makes sure no
 * caller can change the store through them, as no client can change etcd's copy.
 */
export const freezeDeep = <A>(value: A): A => {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) freezeDeep(child)
  }
  return value
}
