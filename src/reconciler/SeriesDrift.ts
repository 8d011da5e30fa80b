import { Effect } from "effect"
import type { Check } from "../api/Check.ts"
import type { ComplianceScanResult } from "../api/ComplianceScanResult.ts"
import type { ComplianceScanRun, ComplianceScanRunStatus } from "../api/ComplianceScanRun.ts"
import type { Drift } from "../api/Drift.ts"
import { BaselineLabel, ScheduleLabel, seriesOf } from "../api/SeriesLabels.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import { listAll } from "../services/kube/ListWatch.ts"
import { Resources } from "../services/kube/Resources.ts"
import { retryTransient } from "../services/kube/Retry.ts"
import { computeDrift } from "./Drift.ts"

/** The label selector of a run's series: its schedule, else its baseline (without a schedule). */
const seriesSelector = (run: ComplianceScanRun): string | undefined => {
  const labels = run.metadata.labels
  const series = seriesOf(labels)
  if (series === undefined) return undefined
  return labels?.[ScheduleLabel] !== undefined ? `${ScheduleLabel}=${series}` : `${BaselineLabel}=${series},!${ScheduleLabel}`
}

/**
 * The drift of a run's checks from the previous successful Result of its series: the Result
 * of the run of the same series that succeeded last before this run started (so a retry
 * computes the same). Undefined for a run outside any series, or without a predecessor.
 */
export const driftOfRun = Effect.fn("SeriesDrift.driftOfRun")(function*(run: ComplianceScanRun, checks: ReadonlyArray<Check>) {
  const selector = seriesSelector(run)
  if (selector === undefined) return undefined
  const started = Date.parse(run.status?.startTime ?? "") || Number.POSITIVE_INFINITY
  const { items } = yield* retryTransient(listAll(Resources.ComplianceScanRun, { namespace: run.metadata.namespace!, labelSelector: selector }))
  const previous = items
    .map((item) => ({ name: item.metadata.name, status: (item.status ?? {}) as ComplianceScanRunStatus }))
    .filter(({ name, status }) =>
      name !== run.metadata.name && status.phase === "Succeeded" && status.resultRef !== undefined &&
      Date.parse(status.completionTime ?? "") < started
    )
    .sort((a, b) => Date.parse(b.status.completionTime!) - Date.parse(a.status.completionTime!))[0]
  if (previous === undefined) return undefined
  const kube = yield* KubeClient
  const result = yield* retryTransient(kube.get(Resources.ComplianceScanResult, run.metadata.namespace, previous.status.resultRef!.name)).pipe(
    Effect.map((object) => object as unknown as ComplianceScanResult),
    // Pruned meanwhile: nothing to compare with.
    Effect.catchTag("NotFound", () => Effect.succeed(undefined))
  )
  if (result === undefined) return undefined
  return computeDrift({
    name: result.metadata.name,
    ...(previous.status.completionTime === undefined ? {} : { completionTime: previous.status.completionTime }),
    checks: result.spec.checks,
    truncated: result.status?.truncated === true
  }, checks) satisfies Drift
})
