import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { ComplianceScanSchedule } from "../../src/api/ComplianceScanSchedule.ts"
import { runNowAnnotation, scheduledTimeAnnotation } from "../../src/api/ComplianceScanSchedule.ts"
import { ScheduleLabel } from "../../src/api/SeriesLabels.ts"
import { jitterOffsetMillis, scheduledRunName } from "../../src/schedules/ScheduleRuns.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { startOperator, testCluster, testNamespace } from "../support/TestOperator.ts"
import { failingScanner, hangingScanner, instantScanner, passingCheck } from "../support/TestScanners.ts"

const minute = 60_000
const hour = 60 * minute

const scheduleManifest = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanSchedule",
  metadata: { name, namespace: testNamespace },
  spec: { runTemplate: { backend: "cel" }, ...spec }
})

/** Lets every fiber woken by the last clock move run to its next wait. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 400; i++) yield* Effect.yieldNow
})

/** Moves the test clock to `target` in steps, settling after each, so timers set by woken fibers fire in order. */
const advanceTo = (target: number, step = 5 * minute) =>
  Effect.gen(function*() {
    yield* settle
    while (true) {
      const now = yield* Clock.currentTimeMillis
      if (now >= target) return
      yield* TestClock.adjust(Math.min(step, target - now))
      yield* settle
    }
  })

const createSchedule = (name: string, spec: Record<string, unknown>) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    return yield* kube.create(Resources.ComplianceScanSchedule, scheduleManifest(name, spec))
  })

const getSchedule = (name: string) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    return (yield* kube.get(Resources.ComplianceScanSchedule, testNamespace, name)) as unknown as ComplianceScanSchedule
  })

/** The runs of a schedule that exist (deleted ones excluded), oldest scheduled time first. */
const runsOf = (schedule: string) =>
  Effect.gen(function*() {
    const sim = yield* SimulatedCluster
    return (yield* sim.objects(Resources.ComplianceScanRun, testNamespace))
      .filter((run) => run.metadata.labels?.[ScheduleLabel] === schedule && run.metadata.deletionTimestamp === undefined)
      .sort((a, b) => scheduledAt(a) - scheduledAt(b))
  })
const scheduledAt = (run: KubeObject) => Date.parse(run.metadata.annotations?.[scheduledTimeAnnotation] ?? "")
const scheduledTimes = (runs: ReadonlyArray<KubeObject>) => runs.map((run) => run.metadata.annotations?.[scheduledTimeAnnotation])
const phaseOf = (run: KubeObject) => (run.status as { phase?: string } | undefined)?.phase

const at = (iso: string) => Date.parse(iso)

const passing = () => instantScanner("cel", [passingCheck("rule-a")])

/** Runs with `cel` finish at once, `kube-bench` hang until their timeout, `falco` fail. */
const scanners = () => {
  const cleanups = Ref.makeUnsafe(0)
  return [passing(), hangingScanner("kube-bench", cleanups), failingScanner("falco", "BackendUnavailable", "no Falco here")]
}

describe("ComplianceScanSchedule: cron and time zones", () => {
  it.effect("daily 02:30 in Europe/Berlin across the spring-forward gap runs right after it, once a day", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-03-27T12:00:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      yield* createSchedule("berlin", { schedule: "30 2 * * *", timeZone: "Europe/Berlin", successfulRunsHistoryLimit: 10 })
      yield* advanceTo(at("2026-03-30T12:00:00Z"), hour)
      // 02:30 CET = 01:30Z; on the 29th 02:30 does not exist: 03:00 CEST = 01:00Z; then 02:30 CEST = 00:30Z.
      expect(scheduledTimes(yield* runsOf("berlin"))).toEqual([
        "2026-03-28T01:30:00.000Z",
        "2026-03-29T01:00:00.000Z",
        "2026-03-30T00:30:00.000Z"
      ])
      expect((yield* runsOf("berlin")).map((run) => run.metadata.name)).toEqual([
        scheduledRunName("berlin", at("2026-03-28T01:30:00Z")),
        scheduledRunName("berlin", at("2026-03-29T01:00:00Z")),
        scheduledRunName("berlin", at("2026-03-30T00:30:00Z"))
      ])
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("daily 01:30 in America/New_York across the fall-back repeat runs once; Asia/Kolkata (no DST) keeps UTC+5:30", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-10-31T12:00:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      yield* createSchedule("new-york", { schedule: "30 1 * * *", timeZone: "America/New_York", successfulRunsHistoryLimit: 10 })
      yield* createSchedule("kolkata", { schedule: "@daily", timeZone: "Asia/Kolkata", successfulRunsHistoryLimit: 10 })
      yield* createSchedule("utc", { schedule: "0 12 * * SUN", successfulRunsHistoryLimit: 10 })
      yield* advanceTo(at("2026-11-02T12:00:00Z"), hour)
      // 01:30 EDT = 05:30Z on Nov 1 (01:30 EST an hour later does not run again); then 01:30 EST = 06:30Z.
      expect(scheduledTimes(yield* runsOf("new-york"))).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"])
      expect(scheduledTimes(yield* runsOf("kolkata"))).toEqual(["2026-10-31T18:30:00.000Z", "2026-11-01T18:30:00.000Z"])
      expect(scheduledTimes(yield* runsOf("utc"))).toEqual(["2026-11-01T12:00:00.000Z"])
      const status = (yield* getSchedule("new-york")).status
      expect(status).toMatchObject({
        lastScheduleTime: "2026-11-02T06:30:00.000Z",
        nextScheduleTime: "2026-11-03T06:30:00.000Z",
        missedSchedules: 0,
        lastRun: { name: scheduledRunName("new-york", at("2026-11-02T06:30:00Z")), phase: "Succeeded" },
        active: []
      })
      expect(status?.conditions?.find((condition) => condition.type === "Ready")).toMatchObject({ status: "True", reason: "Scheduled" })
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("an unknown time zone or a bad cron expression: Ready=False with the reason, no runs", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:00:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      yield* createSchedule("mars", { schedule: "@hourly", timeZone: "Mars/Olympus_Mons" })
      yield* createSchedule("sixty-one", { schedule: "61 * * * *" })
      yield* advanceTo(at("2026-06-01T03:00:00Z"), hour)
      expect(yield* runsOf("mars")).toEqual([])
      expect(yield* runsOf("sixty-one")).toEqual([])
      expect((yield* getSchedule("mars")).status?.conditions).toEqual([
        expect.objectContaining({ type: "Ready", status: "False", reason: "InvalidTimeZone" })
      ])
      expect((yield* getSchedule("sixty-one")).status?.conditions).toEqual([
        expect.objectContaining({ type: "Ready", status: "False", reason: "InvalidSchedule" })
      ])
    }).pipe(Effect.provide(testCluster)), 60_000)
})

describe("ComplianceScanSchedule: suspend, concurrency, history", () => {
  it.effect("suspended: no runs; resumed without a deadline: one catch-up run for the latest time, the rest counted missed", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:10:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      yield* createSchedule("paused", { schedule: "@hourly", suspend: true })
      yield* advanceTo(at("2026-06-01T03:30:00Z"))
      expect(yield* runsOf("paused")).toEqual([])
      const suspended = (yield* getSchedule("paused")).status
      expect(suspended?.nextScheduleTime).toBeUndefined()
      expect(suspended?.conditions?.find((condition) => condition.type === "Ready")).toMatchObject({ status: "True", reason: "Suspended" })

      yield* kube.patch(Resources.ComplianceScanSchedule, testNamespace, "paused", { spec: { suspend: false } })
      yield* settle
      expect(scheduledTimes(yield* runsOf("paused"))).toEqual(["2026-06-01T03:00:00.000Z"])
      expect((yield* getSchedule("paused")).status).toMatchObject({ missedSchedules: 2, nextScheduleTime: "2026-06-01T04:00:00.000Z" })
      yield* advanceTo(at("2026-06-01T04:01:00Z"))
      expect(scheduledTimes(yield* runsOf("paused"))).toEqual(["2026-06-01T03:00:00.000Z", "2026-06-01T04:00:00.000Z"])
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("resumed past startingDeadlineSeconds: no catch-up, every missed time counted, the next one runs", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:10:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      yield* createSchedule("strict", { schedule: "@hourly", suspend: true, startingDeadlineSeconds: 600 })
      yield* advanceTo(at("2026-06-01T03:30:00Z"))
      yield* kube.patch(Resources.ComplianceScanSchedule, testNamespace, "strict", { spec: { suspend: false } })
      yield* settle
      expect(yield* runsOf("strict")).toEqual([])
      expect((yield* getSchedule("strict")).status).toMatchObject({ missedSchedules: 3, lastScheduleTime: "2026-06-01T03:00:00.000Z" })
      yield* advanceTo(at("2026-06-01T04:01:00Z"))
      expect(scheduledTimes(yield* runsOf("strict"))).toEqual(["2026-06-01T04:00:00.000Z"])
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("Forbid skips a time while a run is active; Replace deletes it and starts the new one; Allow runs both", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:01:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      // kube-bench runs hang (until their 30m timeout): the first run is still active at the second time.
      const hanging = { backend: "kube-bench", timeout: "30m" }
      yield* createSchedule("forbid", { schedule: "*/10 * * * *", runTemplate: hanging })
      yield* createSchedule("replace", { schedule: "*/10 * * * *", runTemplate: hanging, concurrencyPolicy: "Replace" })
      yield* createSchedule("allow", { schedule: "*/10 * * * *", runTemplate: hanging, concurrencyPolicy: "Allow" })
      yield* advanceTo(at("2026-06-01T00:21:00Z"), minute)

      expect(scheduledTimes(yield* runsOf("forbid"))).toEqual(["2026-06-01T00:10:00.000Z"])
      expect((yield* getSchedule("forbid")).status).toMatchObject({
        missedSchedules: 1,
        active: [{ name: scheduledRunName("forbid", at("2026-06-01T00:10:00Z")) }]
      })
      expect(scheduledTimes(yield* runsOf("replace"))).toEqual(["2026-06-01T00:20:00.000Z"])
      expect((yield* getSchedule("replace")).status?.active).toEqual([{ name: scheduledRunName("replace", at("2026-06-01T00:20:00Z")) }])
      expect(scheduledTimes(yield* runsOf("allow"))).toEqual(["2026-06-01T00:10:00.000Z", "2026-06-01T00:20:00.000Z"])
      expect((yield* getSchedule("allow")).status?.active).toHaveLength(2)
      for (const run of yield* runsOf("allow")) expect(phaseOf(run)).toBe("Running")
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("history beyond the limits is deleted with its Results: the newest 2 successes, the newest failure", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:01:00Z"))
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      yield* startOperator({ kube, scanners: scanners() })
      yield* createSchedule("passes", { schedule: "*/5 * * * *", successfulRunsHistoryLimit: 2 })
      yield* createSchedule("fails", { schedule: "*/5 * * * *", runTemplate: { backend: "falco" } })
      yield* advanceTo(at("2026-06-01T00:31:00Z"), minute)
      const passes = yield* runsOf("passes")
      expect(scheduledTimes(passes)).toEqual(["2026-06-01T00:25:00.000Z", "2026-06-01T00:30:00.000Z"])
      expect(passes.map(phaseOf)).toEqual(["Succeeded", "Succeeded"])
      const fails = yield* runsOf("fails")
      expect(scheduledTimes(fails)).toEqual(["2026-06-01T00:30:00.000Z"])
      expect(phaseOf(fails[0]!)).toBe("Failed")
      const results = (yield* sim.objects(Resources.ComplianceScanResult, testNamespace)).map((result) => result.metadata.name).sort()
      expect(results).toEqual([...passes, ...fails].map((run) => run.metadata.name).sort())
      expect((yield* getSchedule("passes")).status).toMatchObject({
        lastSuccessfulTime: "2026-06-01T00:30:00.000Z",
        lastRun: { phase: "Succeeded" },
        scores: [{ framework: "all", passed: 1, failed: 0, score: 1 }]
      })
      expect((yield* getSchedule("fails")).status?.lastSuccessfulTime).toBeUndefined()
      expect((yield* getSchedule("fails")).status?.lastRun).toMatchObject({ phase: "Failed" })
    }).pipe(Effect.provide(testCluster)), 60_000)
})

describe("ComplianceScanSchedule: missed times, jitter, restarts, run-now", () => {
  it.effect("operator down for 5 hours: one run for the latest time on start, 4 counted missed", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:10:00Z"))
      const kube = yield* KubeClient
      yield* createSchedule("hourly", { schedule: "@hourly" })
      yield* TestClock.setTime(at("2026-06-01T05:20:00Z"))
      yield* startOperator({ kube, scanners: scanners() })
      yield* settle
      expect(scheduledTimes(yield* runsOf("hourly"))).toEqual(["2026-06-01T05:00:00.000Z"])
      expect((yield* getSchedule("hourly")).status).toMatchObject({ missedSchedules: 4, lastScheduleTime: "2026-06-01T05:00:00.000Z" })
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("operator down with startingDeadlineSeconds: a start within it catches up once, one after it does not", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:10:00Z"))
      const kube = yield* KubeClient
      yield* createSchedule("within", { schedule: "@hourly", startingDeadlineSeconds: 1800 })
      yield* createSchedule("beyond", { schedule: "@hourly", startingDeadlineSeconds: 600 })
      yield* TestClock.setTime(at("2026-06-01T05:20:00Z"))
      yield* startOperator({ kube, scanners: scanners() })
      yield* settle
      expect(scheduledTimes(yield* runsOf("within"))).toEqual(["2026-06-01T05:00:00.000Z"])
      expect((yield* getSchedule("within")).status?.missedSchedules).toBe(4)
      expect(yield* runsOf("beyond")).toEqual([])
      expect((yield* getSchedule("beyond")).status?.missedSchedules).toBe(5)
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("jitter spreads 40 schedules on the same cron over the window, each at its own fixed offset", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:30:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      const names = Array.from({ length: 40 }, (_, index) => `fleet-${index}`)
      for (const name of names) yield* createSchedule(name, { schedule: "@hourly", jitter: "10m" })
      const firstSeen = new Map<string, number>()
      const sweep = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        for (const name of names) {
          for (const run of yield* runsOf(name)) if (!firstSeen.has(run.metadata.name)) firstSeen.set(run.metadata.name, now)
        }
      })
      while ((yield* Clock.currentTimeMillis) < at("2026-06-01T02:11:00Z")) {
        yield* TestClock.adjust("10 seconds")
        yield* settle
        yield* sweep
      }
      const offsets = names.map((name) => jitterOffsetMillis(testNamespace, name, 10 * minute))
      for (const [index, name] of names.entries()) {
        for (const tick of [at("2026-06-01T01:00:00Z"), at("2026-06-01T02:00:00Z")]) {
          const seen = firstSeen.get(scheduledRunName(name, tick))
          // Created at the first 10 s step at or after tick + offset.
          expect(seen! - tick - offsets[index]!, name).toBeGreaterThanOrEqual(0)
          expect(seen! - tick - offsets[index]!, name).toBeLessThan(10_000)
        }
      }
      // Spread: the offsets cover the window rather than bunching up.
      const sorted = [...offsets].sort((a, b) => a - b)
      expect(sorted[0]!).toBeLessThan(2 * minute)
      expect(sorted.at(-1)!).toBeGreaterThan(8 * minute)
      expect(new Set(offsets.map((offset) => Math.floor(offset / minute))).size).toBeGreaterThanOrEqual(8)
    }).pipe(Effect.provide(testCluster)), 120_000)

  it.effect("an operator killed right after creating the run at the scheduled instant: its successor does not create it twice", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:59:00Z"))
      const kube = yield* KubeClient
      const crashed = yield* Deferred.make<void>()
      let creates = 0
      let tripped = false
      // The first process dies (hangs, then its scope closes) the moment its run create lands.
      const dying = KubeClient.of({
        ...kube,
        create: (resource, object) =>
          tripped
            ? Effect.never
            : Effect.tap(kube.create(resource, object), () => {
              if (resource !== Resources.ComplianceScanRun) return Effect.void
              creates++
              tripped = true
              return Deferred.succeed(crashed, undefined).pipe(Effect.andThen(Effect.never))
            }),
        patch: (...args) => (tripped ? Effect.never : kube.patch(...args))
      })
      const counting = KubeClient.of({
        ...kube,
        create: (resource, object) => {
          if (resource === Resources.ComplianceScanRun) creates++
          return kube.create(resource, object)
        }
      })
      yield* createSchedule("once", { schedule: "@hourly" })
      const firstScope = yield* Scope.make()
      yield* startOperator({ kube: dying, scanners: scanners() }).pipe(Scope.provide(firstScope))
      yield* advanceTo(at("2026-06-01T01:00:00Z"), minute)
      yield* Deferred.await(crashed)
      yield* Scope.close(firstScope, { _tag: "Success", value: undefined } as never)
      expect((yield* getSchedule("once")).status?.lastScheduleTime).toBeUndefined()

      yield* startOperator({ kube: counting, scanners: scanners() })
      yield* settle
      expect(scheduledTimes(yield* runsOf("once"))).toEqual(["2026-06-01T01:00:00.000Z"])
      expect(creates).toBe(1)
      expect((yield* getSchedule("once")).status).toMatchObject({ lastScheduleTime: "2026-06-01T01:00:00.000Z", missedSchedules: 0 })
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.effect("run-now: one run per annotation value, the annotation removed, the schedule's times unchanged", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:10:00Z"))
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: scanners() })
      yield* createSchedule("daily", { schedule: "@daily" })
      yield* settle
      yield* kube.patch(Resources.ComplianceScanSchedule, testNamespace, "daily", { metadata: { annotations: { [runNowAnnotation]: "first" } } })
      yield* settle
      const runs = yield* runsOf("daily")
      expect(runs).toHaveLength(1)
      expect(runs[0]!.metadata.annotations?.[runNowAnnotation]).toBe("first")
      expect(phaseOf(runs[0]!)).toBe("Succeeded")
      const schedule = yield* getSchedule("daily")
      expect(schedule.metadata.annotations?.[runNowAnnotation]).toBeUndefined()
      expect(schedule.status).toMatchObject({ lastRunNow: "first", nextScheduleTime: "2026-06-02T00:00:00.000Z" })
      expect(schedule.status?.lastScheduleTime).toBeUndefined()
      yield* kube.patch(Resources.ComplianceScanSchedule, testNamespace, "daily", { metadata: { annotations: { [runNowAnnotation]: "second" } } })
      yield* settle
      expect(yield* runsOf("daily")).toHaveLength(2)
    }).pipe(Effect.provide(testCluster)), 60_000)
})

describe("ComplianceScanSchedule: freshness and score", () => {
  const gauge = (metrics: { registry: { getSingleMetric: (name: string) => unknown } }, name: string) =>
    Effect.promise(async () => {
      const metric = metrics.registry.getSingleMetric(name) as { get: () => Promise<{ values: ReadonlyArray<{ labels: Record<string, string>; value: number }> }> }
      return (await metric.get()).values.map(({ labels, value }): Record<string, string | number> => ({ ...labels, value }))
    })

  it.effect("Stale after twice the period without a success (or spec.staleAfter); the metrics report freshness and score", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-06-01T00:10:00Z"))
      const kube = yield* KubeClient
      const operator = yield* startOperator({
        kube,
        scanners: [instantScanner("cel", [passingCheck("rule-a"), passingCheck("rule-b"), { ...passingCheck("rule-c"), outcome: "fail" }]), failingScanner("falco", "BackendUnavailable", "no Falco here")]
      })
      yield* createSchedule("healthy", { schedule: "@hourly", runTemplate: { backend: "cel", controlMappings: [{ checkID: "rule-a", frameworks: [{ name: "cis", controlID: "1.1" }] }, { checkID: "rule-c", frameworks: [{ name: "cis", controlID: "1.2" }] }] } })
      yield* createSchedule("broken", { schedule: "@hourly", runTemplate: { backend: "falco" } })
      yield* createSchedule("strict", { schedule: "@daily", staleAfter: "30m", runTemplate: { backend: "falco" } })
      yield* advanceTo(at("2026-06-01T02:05:00Z"))
      const stale = (name: string) => getSchedule(name).pipe(Effect.map((schedule) => schedule.status?.conditions?.find((condition) => condition.type === "Stale")))
      expect(yield* stale("healthy")).toMatchObject({ status: "False", reason: "Fresh" })
      expect(yield* stale("broken")).toMatchObject({ status: "False" })
      // Created 00:10, staleAfter 30m: stale since 00:40 without any run at all.
      expect(yield* stale("strict")).toMatchObject({ status: "True", reason: "NeverSucceeded" })
      yield* advanceTo(at("2026-06-01T02:15:00Z"))
      // Two hours (twice the hourly period) since the schedule was created, no success.
      expect(yield* stale("broken")).toMatchObject({ status: "True", reason: "NeverSucceeded" })

      expect(yield* gauge(operator.metrics, "ugallu_compliance_scan_last_success_timestamp_seconds")).toEqual([
        { namespace: testNamespace, schedule: "healthy", value: at("2026-06-01T02:00:00Z") / 1000 }
      ])
      expect((yield* gauge(operator.metrics, "ugallu_compliance_scan_stale_after_seconds")).map((entry) => [entry.schedule, entry.value]).sort()).toEqual([
        ["broken", 7200],
        ["healthy", 7200],
        ["strict", 1800]
      ])
      // all: 2 passed, 1 failed; cis: control 1.1 passed, 1.2 failed.
      expect((yield* gauge(operator.metrics, "ugallu_compliance_scan_score")).map((entry) => [entry.schedule, entry.framework, entry.value])).toEqual([
        ["healthy", "all", 2 / 3],
        ["healthy", "cis", 0.5]
      ])
      expect((yield* getSchedule("healthy")).status?.scores).toEqual([
        { framework: "all", passed: 2, failed: 1, score: 2 / 3 },
        { framework: "cis", passed: 1, failed: 1, score: 0.5 }
      ])

      // Deleted: its series go.
      yield* kube.delete(Resources.ComplianceScanSchedule, testNamespace, "healthy")
      yield* settle
      expect((yield* gauge(operator.metrics, "ugallu_compliance_scan_score"))).toEqual([])
    }).pipe(Effect.provide(testCluster)), 60_000)
})
