import type { LabelSelector } from "../../api/ComplianceScanRun.ts"

/**
 * Label selectors in both forms: the structured metav1.LabelSelector of specs and the
 * string syntax of list/watch requests (`a=b,c!=d,e in (x,y),notin,!f,g`).
 */
type Requirement =
  | { readonly op: "in" | "notin"; readonly key: string; readonly values: ReadonlyArray<string> }
  | { readonly op: "exists" | "!exists"; readonly key: string }

const quoteValues = (values: ReadonlyArray<string> | undefined) => `(${(values ?? []).join(",")})`

/** The string form of a structured selector ("" selects everything). */
export const selectorToString = (selector: LabelSelector | undefined): string => {
  if (selector === undefined) return ""
  const parts: Array<string> = []
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) parts.push(`${key}=${value}`)
  for (const expression of selector.matchExpressions ?? []) {
    switch (expression.operator) {
      case "In":
        parts.push(`${expression.key} in ${quoteValues(expression.values)}`)
        break
      case "NotIn":
        parts.push(`${expression.key} notin ${quoteValues(expression.values)}`)
        break
      case "Exists":
        parts.push(expression.key)
        break
      case "DoesNotExist":
        parts.push(`!${expression.key}`)
        break
    }
  }
  return parts.join(",")
}

/** `{a: "b"}` as `a=b`: the selector of a label map. */
export const labelsToSelector = (labels: Readonly<Record<string, string>> | undefined): string =>
  Object.entries(labels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(",")

/** Splits on commas that are not inside a `( ... )` value list. */
const splitTopLevel = (text: string): Array<string> => {
  const parts: Array<string> = []
  let depth = 0
  let current = ""
  for (const char of text) {
    if (char === "(") depth++
    if (char === ")") depth--
    if (char === "," && depth === 0) {
      parts.push(current)
      current = ""
    } else {
      current += char
    }
  }
  parts.push(current)
  return parts.map((part) => part.trim()).filter((part) => part.length > 0)
}

export class SelectorSyntaxError extends Error {}

export const parseSelector = (text: string | undefined): ReadonlyArray<Requirement> =>
  splitTopLevel(text ?? "").map((part): Requirement => {
    const setMatch = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/u.exec(part)
    if (setMatch) {
      const values = setMatch[3]!.split(",").map((value) => value.trim()).filter((value) => value.length > 0)
      return { op: setMatch[2] as "in" | "notin", key: setMatch[1]!, values }
    }
    const notEqual = /^([^\s!=]+)\s*!=\s*(\S*)$/u.exec(part)
    if (notEqual) return { op: "notin", key: notEqual[1]!, values: [notEqual[2]!] }
    const equal = /^([^\s!=]+)\s*==?\s*(\S*)$/u.exec(part)
    if (equal) return { op: "in", key: equal[1]!, values: [equal[2]!] }
    const absent = /^!\s*([^\s!=]+)$/u.exec(part)
    if (absent) return { op: "!exists", key: absent[1]! }
    if (/^[^\s!=(),]+$/u.test(part)) return { op: "exists", key: part }
    throw new SelectorSyntaxError(`invalid label selector requirement: ${JSON.stringify(part)}`)
  })

export const matchesRequirements = (
  requirements: ReadonlyArray<Requirement>,
  labels: Readonly<Record<string, string>> | undefined
): boolean =>
  requirements.every((requirement) => {
    const value = labels?.[requirement.key]
    switch (requirement.op) {
      case "in":
        return value !== undefined && requirement.values.includes(value)
      case "notin":
        return value === undefined || !requirement.values.includes(value)
      case "exists":
        return value !== undefined
      case "!exists":
        return value === undefined
    }
  })

export const matchesSelector = (selector: string | undefined, labels: Readonly<Record<string, string>> | undefined) =>
  matchesRequirements(parseSelector(selector), labels)
