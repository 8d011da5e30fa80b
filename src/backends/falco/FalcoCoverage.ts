import type { Check, Subject } from "../../api/Check.ts"
import type { DropCounts, DropReason } from "./DropLedger.ts"
import { visibleText } from "./SafeText.ts"

/**
 * What a run could see of the span it asked for, per source. A Result must never say
 * "no alerts" about time the operator was not listening, or alerts it lost: every gap
 * is named in a `falco.coverage-incomplete` check, and complete coverage in `falco.coverage`.
 */

/** The receiver's view of [from, to] (epoch ms, by arrival). */
export interface ReceiverCoverage {
  readonly from: number
  readonly to: number
  /**
   * Since when this receiver has taken every alert sent to the operator: its start, or
   * with leader election the moment this replica became the leader (standbys refuse alerts).
   */
  readonly takingAlertsSince: number
  /** Arrivals before this have left the buffer by age. */
  readonly retainedSince: number
  /** Arrival time of the oldest alert held, if any. */
  readonly oldestRetainedAt: number | undefined
  /** Alerts (or refused requests) lost in [from, to]. */
  readonly drops: DropCounts
}

/** The gRPC stream's view: it collects forward from `from` (connected) until `to`. */
export interface GrpcCoverage {
  readonly from: number
  readonly to: number
  /** When collection ended. */
  readonly seenTo: number
  /** Why collection ended before `to`, or stopped taking alerts (deadline, stream ended or failed, per-run cap). */
  readonly cutShort: string | undefined
}

export const coverageCheckID = "falco.coverage"
export const coverageIncompleteCheckID = "falco.coverage-incomplete"

export interface SourceCoverage {
  /** `receiver` or `grpc`. */
  readonly source: string
  readonly requested: { readonly from: number; readonly to: number }
  readonly seen: { readonly from: number; readonly to: number }
  /** Sentences naming each gap; empty when the source saw the whole span. */
  readonly gaps: ReadonlyArray<string>
  /** Facts worth showing even without gaps (receiver start, oldest retained alert). */
  readonly notes: ReadonlyArray<string>
}

const iso = (millis: number): string => new Date(millis).toISOString()

const dropWords: Record<DropReason, string> = {
  capacity: "dropped from the full buffer (alerts or bytes)",
  age: "dropped for age",
  rate_limited: "requests refused over the rate limit (429)",
  too_large: "requests refused as too large (413)",
  overloaded: "requests refused while the receiver was full of requests (503)",
  connection_limit: "connections refused over the connection cap"
}

export const receiverCoverage = (coverage: ReceiverCoverage): SourceCoverage => {
  const gaps: Array<string> = []
  if (coverage.takingAlertsSince > coverage.from) {
    gaps.push(
      `the receiver has taken alerts only since ${iso(coverage.takingAlertsSince)} (operator start, restart or leader change), after the window began at ${iso(coverage.from)}: alerts sent before were not received by this replica`
    )
  }
  if (coverage.retainedSince > coverage.from) {
    gaps.push(`the window reaches past the receiver's retention: alerts that arrived before ${iso(coverage.retainedSince)} have left the buffer`)
  }
  const lost = (Object.entries(coverage.drops) as Array<[DropReason, number]>).filter(([, count]) => count > 0)
  if (lost.length > 0) {
    gaps.push(`in the window: ${lost.map(([reason, count]) => `${count} ${dropWords[reason]}`).join(", ")}`)
  }
  const seenFrom = Math.min(coverage.to, Math.max(coverage.from, coverage.takingAlertsSince, coverage.retainedSince))
  return {
    source: "receiver",
    requested: { from: coverage.from, to: coverage.to },
    seen: { from: seenFrom, to: coverage.to },
    gaps,
    notes: [
      `taking alerts since ${iso(coverage.takingAlertsSince)}`,
      coverage.oldestRetainedAt === undefined ? "buffer empty" : `oldest retained alert arrived ${iso(coverage.oldestRetainedAt)}`
    ]
  }
}

export const grpcCoverage = (coverage: GrpcCoverage): SourceCoverage => ({
  source: "grpc",
  requested: { from: coverage.from, to: coverage.to },
  seen: { from: coverage.from, to: Math.min(coverage.seenTo, coverage.to) },
  gaps: coverage.cutShort === undefined ? [] : [coverage.cutShort],
  notes: []
})

/** True when no source has a gap. */
export const isComplete = (sources: ReadonlyArray<SourceCoverage>): boolean => sources.every((source) => source.gaps.length === 0)

const toSubject = (source: SourceCoverage): Subject => ({
  kind: "FalcoSource",
  name: source.source,
  outcome: source.gaps.length === 0 ? "pass" : "warn",
  // Gaps can quote a Falco server's error text.
  message: visibleText([
    `requested ${iso(source.requested.from)} to ${iso(source.requested.to)}`,
    `seen ${iso(source.seen.from)} to ${iso(source.seen.to)}`,
    ...source.notes,
    ...source.gaps
  ].join("; "))
})

/** `falco.coverage` (pass) when every source saw its whole span, else `falco.coverage-incomplete` (warn) naming why. */
export const coverageCheck = (sources: ReadonlyArray<SourceCoverage>): Check => {
  const subjects = sources.map(toSubject)
  const subjectCounts = {
    pass: subjects.filter((subject) => subject.outcome === "pass").length,
    fail: 0,
    warn: subjects.filter((subject) => subject.outcome === "warn").length,
    skip: 0,
    error: 0
  }
  if (isComplete(sources)) {
    return {
      checkID: coverageCheckID,
      title: "Falco coverage complete",
      detail: `Every source saw its whole window: ${sources.map((source) => `${source.source} ${iso(source.seen.from)} to ${iso(source.seen.to)}`).join("; ")}.`,
      outcome: "pass",
      severity: "info",
      subjects,
      subjectCounts
    }
  }
  return {
    checkID: coverageIncompleteCheckID,
    title: "Falco coverage incomplete: alerts of the window may be missing",
    detail: visibleText(sources.flatMap((source) => source.gaps.map((gap) => `${source.source}: ${gap}`)).join("; ").replace(/\s+/gu, " ")),
    remediation:
      "Alerts the operator did not see cannot be reported. Restarts, a buffer too small for the alert rate (--falco-receiver-buffer-size, --falco-receiver-buffer-bytes), rate limits and windows longer than the receiver's retention all leave gaps; see docs/falco.md.",
    outcome: "warn",
    severity: "low",
    subjects,
    subjectCounts
  }
}
