import type { LabelSelector } from "../../api/ComplianceScanRun.ts"

/**
 * A rule's structured selector (`match.labelSelector`, `match.namespaceSelector`) with the
 * semantics of apimachinery's `metav1.LabelSelectorAsSelector`: matched directly, never
 * through the string syntax (which cannot carry every value), and validated like
 * `labels.NewRequirement` (label key and value syntax; In/NotIn need values;
 * Exists/DoesNotExist take none). An absent selector, or one without requirements,
 * selects everything.
 */

export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist"

export interface SelectorRequirement {
  readonly key: string
  readonly operator: SelectorOperator
  readonly values: ReadonlyArray<string>
}

/** One problem of a selector: the field path below the selector, and what is wrong. */
export interface SelectorProblem {
  readonly path: string
  readonly message: string
}

export type CompiledSelector =
  | { readonly _tag: "Selector"; readonly requirements: ReadonlyArray<SelectorRequirement> }
  | { readonly _tag: "Invalid"; readonly problems: ReadonlyArray<SelectorProblem> }

const nameFormat = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/u
const dnsSubdomainFormat = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/u
const nameChars = "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
const nameRule = `must ${nameChars}`

/** apimachinery's IsLabelKey: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters. */
export const labelKeyProblems = (key: string): ReadonlyArray<string> => {
  const parts = key.split("/")
  if (parts.length > 2) return [`a valid label key ${nameRule}, with an optional DNS subdomain prefix and '/'`]
  const problems: Array<string> = []
  const name = parts.at(-1)!
  if (parts.length === 2) {
    const prefix = parts[0]!
    if (prefix === "") problems.push("prefix part must be non-empty")
    else {
      if (prefix.length > 253) problems.push("prefix part must be no more than 253 bytes")
      if (!dnsSubdomainFormat.test(prefix)) problems.push("prefix part must be a lowercase RFC 1123 subdomain")
    }
  }
  if (name === "") problems.push("name part must be non-empty")
  else if (name.length > 63) problems.push("name part must be no more than 63 bytes")
  if (!nameFormat.test(name)) problems.push(`name part ${nameRule}`)
  return problems
}

/** apimachinery's IsValidLabelValue: empty, or a name of at most 63 characters. */
export const labelValueProblems = (value: string): ReadonlyArray<string> => {
  const problems: Array<string> = []
  if (value.length > 63) problems.push("must be no more than 63 bytes")
  if (value !== "" && !nameFormat.test(value)) problems.push(`a valid label must be an empty string or ${nameChars}`)
  return problems
}

const operators: ReadonlySet<string> = new Set<SelectorOperator>(["In", "NotIn", "Exists", "DoesNotExist"])

const requirementProblems = (
  paths: { readonly key: string; readonly operator: string; readonly values: string; readonly value: (index: number) => string },
  requirement: SelectorRequirement
): Array<SelectorProblem> => {
  const valuesPath = paths.values
  const problems: Array<SelectorProblem> = labelKeyProblems(requirement.key).map((message) => ({
    path: paths.key,
    message: `invalid label key ${JSON.stringify(requirement.key)}: ${message}`
  }))
  const { operator, values } = requirement
  if (!operators.has(operator)) {
    problems.push({ path: paths.operator, message: `${JSON.stringify(operator)} is not a valid label selector operator` })
  } else if ((operator === "In" || operator === "NotIn") && values.length === 0) {
    problems.push({ path: valuesPath, message: `must be non-empty when operator is ${operator}` })
  } else if ((operator === "Exists" || operator === "DoesNotExist") && values.length > 0) {
    problems.push({ path: valuesPath, message: `must be empty when operator is ${operator}` })
  }
  values.forEach((value, index) => {
    for (const message of labelValueProblems(value)) {
      problems.push({ path: paths.value(index), message: `invalid label value ${JSON.stringify(value)}: ${message}` })
    }
  })
  return problems
}

/** The requirements of a selector, or every problem it has (paths relative to the selector). */
export const compileSelector = (selector: LabelSelector | undefined): CompiledSelector => {
  const requirements: Array<SelectorRequirement> = []
  const problems: Array<SelectorProblem> = []
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    const requirement: SelectorRequirement = { key, operator: "In", values: [value] }
    const path = `matchLabels[${JSON.stringify(key)}]`
    problems.push(...requirementProblems({ key: "matchLabels", operator: path, values: path, value: () => path }, requirement))
    requirements.push(requirement)
  }
  ;(selector?.matchExpressions ?? []).forEach((expression, index) => {
    const requirement: SelectorRequirement = { key: expression.key, operator: expression.operator, values: expression.values ?? [] }
    const path = `matchExpressions[${index}]`
    problems.push(...requirementProblems(
        { key: `${path}.key`, operator: `${path}.operator`, values: `${path}.values`, value: (at) => `${path}.values[${at}]` },
        requirement
      ))
    requirements.push(requirement)
  })
  return problems.length > 0 ? { _tag: "Invalid", problems } : { _tag: "Selector", requirements }
}

/** Requirement.Matches of apimachinery: a missing label satisfies NotIn and DoesNotExist only. */
export const matchesSelector = (
  requirements: ReadonlyArray<SelectorRequirement>,
  labels: Readonly<Record<string, string>> | undefined
): boolean =>
  requirements.every(({ key, operator, values }) => {
    const present = labels !== undefined && Object.hasOwn(labels, key)
    switch (operator) {
      case "In":
        return present && values.includes(labels[key]!)
      case "NotIn":
        return !present || !values.includes(labels[key]!)
      case "Exists":
        return present
      case "DoesNotExist":
        return !present
    }
  })

/**
 * The selector in list-request syntax, for the API server to filter with, or undefined when
 * that syntax could not say it exactly (an empty value); "" selects everything. Only valid
 * selectors reach here, so keys and values hold no separators.
 */
export const selectorQuery = (requirements: ReadonlyArray<SelectorRequirement>): string | undefined => {
  if (requirements.some((requirement) => requirement.values.includes(""))) return undefined
  return requirements
    .map(({ key, operator, values }) => {
      switch (operator) {
        case "In":
          return values.length === 1 ? `${key}=${values[0]}` : `${key} in (${values.join(",")})`
        case "NotIn":
          return `${key} notin (${values.join(",")})`
        case "Exists":
          return key
        case "DoesNotExist":
          return `!${key}`
      }
    })
    .join(",")
}
