import { Clock, Context, DateTime, Effect, Layer, Result, Schema } from "effect"
import type { ComplianceScanResult } from "../api/ComplianceScanResult.ts"
import { isTerminal, type RunPhase } from "../api/ComplianceScanRun.ts"
import {
  ComplianceScanSchedule as ScheduleSchema,
  type ComplianceScanSchedule,
  type ComplianceScanScheduleStatus,
  maxScheduleNameLength,
  runNowAnnotation,
  scheduledTimeAnnotation,
  scheduleWithDefaults
} from "../api/ComplianceScanSchedule.ts"
import { parseDurationMillis } from "../api/Duration.ts"
import type { Condition } from "../api/ObjectMeta.ts"
import type { Severity } from "../api/Severity.ts"
import { EventRecorder } from "../services/EventRecorder.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import type { KubeError } from "../services/kube/KubeErrors.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { Resources } from "../services/kube/Resources.ts"
import { retryTransient } from "../services/kube/Retry.ts"
import { type CronSchedule, parseCronSchedule, periodAt, scheduledTimesBetween } from "./CronSchedule.ts"
import { ScheduleMetrics } from "./ScheduleMetrics.ts"
import { jitterOffsetMillis, runNowRunName, scheduledRun, scheduledRunName } from "./ScheduleRuns.ts"
import { scoresOf } from "./Score.ts"

/** What one pass decided: when to look again (epoch millis), and the schedule as now stored. */
export interface SchedulePass {
  readonly wakeAt: number | undefined
  readonly schedule: KubeObject | undefined
}

interface RunView {
  readonly name: string
  readonly phase: RunPhase
  readonly worstSeverity: Severity | undefined
  readonly completionTime: string | undefined
  /** Scheduled time (or creation) in millis: the order of the schedule's history. */
  readonly order: number
  readonly deleting: boolean
}

const decodeSchedule = Schema.decodeUnknownResult(ScheduleSchema)

const iso = (millis: number) => DateTime.formatIso(DateTime.makeUnsafe(millis))
const millisOf = (text: string | undefined) => (text === undefined ? undefined : Date.parse(text))

const viewOf = (run: KubeObject): RunView => {
  const status = (run.status ?? {}) as { phase?: RunPhase; worstSeverity?: Severity; completionTime?: string }
  return {
    name: run.metadata.name,
    phase: status.phase ?? "",
    worstSeverity: status.worstSeverity,
    completionTime: status.completionTime,
    order: millisOf(run.metadata.annotations?.[scheduledTimeAnnotation]) ?? millisOf(run.metadata.creationTimestamp) ?? 0,
    deleting: run.metadata.deletionTimestamp !== undefined
  }
}

/** JSON with object keys sorted: the API server does not keep the order a client wrote. */
const canonical = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(canonical)
    : value !== null && typeof value === "object"
    ? Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]))
    : value
const sameJson = (a: unknown, b: unknown) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b))

/** `conditions` with `next` in place of its type; the transition time moves only when status or reason does. */
const withCondition = (conditions: ReadonlyArray<Condition>, next: Condition): ReadonlyArray<Condition> => {
  const previous = conditions.find((condition) => condition.type === next.type)
  const kept = previous !== undefined && previous.status === next.status && previous.reason === next.reason
    ? { ...next, lastTransitionTime: previous.lastTransitionTime }
    : next
  return [...conditions.filter((condition) => condition.type !== next.type), kept].sort((a, b) => a.type.localeCompare(b.type))
}

/**
 * One pass over one schedule, like controller-runtime's reconcile: from the schedule and the
 * runs it owns (as the watches last saw them) to the runs that should exist and the status
 * that says so. Idempotent: run names are deterministic from the scheduled time, so a pass
 * repeated after a crash or by another leader finds its run there (AlreadyExists) instead of
 * making a second one; `lastScheduleTime` is written after the create.
 */
export class ScheduleReconciler extends Context.Service<
  ScheduleReconciler,
  {
    readonly reconcile: (schedule: KubeObject, runs: ReadonlyArray<KubeObject>) => Effect.Effect<SchedulePass, KubeError>
  }
>()("compliance-scan/schedules/ScheduleReconciler") {
  static readonly layer = Layer.effect(
    ScheduleReconciler,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const recorder = yield* EventRecorder
      const metrics = yield* ScheduleMetrics

      /** A JSON merge patch of the status: `null` removes a key. */
      const patchStatus = (schedule: KubeObject, status: Record<string, unknown>) =>
        retryTransient(kube.patch(Resources.ComplianceScanSchedule, schedule.metadata.namespace, schedule.metadata.name, { status }, {
          subresource: "status"
        }))

      /** A schedule the operator cannot follow: Ready=False with the reason, nothing else done. */
      const notReady = (schedule: KubeObject, reason: string, message: string, now: number) =>
        Effect.gen(function*() {
          const status = (schedule.status ?? {}) as ComplianceScanScheduleStatus
          const conditions = withCondition(status.conditions ?? [], {
            type: "Ready",
            status: "False",
            reason,
            message,
            lastTransitionTime: iso(now),
            ...(schedule.metadata.generation === undefined ? {} : { observedGeneration: schedule.metadata.generation })
          })
          if (sameJson(conditions, status.conditions ?? []) && status.nextScheduleTime === undefined) return { wakeAt: undefined, schedule }
          const patched = yield* patchStatus(schedule, { conditions, nextScheduleTime: null })
          return { wakeAt: undefined, schedule: patched }
        })

      const createRun = (run: KubeObject) =>
        retryTransient(kube.create(Resources.ComplianceScanRun, run)).pipe(
          Effect.as(true),
          // Created before (a pass repeated after a crash, another leader): done.
          Effect.catchTag("AlreadyExists", () => Effect.succeed(false))
        )

      const deleteRun = (namespace: string, name: string) =>
        retryTransient(kube.delete(Resources.ComplianceScanRun, namespace, name, { propagationPolicy: "Background" })).pipe(
          Effect.catchTag("NotFound", () => Effect.void)
        )

      /** The scores of the run's Result, or undefined when it is gone. */
      const scoresOfRun = (namespace: string, resultName: string) =>
        retryTransient(kube.get(Resources.ComplianceScanResult, namespace, resultName)).pipe(
          Effect.map((result) => scoresOf(result as unknown as ComplianceScanResult)),
          Effect.catchTag("NotFound", () => Effect.succeed(undefined))
        )

      const reconcile = Effect.fn("ScheduleReconciler.reconcile")(function*(raw: KubeObject, runObjects: ReadonlyArray<KubeObject>) {
        const now = yield* Clock.currentTimeMillis
        if (raw.metadata.deletionTimestamp !== undefined) return { wakeAt: undefined, schedule: raw } satisfies SchedulePass
        const decoded = decodeSchedule(raw)
        if (Result.isFailure(decoded)) return yield* notReady(raw, "InvalidSpec", decoded.failure.message, now)
        const schedule: ComplianceScanSchedule = decoded.success
        const { namespace, name } = schedule.metadata as { namespace: string; name: string }
        if (name.length > maxScheduleNameLength) {
          return yield* notReady(raw, "NameTooLong", `The name must be at most ${maxScheduleNameLength} characters: its runs are named <schedule>-<minutes since the epoch>.`, now)
        }
        const parsed = parseCronSchedule(schedule.spec.schedule, schedule.spec.timeZone)
        if (Result.isFailure(parsed)) return yield* notReady(raw, parsed.failure.reason, parsed.failure.message, now)
        const cron: CronSchedule = parsed.success
        const spec = scheduleWithDefaults(schedule.spec)
        const status = schedule.status ?? {}

        // Only runs this schedule owns: a run merely labelled with its name is never pruned or replaced.
        const owned = runObjects.filter((run) => run.metadata.ownerReferences?.some((owner) => owner.uid === schedule.metadata.uid))
        const runs = new Map(owned.map((run) => [run.metadata.name, viewOf(run)]))
        let missed = status.missedSchedules ?? 0
        let lastScheduleTime = millisOf(status.lastScheduleTime)

        // On demand: one run per annotation value, then the annotation is removed.
        const runNow = schedule.metadata.annotations?.[runNowAnnotation]
        if (runNow !== undefined) {
          const runName = runNowRunName(name, runNow)
          if (!runs.has(runName)) {
            if (yield* createRun(scheduledRun(schedule, runName, iso(now), runNow))) {
              yield* recorder.record(schedule, { type: "Normal", reason: "RunNow", message: `Created run ${runName} on demand (${runNowAnnotation}=${runNow}).` })
            }
            runs.set(runName, { name: runName, phase: "", worstSeverity: undefined, completionTime: undefined, order: now, deleting: false })
          }
          yield* retryTransient(kube.patch(Resources.ComplianceScanSchedule, namespace, name, {
            metadata: { annotations: { [runNowAnnotation]: null } }
          })).pipe(Effect.catchTag("NotFound", () => Effect.void))
        }

        // The period decides the jitter's ceiling (half of it) and the default staleness.
        const period = periodAt(cron, now)
        const jitterMillis = Math.min(parseDurationMillis(spec.jitter ?? "0s") ?? 0, (period ?? 0) / 2)
        const offset = jitterOffsetMillis(namespace, name, jitterMillis)
        const active = () => [...runs.values()].filter((run) => !isTerminal(run.phase) && !run.deleting)

        if (!spec.suspend) {
          const since = lastScheduleTime ?? millisOf(schedule.metadata.creationTimestamp) ?? now
          const due = scheduledTimesBetween(cron, since, now - offset)
          if (due.latest !== undefined) {
            // Only the latest missed time may still run; the ones before it are counted.
            missed += due.count - 1
            const runName = scheduledRunName(name, due.latest)
            const lateMillis = now - (due.latest + offset)
            if (runs.has(runName)) {
              // Created by an earlier pass that did not get to record it.
            } else if (spec.startingDeadlineSeconds !== undefined && lateMillis > spec.startingDeadlineSeconds * 1000) {
              missed++
              yield* recorder.record(schedule, {
                type: "Warning",
                reason: "MissedSchedule",
                message: `Missed the run for ${iso(due.latest)}: ${Math.round(lateMillis / 1000)}s late, past startingDeadlineSeconds ${spec.startingDeadlineSeconds}.`
              })
            } else if (spec.concurrencyPolicy === "Forbid" && active().length > 0) {
              missed++
              yield* recorder.record(schedule, {
                type: "Normal",
                reason: "Skipped",
                message: `Skipped the run for ${iso(due.latest)}: ${active().map((run) => run.name).join(", ")} still running (concurrencyPolicy Forbid).`
              })
            } else {
              if (spec.concurrencyPolicy === "Replace") {
                for (const run of active()) {
                  yield* deleteRun(namespace, run.name)
                  runs.set(run.name, { ...run, deleting: true })
                }
              }
              yield* createRun(scheduledRun(schedule, runName, iso(due.latest)))
              runs.set(runName, { name: runName, phase: "", worstSeverity: undefined, completionTime: undefined, order: due.latest, deleting: false })
            }
            lastScheduleTime = due.latest
          }
        }

        const newestFirst = () => [...runs.values()].sort((a, b) => b.order - a.order)
        const lastSucceeded = newestFirst().find((run) => run.phase === "Succeeded")
        const lastSuccessfulTime = [status.lastSuccessfulTime, lastSucceeded?.completionTime]
          .filter((time): time is string => time !== undefined)
          .sort((a, b) => Date.parse(b) - Date.parse(a))[0]

        // The score of the newest success, read once per run from its Result (before pruning can take it away).
        let scores = status.scores
        let scoredRun = status.scoredRun
        if (lastSucceeded !== undefined && lastSucceeded.name !== scoredRun) {
          const fresh = yield* scoresOfRun(namespace, lastSucceeded.name)
          if (fresh !== undefined) {
            scores = fresh
            scoredRun = lastSucceeded.name
          }
        }

        // History: the newest finished runs within the limits stay; their Results go with the rest (owner references).
        const finished = [...runs.values()].filter((run) => isTerminal(run.phase) && !run.deleting).sort((a, b) => b.order - a.order)
        for (const [phase, limit] of [["Succeeded", spec.successfulRunsHistoryLimit], ["Failed", spec.failedRunsHistoryLimit]] as const) {
          for (const run of finished.filter((candidate) => candidate.phase === phase).slice(limit)) {
            yield* deleteRun(namespace, run.name)
            runs.set(run.name, { ...run, deleting: true })
          }
        }

        const lastRun = newestFirst().find((run) => !run.deleting) ?? newestFirst()[0]
        const nextDue = spec.suspend ? undefined : cron.next(Math.max(lastScheduleTime ?? 0, now - offset))
        const nextStart = nextDue === undefined ? undefined : nextDue + offset
        const staleAfter = spec.staleAfter !== undefined ? parseDurationMillis(spec.staleAfter) : period === undefined ? undefined : 2 * period
        const freshSince = millisOf(lastSuccessfulTime) ?? millisOf(schedule.metadata.creationTimestamp) ?? now
        const staleAt = staleAfter === undefined ? undefined : freshSince + staleAfter
        const stale = staleAt !== undefined && now > staleAt
        const generation = schedule.metadata.generation === undefined ? {} : { observedGeneration: schedule.metadata.generation }
        const ready: Condition = spec.suspend
          ? { type: "Ready", status: "True", reason: "Suspended", message: "Suspended: no runs are scheduled.", lastTransitionTime: iso(now), ...generation }
          : { type: "Ready", status: "True", reason: "Scheduled", message: `Next run at ${nextStart === undefined ? "never" : iso(nextStart)}.`, lastTransitionTime: iso(now), ...generation }
        const staleCondition: Condition = stale
          ? {
            type: "Stale",
            status: "True",
            reason: lastSuccessfulTime === undefined ? "NeverSucceeded" : "LastSuccessTooOld",
            message: `No successful run since ${iso(freshSince)}; stale after ${Math.round(staleAfter! / 1000)}s.`,
            lastTransitionTime: iso(now),
            ...generation
          }
          : {
            type: "Stale",
            status: "False",
            reason: "Fresh",
            message: staleAt === undefined ? "No staleness limit." : `Fresh until ${iso(staleAt)}.`,
            lastTransitionTime: iso(now),
            ...generation
          }
        const conditions = withCondition(withCondition(status.conditions ?? [], ready), staleCondition)

        const next: ComplianceScanScheduleStatus = {
          ...(lastScheduleTime === undefined ? {} : { lastScheduleTime: iso(lastScheduleTime) }),
          ...(lastSuccessfulTime === undefined ? {} : { lastSuccessfulTime }),
          ...(nextStart === undefined ? {} : { nextScheduleTime: iso(nextStart) }),
          active: active().map((run) => ({ name: run.name })).sort((a, b) => a.name.localeCompare(b.name)),
          ...(lastRun === undefined
            ? {}
            : { lastRun: { name: lastRun.name, phase: lastRun.phase, ...(lastRun.worstSeverity === undefined ? {} : { worstSeverity: lastRun.worstSeverity }) } }),
          missedSchedules: missed,
          ...(runNow === undefined ? (status.lastRunNow === undefined ? {} : { lastRunNow: status.lastRunNow }) : { lastRunNow: runNow }),
          ...(scores === undefined ? {} : { scores }),
          ...(scoredRun === undefined ? {} : { scoredRun }),
          conditions,
          ...generation
        }
        metrics.report({ namespace, schedule: name }, {
          lastSuccessSeconds: lastSuccessfulTime === undefined ? undefined : Date.parse(lastSuccessfulTime) / 1000,
          staleAfterSeconds: staleAfter === undefined ? undefined : staleAfter / 1000,
          scores: scores ?? []
        })
        const wakeAt = [nextStart, stale ? undefined : staleAt].filter((time): time is number => time !== undefined)
        const pass = { wakeAt: wakeAt.length === 0 ? undefined : Math.min(...wakeAt), schedule: raw }
        // Absent keys must be removed by the merge patch: send null for what the status no longer has.
        const cleared = Object.fromEntries(
          Object.keys(status).filter((key) => !(key in next)).map((key) => [key, null])
        )
        if (sameJson(next, status)) return pass
        return { ...pass, schedule: yield* patchStatus(raw, { ...cleared, ...next }) }
      })

      return ScheduleReconciler.of({ reconcile })
    })
  )
}
