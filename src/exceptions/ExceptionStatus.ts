import type { ExceptionRecord } from "../api/AppliedException.ts"
import type { ComplianceException, ComplianceExceptionStatus, SeriesMatches } from "../api/ComplianceException.ts"
import { type BackendName, scannerNameOf } from "../api/ComplianceScanRun.ts"
import type { Condition } from "../api/ObjectMeta.ts"
import { validityOf } from "./ExceptionMatcher.ts"

/**
 * The status of a ComplianceException from the runs that could apply it: pure, so expiry
 * boundaries and "unused" are table-tested under a TestClock.
 */

/** The Expiring event and the `expiring` state start this long before expiry. */
export const expiringWindowMillis = 7 * 24 * 3_600_000

/** A finished run as the status controller sees it: which exceptions it applied, how often. */
export interface RunView {
  readonly namespace: string
  readonly name: string
  readonly backend: BackendName
  /** Its series (schedule or baseline label); undefined for a one-off run. */
  readonly series: string | undefined
  /** When the run finished, epoch milliseconds. */
  readonly finishedAt: number
  readonly exceptions: ReadonlyArray<ExceptionRecord>
}

export type ExceptionState = "active" | "expiring" | "expired" | "unused"

export type ExceptionEventType = "ComplianceExceptionExpiring" | "ComplianceExceptionExpired"

export interface ExceptionAssessment {
  readonly status: ComplianceExceptionStatus
  /** The metric states it counts in (not exclusive: an active exception may be expiring and unused). */
  readonly states: ReadonlyArray<ExceptionState>
  /** The event due now (each is written once, under a deterministic name). */
  readonly event: ExceptionEventType | undefined
  /** The next instant the assessment changes by time alone (expiring or expiry), if any. */
  readonly nextChange: number | undefined
}

export interface AssessOptions {
  readonly now: number
  readonly maxDurationMillis: number
  readonly unusedAfterRuns: number
}

const iso = (millis: number) => new Date(millis).toISOString()

const matchesOf = (run: RunView, exception: ComplianceException): number =>
  run.exceptions.find((record) => record.name === exception.metadata.name && record.namespace === exception.metadata.namespace)
    ?.matched ?? 0

/** Runs whose backend the exception can apply to, finished after it was created, newest first. */
const relevantRuns = (exception: ComplianceException, runs: ReadonlyArray<RunView>): ReadonlyArray<RunView> => {
  const backends = exception.spec.match.backends?.map(scannerNameOf)
  const created = exception.metadata.creationTimestamp === undefined ? 0 : Date.parse(exception.metadata.creationTimestamp)
  return runs
    .filter((run) => backends === undefined || backends.includes(scannerNameOf(run.backend)))
    .filter((run) => run.finishedAt >= created)
    .toSorted((a, b) => b.finishedAt - a.finishedAt || a.name.localeCompare(b.name))
}

/** A condition keeping its lastTransitionTime while its status does not change. */
const condition = (
  previous: ReadonlyArray<Condition> | undefined,
  type: string,
  status: Condition["status"],
  reason: string,
  message: string,
  now: number,
  generation: number | undefined
): Condition => {
  const before = previous?.find((entry) => entry.type === type)
  return {
    type,
    status,
    reason,
    message,
    lastTransitionTime: before !== undefined && before.status === status ? before.lastTransitionTime : iso(now),
    ...(generation === undefined ? {} : { observedGeneration: generation })
  }
}

export const assessException = (
  exception: ComplianceException,
  runs: ReadonlyArray<RunView>,
  options: AssessOptions
): ExceptionAssessment => {
  const { now } = options
  const previous = exception.status?.conditions
  const generation = exception.metadata.generation
  const validity = validityOf(exception, now, options.maxDurationMillis)
  const relevant = relevantRuns(exception, runs)

  // The last run of each series (one-off runs together as the series "").
  const lastOfSeries = new Map<string, RunView>()
  for (const run of relevant) {
    const key = `${run.namespace}/${run.series ?? ""}`
    if (!lastOfSeries.has(key)) lastOfSeries.set(key, run)
  }
  const series: Array<SeriesMatches> = [...lastOfSeries.values()]
    .map((run) => ({ series: run.series ?? "", namespace: run.namespace, run: run.name, matched: matchesOf(run, exception) }))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.series.localeCompare(b.series))
  const lastMatched = Math.max(
    ...relevant.filter((run) => matchesOf(run, exception) > 0).map((run) => run.finishedAt),
    exception.status?.lastMatchedTime === undefined ? -Infinity : Date.parse(exception.status.lastMatchedTime)
  )

  const window = relevant.slice(0, options.unusedAfterRuns)
  const unused = window.length < options.unusedAfterRuns
    ? condition(previous, "Unused", "Unknown", "TooFewRuns", `Fewer than ${options.unusedAfterRuns} runs it could apply to finished since it was created.`, now, generation)
    : window.every((run) => matchesOf(run, exception) === 0)
    ? condition(previous, "Unused", "True", "NoMatches", `It matched nothing in the last ${options.unusedAfterRuns} runs it could apply to: remove it, or fix its match.`, now, generation)
    : condition(previous, "Unused", "False", "Matched", `It matched findings in the last ${options.unusedAfterRuns} runs it could apply to.`, now, generation)

  let active: Condition
  let expired: Condition
  let event: ExceptionEventType | undefined
  let nextChange: number | undefined
  const states: Array<ExceptionState> = []
  switch (validity._tag) {
    case "Active": {
      const expiring = validity.expiresAt - now <= expiringWindowMillis
      active = condition(previous, "Active", "True", expiring ? "ExpiresSoon" : "Active", `Applied until ${exception.spec.expiresAt}.`, now, generation)
      expired = condition(previous, "Expired", "False", "NotExpired", `Expires at ${exception.spec.expiresAt}.`, now, generation)
      states.push("active")
      if (expiring) {
        states.push("expiring")
        event = "ComplianceExceptionExpiring"
        nextChange = validity.expiresAt
      } else {
        nextChange = validity.expiresAt - expiringWindowMillis
      }
      break
    }
    case "Expired":
      active = condition(previous, "Active", "False", "Expired", `Expired at ${exception.spec.expiresAt}: findings it matched count again.`, now, generation)
      expired = condition(previous, "Expired", "True", "Expired", `Expired at ${exception.spec.expiresAt}.`, now, generation)
      states.push("expired")
      event = "ComplianceExceptionExpired"
      break
    case "Invalid":
      active = condition(previous, "Active", "False", validity.reason, `${validity.message}: it is never applied.`, now, generation)
      expired = condition(previous, "Expired", "False", validity.reason, validity.message, now, generation)
      break
  }
  if (unused.status === "True" && validity._tag === "Active") states.push("unused")

  return {
    status: {
      matched: series.reduce((sum, entry) => sum + entry.matched, 0),
      series,
      ...(Number.isFinite(lastMatched) ? { lastMatchedTime: iso(lastMatched) } : {}),
      conditions: [active, expired, unused],
      ...(generation === undefined ? {} : { observedGeneration: generation })
    },
    states,
    event,
    nextChange
  }
}
