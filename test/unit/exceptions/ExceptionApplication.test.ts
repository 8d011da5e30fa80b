import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import type { Check } from "../../../src/api/Check.ts"
import type { ComplianceException } from "../../../src/api/ComplianceException.ts"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { buildResult } from "../../../src/reconciler/ResultBuilder.ts"
import { checkOf, day, exceptionOf, iso, now, operatorNamespace, subject } from "./ExceptionFixtures.ts"

const run: ComplianceScanRun = {
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "nightly", namespace: "scans", uid: "0b6f8e52-4f6e-4a57-9d55-3c2a8f1e0f11" },
  spec: {
    backend: "cel",
    controlMappings: [
      { checkID: "privileged", frameworks: [{ name: "cis", controlID: "5.2.1" }] },
      { checkID: "host-network", frameworks: [{ name: "cis", controlID: "5.2.4" }] }
    ]
  }
}

/** The Result at the TestClock's current time (as the reconciler builds it). */
const resultAt = (checks: ReadonlyArray<Check>, exceptions: ReadonlyArray<ComplianceException>) =>
  Effect.map(Clock.currentTimeMillis, (millis) =>
    buildResult(run, checks, undefined, iso(millis), undefined, undefined, { exceptions, operatorNamespace, maxDurationMillis: 90 * day }))

const cni = subject("cilium-x1", "kube-system")
const debug = subject("debug-shell", "payments")
const privileged = () => checkOf("privileged", [cni, debug], { subjectCounts: { pass: 10, fail: 2, warn: 0, skip: 0, error: 0 } })
const hostNetwork = () => checkOf("host-network", [subject("node-exporter", "monitoring")], { severity: "high" })

const waiveCni = exceptionOf("cni", operatorNamespace, { match: { checks: ["privileged"], subjects: { names: ["cilium-*"] } } })

describe("applying exceptions to a Result", () => {
  it.effect("waive: the matched subject becomes skip with the exception and its original outcome; the others stay", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const { result, summary, worstSeverity } = yield* resultAt([privileged()], [waiveCni])
      const check = result.spec.checks[0]!
      expect(check.subjects).toEqual([
        { ...cni, outcome: "skip", exception: { name: "cni", namespace: operatorNamespace, mode: "waive", expiresAt: waiveCni.spec.expiresAt, outcome: "fail" } },
        debug
      ])
      // debug-shell still fails: so does the check, with its severity.
      expect(check).toMatchObject({ outcome: "fail", severity: "critical", subjectCounts: { pass: 10, fail: 1, skip: 1 } })
      expect(worstSeverity).toBe("critical")
      expect(summary).toEqual({ pass: 0, fail: 1, warn: 0, skip: 0, error: 0, excepted: 1 })
      expect(result.spec.exceptions).toEqual([{ name: "cni", namespace: operatorNamespace, resourceVersion: "42", mode: "waive", expiresAt: waiveCni.spec.expiresAt, matched: 1 }])
    }))

  it.effect("waive every failing subject: the check passes (by its other subjects) and no longer sets worstSeverity", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const all = exceptionOf("all", operatorNamespace, { match: { checks: ["privileged"] } })
      const { result, summary, worstSeverity } = yield* resultAt([privileged(), hostNetwork()], [all])
      expect(result.spec.checks.find((check) => check.checkID === "privileged")).toMatchObject({
        outcome: "pass",
        subjectCounts: { pass: 10, fail: 0, skip: 2 }
      })
      expect(worstSeverity).toBe("high")
      expect(summary).toMatchObject({ pass: 1, fail: 1, excepted: 1 })
      // The framework report counts the excepted control apart (and by its outcome).
      expect(result.spec.frameworks).toEqual([{
        name: "cis",
        controls: [
          { controlID: "5.2.1", outcome: "pass", checks: ["privileged"] },
          { controlID: "5.2.4", outcome: "fail", checks: ["host-network"] }
        ],
        passed: 1,
        failed: 1,
        excepted: 1
      }])
    }))

  it.effect("alertOnly: the finding stays fail in the Result but counts toward neither worstSeverity nor the summary's fail alone", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const exporter = exceptionOf("exporter", "monitoring", { mode: "alertOnly", match: { checks: ["host-*"], subjects: { names: ["node-exporter"] } } })
      const { result, summary, worstSeverity } = yield* resultAt([hostNetwork()], [exporter])
      const check = result.spec.checks[0]!
      expect(check.outcome).toBe("fail")
      expect(check.subjects![0]).toMatchObject({ outcome: "fail", exception: { name: "exporter", mode: "alertOnly", outcome: "fail" } })
      expect(worstSeverity).toBeUndefined()
      expect(summary).toEqual({ pass: 0, fail: 1, warn: 0, skip: 0, error: 0, excepted: 1 })
      // With another, unexcepted failure the check counts again.
      const mixed = checkOf("host-network", [subject("node-exporter", "monitoring"), subject("rogue", "monitoring")], { severity: "high" })
      expect((yield* resultAt([mixed], [exporter])).worstSeverity).toBe("high")
    }))

  it.effect("a namespaced exception covers only its namespace; a cluster-wide one every namespace", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const payments = exceptionOf("payments-waiver", "payments", { match: { checks: ["privileged"], subjects: { names: ["*"] } } })
      const { result } = yield* resultAt([privileged()], [payments])
      expect(result.spec.checks[0]!.subjects!.map((entry) => [entry.name, entry.outcome, entry.exception?.name])).toEqual([
        ["cilium-x1", "fail", undefined],
        ["debug-shell", "skip", "payments-waiver"]
      ])
    }))

  it.effect("waive wins over alertOnly on the same subject; passes and errors are never excepted", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const alertOnly = exceptionOf("a-alert", operatorNamespace, { mode: "alertOnly", match: { checks: ["*"] } })
      const waive = exceptionOf("z-waive", operatorNamespace, { match: { checks: ["*"] } })
      const check = checkOf("mixed", [subject("a", "ns", "fail"), subject("b", "ns", "pass"), subject("c", "ns", "error")])
      const { result } = yield* resultAt([check], [alertOnly, waive])
      expect(result.spec.checks[0]!.subjects!.map((entry) => [entry.outcome, entry.exception?.name])).toEqual([
        ["skip", "z-waive"],
        ["pass", undefined],
        ["error", undefined]
      ])
      expect(result.spec.checks[0]!.outcome).toBe("error")
    }))

  it.effect("a subject-less check: waived by a cluster-wide exception naming no subjects", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const check = checkOf("1.1.12", undefined, { severity: "medium" })
      const { result, worstSeverity } = yield* resultAt([check], [exceptionOf("managed", operatorNamespace, { match: { checks: ["1.1.*"] } })])
      expect(result.spec.checks[0]).toMatchObject({ outcome: "skip", exception: { name: "managed", outcome: "fail" } })
      expect(worstSeverity).toBeUndefined()
    }))

  it.effect("expiry under the TestClock: applied up to the last millisecond, not from expiresAt on", () =>
    Effect.gen(function*() {
      const expiresAt = now + 7 * day
      const shortLived = exceptionOf("short", operatorNamespace, { match: { checks: ["privileged"], subjects: { names: ["cilium-*"] } }, expiresAt: iso(expiresAt) })
      const outcomeOfCni = Effect.map(resultAt([privileged()], [shortLived]), ({ result }) => result.spec.checks[0]!.subjects![0]!.outcome)
      yield* TestClock.setTime(now)
      expect(yield* outcomeOfCni).toBe("skip")
      yield* TestClock.setTime(expiresAt - 1)
      expect(yield* outcomeOfCni).toBe("skip")
      yield* TestClock.setTime(expiresAt)
      expect(yield* outcomeOfCni).toBe("fail")
      const { result } = yield* resultAt([privileged()], [shortLived])
      expect(result.spec.exceptions).toBeUndefined()
    }))

  it.effect("an exception longer than --max-exception-duration is never applied", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const forever = exceptionOf("forever", operatorNamespace, { match: { checks: ["*"] }, expiresAt: iso(now + 365 * day) })
      const { result } = yield* resultAt([privileged()], [forever])
      expect(result.spec.checks[0]!.outcome).toBe("fail")
      expect(result.spec.exceptions).toBeUndefined()
    }))
})
