import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import type { ComplianceException } from "../../../src/api/ComplianceException.ts"
import { assessException, expiringWindowMillis, type RunView } from "../../../src/exceptions/ExceptionStatus.ts"
import { day, exceptionOf, iso, now, operatorNamespace } from "./ExceptionFixtures.ts"

const expiresAt = now + 30 * day
const cni = exceptionOf("cni", operatorNamespace, { match: { checks: ["privileged"], backends: ["cel"] }, expiresAt: iso(expiresAt) })

const runOf = (name: string, finishedAt: number, matched: number, overrides: Partial<RunView> = {}): RunView => ({
  namespace: "scans",
  name,
  backend: "cel",
  series: "nightly",
  finishedAt,
  exceptions: matched === 0 ? [] : [{ name: "cni", namespace: operatorNamespace, resourceVersion: "42", mode: "waive", expiresAt: iso(expiresAt), matched }],
  ...overrides
})

const assessAt = (exception: ComplianceException, runs: ReadonlyArray<RunView>) =>
  Effect.map(Clock.currentTimeMillis, (millis) => assessException(exception, runs, { now: millis, maxDurationMillis: 90 * day, unusedAfterRuns: 3 }))

const conditionsOf = (assessment: ReturnType<typeof assessException>) =>
  Object.fromEntries((assessment.status.conditions ?? []).map((condition) => [condition.type, `${condition.status}/${condition.reason}`]))

describe("ComplianceException status", () => {
  it.effect("matched is the last run of each series; lastMatchedTime the latest run that matched", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const runs = [
        runOf("nightly-1", now - 3 * 3_600_000, 4),
        runOf("nightly-2", now - 2 * 3_600_000, 2),
        runOf("weekly-1", now - 5 * 3_600_000, 1, { series: "weekly" }),
        runOf("one-off", now - 3_600_000, 0, { series: undefined }),
        // Another backend: the exception cannot apply there.
        runOf("bench", now - 60_000, 0, { backend: "kube-bench", series: "cis" })
      ]
      const assessment = yield* assessAt(cni, runs)
      expect(assessment.status.series).toEqual([
        { series: "", namespace: "scans", run: "one-off", matched: 0 },
        { series: "nightly", namespace: "scans", run: "nightly-2", matched: 2 },
        { series: "weekly", namespace: "scans", run: "weekly-1", matched: 1 }
      ])
      expect(assessment.status.matched).toBe(3)
      expect(assessment.status.lastMatchedTime).toBe(iso(now - 2 * 3_600_000))
      expect(conditionsOf(assessment)).toEqual({ Active: "True/Active", Expired: "False/NotExpired", Unused: "False/Matched" })
      expect(assessment.states).toEqual(["active"])
      expect(assessment.event).toBeUndefined()
      expect(assessment.nextChange).toBe(expiresAt - expiringWindowMillis)
    }))

  it.effect("Unused after the last N runs it could apply to matched nothing; Unknown before N runs", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const older = runOf("n-0", now - 10 * 3_600_000, 5)
      const empty = [1, 2, 3].map((index) => runOf(`n-${index}`, now - (4 - index) * 3_600_000, 0))
      const unused = yield* assessAt(cni, [older, ...empty])
      expect(conditionsOf(unused).Unused).toBe("True/NoMatches")
      expect(unused.states).toEqual(["active", "unused"])
      expect(conditionsOf(yield* assessAt(cni, empty.slice(1))).Unused).toBe("Unknown/TooFewRuns")
      // Runs before the exception existed say nothing about it.
      const young = exceptionOf("cni", operatorNamespace, { match: { checks: ["privileged"] }, expiresAt: iso(expiresAt) }, { creationTimestamp: iso(now - 90 * 60_000) })
      expect(conditionsOf(yield* assessAt(young, [older, ...empty])).Unused).toBe("Unknown/TooFewRuns")
    }))

  it.effect("expiry boundaries under the TestClock: expiring 7 days before (event once due), expired at expiresAt", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(expiresAt - expiringWindowMillis - 1)
      const before = yield* assessAt(cni, [])
      expect(before.event).toBeUndefined()
      expect(before.states).toEqual(["active"])
      expect(before.nextChange).toBe(expiresAt - expiringWindowMillis)

      yield* TestClock.adjust("1 millis")
      const expiring = yield* assessAt(cni, [])
      expect(expiring.event).toBe("ComplianceExceptionExpiring")
      expect(expiring.states).toEqual(["active", "expiring"])
      expect(conditionsOf(expiring).Active).toBe("True/ExpiresSoon")
      expect(expiring.nextChange).toBe(expiresAt)

      yield* TestClock.setTime(expiresAt - 1)
      expect((yield* assessAt(cni, [])).states).toEqual(["active", "expiring"])

      yield* TestClock.setTime(expiresAt)
      const expired = yield* assessAt(cni, [])
      expect(expired.event).toBe("ComplianceExceptionExpired")
      expect(expired.states).toEqual(["expired"])
      expect(conditionsOf(expired)).toMatchObject({ Active: "False/Expired", Expired: "True/Expired" })
      expect(expired.nextChange).toBeUndefined()
    }))

  it.effect("a condition keeps its lastTransitionTime while its status holds", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const first = yield* assessAt(cni, [])
      yield* TestClock.adjust("1 hour")
      const again = yield* assessAt({ ...cni, status: first.status }, [])
      expect(again.status.conditions).toEqual(first.status.conditions)
      yield* TestClock.setTime(expiresAt)
      const expired = yield* assessAt({ ...cni, status: first.status }, [])
      expect(expired.status.conditions!.find((condition) => condition.type === "Active")!.lastTransitionTime).toBe(iso(expiresAt))
    }))

  it.effect("an exception beyond the maximum duration is neither active nor expired, and says why", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const forever = exceptionOf("forever", operatorNamespace, { match: { checks: ["*"] }, expiresAt: iso(now + 400 * day) })
      const assessment = yield* assessAt(forever, [])
      expect(conditionsOf(assessment)).toMatchObject({ Active: "False/ExceedsMaximumDuration", Expired: "False/ExceedsMaximumDuration" })
      expect(assessment.states).toEqual([])
      expect(assessment.event).toBeUndefined()
    }))
})
