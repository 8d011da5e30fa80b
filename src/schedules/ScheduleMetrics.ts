import { Context, Effect, Layer } from "effect"
import type { FrameworkScore } from "../api/ComplianceScanSchedule.ts"
import { Metrics } from "../services/Metrics.ts"

export interface ScheduleSeries {
  readonly namespace: string
  readonly schedule: string
}

/**
 * Freshness and score of each schedule (docs/api.md, "Freshness and score"), registered on
 * the operator's registry. Set from the schedule's status, so a new leader reports the same.
 */
export class ScheduleMetrics extends Context.Service<
  ScheduleMetrics,
  {
    readonly report: (
      series: ScheduleSeries,
      values: {
        readonly lastSuccessSeconds: number | undefined
        readonly staleAfterSeconds: number | undefined
        readonly scores: ReadonlyArray<FrameworkScore>
      }
    ) => void
    /** The schedule is gone: its series go too. */
    readonly forget: (series: ScheduleSeries) => void
    /** No longer the leader: another process reports the schedules now. */
    readonly forgetAll: () => void
  }
>()("compliance-scan/schedules/ScheduleMetrics") {
  static readonly layer = Layer.effect(
    ScheduleMetrics,
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const lastSuccess = metrics.gauge({
        name: "ugallu_compliance_scan_last_success_timestamp_seconds",
        help: "When the last run of a ComplianceScanSchedule succeeded (Unix seconds).",
        labelNames: ["namespace", "schedule"]
      })
      const staleAfter = metrics.gauge({
        name: "ugallu_compliance_scan_stale_after_seconds",
        help: "Age of the last success past which a ComplianceScanSchedule is Stale (spec.staleAfter, or twice its period).",
        labelNames: ["namespace", "schedule"]
      })
      const score = metrics.gauge({
        name: "ugallu_compliance_scan_score",
        help: "passed / (passed + failed) in the last successful Result of a ComplianceScanSchedule, per framework (`all`: every check).",
        labelNames: ["namespace", "schedule", "framework"]
      })
      // Which framework series each schedule has, so that a framework that disappears is removed.
      const frameworks = new Map<string, ReadonlySet<string>>()
      const keyOf = (series: ScheduleSeries) => `${series.namespace}/${series.schedule}`

      const report: ScheduleMetrics["Service"]["report"] = (series, values) => {
        const labels = { namespace: series.namespace, schedule: series.schedule }
        if (values.lastSuccessSeconds === undefined) lastSuccess.remove(labels)
        else lastSuccess.set(labels, values.lastSuccessSeconds)
        if (values.staleAfterSeconds === undefined) staleAfter.remove(labels)
        else staleAfter.set(labels, values.staleAfterSeconds)
        const current = new Set(values.scores.map((entry) => entry.framework))
        for (const framework of frameworks.get(keyOf(series)) ?? []) {
          if (!current.has(framework)) score.remove({ ...labels, framework })
        }
        for (const entry of values.scores) score.set({ ...labels, framework: entry.framework }, entry.score)
        frameworks.set(keyOf(series), current)
      }

      const forget = (series: ScheduleSeries) => {
        const labels = { namespace: series.namespace, schedule: series.schedule }
        lastSuccess.remove(labels)
        staleAfter.remove(labels)
        for (const framework of frameworks.get(keyOf(series)) ?? []) score.remove({ ...labels, framework })
        frameworks.delete(keyOf(series))
      }
      const forgetAll = () => {
        lastSuccess.reset()
        staleAfter.reset()
        score.reset()
        frameworks.clear()
      }
      return ScheduleMetrics.of({ report, forget, forgetAll })
    })
  )
}
