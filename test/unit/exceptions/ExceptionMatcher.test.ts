import { describe, expect, it } from "@effect/vitest"
import type { ExceptionMatch } from "../../../src/api/ComplianceException.ts"
import { type MatchContext, matchesCheck, matchesSubject, matchesWholeCheck, validityOf } from "../../../src/exceptions/ExceptionMatcher.ts"
import { checkOf, day, exceptionOf, iso, now, operatorNamespace, subject } from "./ExceptionFixtures.ts"

const context: MatchContext = { operatorNamespace, backend: "cel", now, maxDurationMillis: 90 * day }

describe("ExceptionMatcher: checks", () => {
  const cases: ReadonlyArray<[string, ExceptionMatch, string, boolean]> = [
    ["an exact id", { checks: ["pss-baseline-privileged"] }, "pss-baseline-privileged", true],
    ["an exact id is not a prefix", { checks: ["pss-baseline-privileged"] }, "pss-baseline-privileged-2", false],
    ["a *-suffixed prefix", { checks: ["pss-baseline-*"] }, "pss-baseline-host-pid", true],
    ["a prefix of another family", { checks: ["pss-baseline-*"] }, "pss-restricted-run-as-root", false],
    ["dots are literal", { checks: ["1.2.*"] }, "1x2.3", false],
    ["kube-bench ids by prefix", { checks: ["cis.1.2.*"] }, "cis.1.2.16", true],
    ["one of several", { checks: ["a", "b", "c"] }, "b", true],
    ["`*` alone: every check", { checks: ["*"] }, "anything", true],
    ["another backend", { checks: ["*"], backends: ["kube-bench"] }, "x", false],
    ["cel-custom is cel", { checks: ["*"], backends: ["cel-custom"] }, "x", true]
  ]
  for (const [name, match, checkID, expected] of cases) {
    it(`${name}: ${checkID} -> ${expected}`, () => {
      expect(matchesCheck(exceptionOf("e", operatorNamespace, { match }), checkOf(checkID, []), "cel")).toBe(expected)
    })
  }

  it("frameworks: only checks mapped to one of them", () => {
    const exception = exceptionOf("e", operatorNamespace, { match: { checks: ["*"], frameworks: ["cis"] } })
    expect(matchesCheck(exception, checkOf("a", [], { frameworks: [{ name: "cis", controlID: "5.2.1" }] }), "cel")).toBe(true)
    expect(matchesCheck(exception, checkOf("a", [], { frameworks: [{ name: "soc2", controlID: "CC6.1" }] }), "cel")).toBe(false)
    expect(matchesCheck(exception, checkOf("a", []), "cel")).toBe(false)
  })
})

describe("ExceptionMatcher: subjects and namespace scoping", () => {
  const cases: ReadonlyArray<[string, string, ExceptionMatch["subjects"], ReturnType<typeof subject>, boolean]> = [
    ["cluster-wide, no subject fields: any namespace", operatorNamespace, undefined, subject("web", "payments"), true],
    ["cluster-wide: nodes", operatorNamespace, undefined, subject("node-1", undefined, "fail", "Node"), true],
    ["cluster-wide: by namespace", operatorNamespace, { namespaces: ["kube-*"] }, subject("cni", "kube-system"), true],
    ["cluster-wide: another namespace", operatorNamespace, { namespaces: ["kube-*"] }, subject("cni", "payments"), false],
    ["cluster-wide: names with *", operatorNamespace, { names: ["cilium-*"] }, subject("cilium-abcde", "kube-system"), true],
    ["cluster-wide: * in the middle", operatorNamespace, { names: ["calico-*-node"] }, subject("calico-x-node", "kube-system"), true],
    ["cluster-wide: name not matched", operatorNamespace, { names: ["cilium-*"] }, subject("web", "kube-system"), false],
    ["cluster-wide: a namespace filter never matches a node", operatorNamespace, { namespaces: ["*"] }, subject("node-1", undefined, "fail", "Node"), false],
    ["nodeNames: a node", operatorNamespace, { nodeNames: ["cp-*"] }, subject("cp-1", undefined, "fail", "Node"), true],
    ["nodeNames: a Pod of that name is no node", operatorNamespace, { nodeNames: ["cp-*"] }, subject("cp-1", "default"), false],
    ["kinds", operatorNamespace, { kinds: ["DaemonSet"] }, subject("cni", "kube-system", "fail", "DaemonSet"), true],
    ["kinds: another kind", operatorNamespace, { kinds: ["DaemonSet"] }, subject("cni", "kube-system"), false],
    ["namespaced: its own namespace", "payments", undefined, subject("web", "payments"), true],
    ["namespaced: another namespace, even when named", "payments", { namespaces: ["orders"] }, subject("web", "orders"), false],
    ["namespaced: never a node", "payments", undefined, subject("node-1", undefined, "fail", "Node"), false],
    ["namespaced: never a cluster-scoped object", "payments", undefined, subject("admin", undefined, "fail", "ClusterRole"), false]
  ]
  for (const [name, namespace, subjects, target, expected] of cases) {
    it(`${name} -> ${expected}`, () => {
      const exception = exceptionOf("e", namespace, { match: { checks: ["*"], ...(subjects === undefined ? {} : { subjects }) } })
      expect(matchesSubject(exception, target, context)).toBe(expected)
    })
  }

  it("a label selector matches only subjects whose labels are known and selected", () => {
    const exception = exceptionOf("e", operatorNamespace, { match: { checks: ["*"], subjects: { labelSelector: { matchLabels: { app: "cni" } } } } })
    const labels: Record<string, Record<string, string>> = { "kube-system/cni": { app: "cni" }, "kube-system/web": { app: "web" } }
    const withLabels: MatchContext = { ...context, labelsOf: (target) => labels[`${target.namespace}/${target.name}`] }
    expect(matchesSubject(exception, subject("cni", "kube-system"), withLabels)).toBe(true)
    expect(matchesSubject(exception, subject("web", "kube-system"), withLabels)).toBe(false)
    expect(matchesSubject(exception, subject("unknown", "kube-system"), withLabels)).toBe(false)
    expect(matchesSubject(exception, subject("cni", "kube-system"), context)).toBe(false)
  })

  it("a check without subjects: only cluster-wide exceptions naming no subjects", () => {
    expect(matchesWholeCheck(exceptionOf("e", operatorNamespace, { match: { checks: ["*"] } }), context)).toBe(true)
    expect(matchesWholeCheck(exceptionOf("e", "payments", { match: { checks: ["*"] } }), context)).toBe(false)
    expect(matchesWholeCheck(exceptionOf("e", operatorNamespace, { match: { checks: ["*"], subjects: { names: ["*"] } } }), context)).toBe(false)
  })
})

describe("ExceptionMatcher: expiry and maximum duration", () => {
  const expiring = (expiresAt: number, created = now - day) =>
    exceptionOf("e", operatorNamespace, { match: { checks: ["*"] }, expiresAt: iso(expiresAt) }, { creationTimestamp: iso(created) })

  it("active until expiresAt, expired from that instant on", () => {
    const exception = expiring(now + 1)
    expect(validityOf(exception, now, 90 * day)._tag).toBe("Active")
    expect(validityOf(exception, now + 1, 90 * day)._tag).toBe("Expired")
    expect(validityOf(exception, now + 2, 90 * day)._tag).toBe("Expired")
  })

  it("exactly the maximum after creation is allowed; a millisecond more is never applied", () => {
    expect(validityOf(expiring(now + 10 * day, now + 10 * day - 90 * day), now, 90 * day)._tag).toBe("Active")
    const tooLong = validityOf(expiring(now + 10 * day + 1, now + 10 * day - 90 * day), now, 90 * day)
    expect(tooLong).toMatchObject({ _tag: "Invalid", reason: "ExceedsMaximumDuration" })
  })

  it("an expiry that is no time is invalid", () => {
    const exception = exceptionOf("e", operatorNamespace, { match: { checks: ["*"] }, expiresAt: "next tuesday" })
    expect(validityOf(exception, now, 90 * day)).toMatchObject({ _tag: "Invalid", reason: "InvalidExpiry" })
  })
})
