import type { LabelSelector } from "../../../src/api/ComplianceScanRun.ts"
import { seededRandom } from "../../../sim/cluster/SeededRandom.ts"

/**
 * Label selector cases with the verdicts apimachinery gives (metav1.LabelSelectorAsSelector
 * and labels.Requirement.Matches, read in k8s.io/apimachinery pkg/apis/meta/v1/helpers.go and
 * pkg/labels/selector.go): `invalid`, or whether each label set matches. The fast tier checks
 * the backend against these expectations; the cluster tier feeds the same cases (and random
 * ones) to apimachinery itself (test/cluster/selector-oracle) and compares.
 */

export type Labels = Readonly<Record<string, string>>

export interface SelectorCase {
  readonly name: string
  readonly selector: LabelSelector | undefined
  readonly labels: ReadonlyArray<Labels>
  /** "invalid", or one verdict per label set. */
  readonly expected: "invalid" | ReadonlyArray<boolean>
}

const none: Labels = {}
const emptyOwner: Labels = { owner: "" }
const ownerX: Labels = { owner: "x" }
const owners = [emptyOwner, ownerX, none]

const key63 = `k${"e".repeat(61)}y`
const value63 = `v${"a".repeat(61)}l`

export const selectorCases: ReadonlyArray<SelectorCase> = [
  { name: "absent selects everything", selector: undefined, labels: owners, expected: [true, true, true] },
  { name: "empty selects everything", selector: {}, labels: owners, expected: [true, true, true] },
  { name: "In [''] matches the empty value only", selector: { matchExpressions: [{ key: "owner", operator: "In", values: [""] }] }, labels: owners, expected: [true, false, false] },
  { name: "matchLabels owner: '' agrees with In ['']", selector: { matchLabels: { owner: "" } }, labels: owners, expected: [true, false, false] },
  { name: "NotIn [''] excludes the empty value, keeps the absent label", selector: { matchExpressions: [{ key: "owner", operator: "NotIn", values: [""] }] }, labels: owners, expected: [false, true, true] },
  { name: "In two values", selector: { matchExpressions: [{ key: "owner", operator: "In", values: ["x", "y"] }] }, labels: [ownerX, { owner: "y" }, { owner: "z" }, none], expected: [true, true, false, false] },
  { name: "NotIn two values", selector: { matchExpressions: [{ key: "owner", operator: "NotIn", values: ["x", "y"] }] }, labels: [ownerX, { owner: "z" }, none], expected: [false, true, true] },
  { name: "Exists", selector: { matchExpressions: [{ key: "owner", operator: "Exists" }] }, labels: owners, expected: [true, true, false] },
  { name: "DoesNotExist", selector: { matchExpressions: [{ key: "owner", operator: "DoesNotExist" }] }, labels: owners, expected: [false, false, true] },
  {
    name: "matchLabels and matchExpressions are ANDed",
    selector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "NotIn", values: ["system"] }] },
    labels: [{ app: "web" }, { app: "web", tier: "system" }, { app: "db" }, { app: "web", tier: "front" }],
    expected: [true, false, false, true]
  },
  { name: "a comma in a matchLabels value is invalid", selector: { matchLabels: { tier: "a,b" } }, labels: [none], expected: "invalid" },
  { name: "a comma in an In value is invalid", selector: { matchExpressions: [{ key: "tier", operator: "In", values: ["a,b"] }] }, labels: [none], expected: "invalid" },
  { name: "In without values is invalid", selector: { matchExpressions: [{ key: "owner", operator: "In" }] }, labels: [none], expected: "invalid" },
  { name: "In with an empty list is invalid", selector: { matchExpressions: [{ key: "owner", operator: "In", values: [] }] }, labels: [none], expected: "invalid" },
  { name: "NotIn without values is invalid", selector: { matchExpressions: [{ key: "owner", operator: "NotIn" }] }, labels: [none], expected: "invalid" },
  { name: "Exists with values is invalid", selector: { matchExpressions: [{ key: "owner", operator: "Exists", values: ["x"] }] }, labels: [none], expected: "invalid" },
  { name: "DoesNotExist with values is invalid", selector: { matchExpressions: [{ key: "owner", operator: "DoesNotExist", values: [""] }] }, labels: [none], expected: "invalid" },
  { name: "Exists with an empty list is valid", selector: { matchExpressions: [{ key: "owner", operator: "Exists", values: [] }] }, labels: owners, expected: [true, true, false] },
  { name: "a prefixed key", selector: { matchLabels: { "app.kubernetes.io/name": "web" } }, labels: [{ "app.kubernetes.io/name": "web" }, { name: "web" }], expected: [true, false] },
  { name: "a key with _ and .", selector: { matchExpressions: [{ key: "my_app.role", operator: "Exists" }] }, labels: [{ "my_app.role": "" }, none], expected: [true, false] },
  { name: "a key of 63 characters", selector: { matchExpressions: [{ key: key63, operator: "Exists" }] }, labels: [{ [key63]: "" }], expected: [true] },
  { name: "a key of 64 characters is invalid", selector: { matchExpressions: [{ key: `${key63}x`, operator: "Exists" }] }, labels: [none], expected: "invalid" },
  { name: "an empty key is invalid", selector: { matchExpressions: [{ key: "", operator: "Exists" }] }, labels: [none], expected: "invalid" },
  { name: "an empty matchLabels key is invalid", selector: { matchLabels: { "": "x" } }, labels: [none], expected: "invalid" },
  { name: "a key starting with - is invalid", selector: { matchExpressions: [{ key: "-app", operator: "Exists" }] }, labels: [none], expected: "invalid" },
  { name: "an upper-case prefix is invalid", selector: { matchExpressions: [{ key: "Example.com/app", operator: "Exists" }] }, labels: [none], expected: "invalid" },
  { name: "an empty prefix is invalid", selector: { matchExpressions: [{ key: "/app", operator: "Exists" }] }, labels: [none], expected: "invalid" },
  { name: "an empty name after the prefix is invalid", selector: { matchExpressions: [{ key: "example.com/", operator: "Exists" }] }, labels: [none], expected: "invalid" },
  { name: "two slashes are invalid", selector: { matchExpressions: [{ key: "a/b/c", operator: "Exists" }] }, labels: [none], expected: "invalid" },
  { name: "a key with a space is invalid", selector: { matchLabels: { "my app": "x" } }, labels: [none], expected: "invalid" },
  { name: "an upper-case name is valid", selector: { matchLabels: { App: "Web" } }, labels: [{ App: "Web" }, { app: "Web" }], expected: [true, false] },
  { name: "a value of 63 characters", selector: { matchLabels: { v: value63 } }, labels: [{ v: value63 }], expected: [true] },
  { name: "a value of 64 characters is invalid", selector: { matchLabels: { v: `${value63}x` } }, labels: [none], expected: "invalid" },
  { name: "a value ending in - is invalid", selector: { matchExpressions: [{ key: "v", operator: "NotIn", values: ["ok", "bad-"] }] }, labels: [none], expected: "invalid" },
  { name: "a value with a space is invalid", selector: { matchLabels: { v: "a b" } }, labels: [none], expected: "invalid" },
  { name: "a value with _ . - inside is valid", selector: { matchLabels: { v: "a_b.c-d" } }, labels: [{ v: "a_b.c-d" }, { v: "a" }], expected: [true, false] }
]

/** Seeded random selectors and label sets, valid and not, for the differential test. */
export const randomSelectorCases = (count: number, seed = 20261205): ReadonlyArray<Omit<SelectorCase, "expected">> => {
  const next = seededRandom(seed)
  const pick = <T>(choices: ReadonlyArray<T>): T => choices[Math.floor(next() * choices.length)]!
  const keys = ["app", "tier", "team", "example.com/owner", "a/b/c", "-bad", "Team", ""]
  const values = ["", "web", "db", "x", "a,b", "with space", "ends-", "A_b.c"]
  const operators = ["In", "NotIn", "Exists", "DoesNotExist"] as const
  const labelSet = (): Labels => Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, () => [pick(keys.slice(0, 4)), pick(values.slice(0, 4))]))
  return Array.from({ length: count }, (_, index) => {
    const matchLabels = next() < 0.5 ? Object.fromEntries(Array.from({ length: 1 + Math.floor(next() * 2) }, () => [pick(keys), pick(values)])) : undefined
    const matchExpressions = Array.from({ length: Math.floor(next() * 3) }, () => {
      const operator = pick(operators)
      const size = Math.floor(next() * 3)
      const withValues = next() < 0.8 ? operator === "In" || operator === "NotIn" : next() < 0.5
      return { key: pick(keys), operator, ...(withValues ? { values: Array.from({ length: size }, () => pick(values)) } : {}) }
    })
    return {
      name: `random ${index}`,
      selector: { ...(matchLabels === undefined ? {} : { matchLabels }), ...(matchExpressions.length === 0 ? {} : { matchExpressions }) },
      labels: Array.from({ length: 6 }, labelSet)
    }
  })
}
