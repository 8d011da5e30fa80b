import { describe, expect, it } from "@effect/vitest"
import { compileSelector, matchesSelector, selectorQuery } from "../../../src/backends/cel/RuleSelector.ts"
import { matchesSelector as matchesQuery } from "../../../src/services/kube/LabelSelector.ts"
import { check, checksOf, rule } from "./CelTestKit.ts"
import { namespace, restrictedPod } from "./PodFixtures.ts"
import { selectorCases } from "./SelectorCases.ts"

/** Structured selectors with apimachinery's semantics (the cluster tier compares with apimachinery itself). */

const verdictsOf = (selector: Parameters<typeof compileSelector>[0], labels: ReadonlyArray<Record<string, string>>) => {
  const compiled = compileSelector(selector)
  return compiled._tag === "Invalid" ? "invalid" : labels.map((set) => matchesSelector(compiled.requirements, set))
}

describe("rule selectors", () => {
  it.each(selectorCases)("$name", ({ selector, labels, expected }) => {
    expect(verdictsOf(selector, labels)).toEqual(expected)
  })

  it("sends the API server a query only when it says exactly the same", () => {
    for (const { selector, labels, expected } of selectorCases) {
      if (expected === "invalid") continue
      const compiled = compileSelector(selector)
      if (compiled._tag === "Invalid") throw new Error("valid above")
      const query = selectorQuery(compiled.requirements)
      if (query === undefined) {
        expect(compiled.requirements.some((requirement) => requirement.values.includes(""))).toBe(true)
        continue
      }
      expect(labels.map((set) => matchesQuery(query, set))).toEqual(expected)
    }
  })

  it("names every problem with its field path", () => {
    expect(compileSelector({ matchLabels: { "a/b/c": "x,y" }, matchExpressions: [{ key: "ok", operator: "In" }] })).toEqual({
      _tag: "Invalid",
      problems: [
        { path: "matchLabels", message: expect.stringMatching(/^invalid label key "a\/b\/c": a valid label key must consist of/) },
        { path: 'matchLabels["a/b/c"]', message: expect.stringMatching(/^invalid label value "x,y": a valid label must be an empty string or consist of/) },
        { path: "matchExpressions[0].values", message: "must be non-empty when operator is In" }
      ]
    })
  })

  it("matches Pods and Namespaces in a run by the structured selector, empty values included", () => {
    const pods = [
      { ...restrictedPod("unowned", "shop"), metadata: { name: "unowned", namespace: "shop", labels: { owner: "" } } },
      { ...restrictedPod("owned", "shop"), metadata: { name: "owned", namespace: "shop", labels: { owner: "payments" } } },
      { ...restrictedPod("unlabelled", "shop"), metadata: { name: "unlabelled", namespace: "shop" } }
    ]
    const rules = [
      rule("empty-owner", "false", { match: { labelSelector: { matchExpressions: [{ key: "owner", operator: "In", values: [""] }] } } }),
      rule("not-empty-owner", "false", { match: { labelSelector: { matchExpressions: [{ key: "owner", operator: "NotIn", values: [""] }] } } }),
      rule("shop-namespace", "false", { match: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "shop" } } } })
    ]
    const checks = checksOf(check(rules, [namespace("shop"), ...pods]))
    const failing = (id: string) => checks.find((found) => found.checkID === id)!.subjects!.map((subject) => subject.name).sort()
    expect(failing("empty-owner")).toEqual(["unowned"])
    expect(failing("not-empty-owner")).toEqual(["owned", "unlabelled"])
    expect(failing("shop-namespace")).toEqual(["owned", "unlabelled", "unowned"])
  })

  it("refuses an invalid selector when the rule is compiled, naming the rule and the field", () => {
    expect(() => check([rule("bad", "true", { match: { labelSelector: { matchExpressions: [{ key: "tier", operator: "Exists", values: ["x"] }] } } })], [])).toThrow(
      expect.objectContaining({
        _tag: "CelCompileError",
        ruleId: "bad",
        field: "match",
        message: 'rule "bad": invalid selector: match.labelSelector.matchExpressions[0].values: must be empty when operator is Exists'
      })
    )
  })
})
