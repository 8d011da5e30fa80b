import type { AppliedException, ExceptionRecord } from "../api/AppliedException.ts"
import type { Check, Subject } from "../api/Check.ts"
import { type ComplianceException, modeOf } from "../api/ComplianceException.ts"
import { emptyCounts, type Outcome, outcomes, worstOutcome } from "../api/Outcome.ts"
import { type MatchContext, matchesCheck, matchesSubject, matchesWholeCheck, validityOf } from "./ExceptionMatcher.ts"

/**
 * Applies ComplianceExceptions to a run's checks. Results carry exceptions, never hide them:
 * `waive` turns a finding's outcome into `skip`, `alertOnly` leaves it `fail`; either way
 * the finding stays in the Result with the exception (and its original outcome) next to it.
 */

export interface ExceptionsApplied {
  readonly checks: ReadonlyArray<Check>
  /** Every exception that matched at least one finding, with the version read. */
  readonly records: ReadonlyArray<ExceptionRecord>
}

/** Only findings are excepted: passes need no exception and errors say the scan could not tell. */
const isFinding = (outcome: Outcome): outcome is "fail" | "warn" => outcome === "fail" || outcome === "warn"

const keyOf = (exception: ComplianceException) => `${exception.metadata.namespace}/${exception.metadata.name}`

/** Stronger first (waive over alertOnly), then by namespace and name: the same choice every run. */
const precedence = (a: ComplianceException, b: ComplianceException) =>
  (modeOf(a.spec) === "waive" ? 0 : 1) - (modeOf(b.spec) === "waive" ? 0 : 1) || keyOf(a).localeCompare(keyOf(b))

const appliedOf = (exception: ComplianceException, outcome: "fail" | "warn"): AppliedException => ({
  name: exception.metadata.name,
  namespace: exception.metadata.namespace!,
  mode: modeOf(exception.spec),
  expiresAt: exception.spec.expiresAt,
  outcome
})

const exceptedOutcome = (exception: ComplianceException, outcome: "fail" | "warn"): Outcome =>
  modeOf(exception.spec) === "waive" ? "skip" : outcome

/** The check's outcome from its subjects' counts (complete even when the list is a sample). */
const outcomeFromCounts = (counts: Readonly<Record<Outcome, number>>, fallback: Outcome): Outcome =>
  worstOutcome(outcomes.filter((outcome) => counts[outcome] > 0), fallback)

export const applyExceptions = (
  checks: ReadonlyArray<Check>,
  exceptions: ReadonlyArray<ComplianceException>,
  context: MatchContext
): ExceptionsApplied => {
  const usable = exceptions
    .filter((exception) => validityOf(exception, context.now, context.maxDurationMillis)._tag === "Active")
    .sort(precedence)
  if (usable.length === 0) return { checks, records: [] }
  const matched = new Map<ComplianceException, number>()
  const count = (exception: ComplianceException) => matched.set(exception, (matched.get(exception) ?? 0) + 1)

  const applied = checks.map((check): Check => {
    const candidates = usable.filter((exception) => matchesCheck(exception, check, context.backend))
    if (candidates.length === 0) return check
    if (check.subjects === undefined || check.subjects.length === 0) {
      if (check.subjectCounts !== undefined && check.subjectCounts.fail + check.subjectCounts.warn > 0) return check
      const outcome = check.outcome
      const exception = isFinding(outcome) ? candidates.find((candidate) => matchesWholeCheck(candidate, context)) : undefined
      if (exception === undefined || !isFinding(outcome)) return check
      count(exception)
      return { ...check, outcome: exceptedOutcome(exception, outcome), exception: appliedOf(exception, outcome) }
    }
    let changed = false
    const counts = { ...emptyCounts(), ...check.subjectCounts }
    const subjects = check.subjects.map((subject): Subject => {
      const outcome = subject.outcome
      if (!isFinding(outcome) || subject.exception !== undefined) return subject
      const exception = candidates.find((candidate) => matchesSubject(candidate, subject, context))
      if (exception === undefined) return subject
      count(exception)
      changed = true
      const excepted = exceptedOutcome(exception, outcome)
      counts[outcome]--
      counts[excepted]++
      return { ...subject, outcome: excepted, exception: appliedOf(exception, outcome) }
    })
    if (!changed) return check
    const outcome = check.subjectCounts === undefined
      ? worstOutcome(subjects.map((subject) => subject.outcome), check.outcome)
      : outcomeFromCounts(counts, check.outcome)
    const { excepted: _, ...subjectCounts } = counts as typeof counts & { excepted?: number }
    return { ...check, outcome, subjects, ...(check.subjectCounts === undefined ? {} : { subjectCounts }) }
  })

  const records = usable
    .filter((exception) => matched.has(exception))
    .map((exception): ExceptionRecord => ({
      name: exception.metadata.name,
      namespace: exception.metadata.namespace!,
      resourceVersion: exception.metadata.resourceVersion ?? "",
      ...(exception.metadata.generation === undefined ? {} : { generation: exception.metadata.generation }),
      mode: modeOf(exception.spec),
      expiresAt: exception.spec.expiresAt,
      matched: matched.get(exception)!
    }))
  return { checks: applied, records }
}

/** A check that carries an exception, on itself or on any subject. */
export const isExcepted = (check: Check): boolean =>
  check.exception !== undefined || (check.subjects ?? []).some((subject) => subject.exception !== undefined)

/**
 * Whether a failed check counts toward worstSeverity, the SecurityEvent's class and the
 * findings metric: not when every failure in it is under an `alertOnly` exception.
 */
export const countsTowardAlerts = (check: Check): boolean => {
  if (check.outcome !== "fail") return false
  if (check.exception !== undefined) return check.exception.mode !== "alertOnly"
  const subjects = check.subjects ?? []
  const alertOnly = subjects.filter((subject) => subject.outcome === "fail" && subject.exception?.mode === "alertOnly").length
  if (alertOnly === 0) return true
  const failing = check.subjectCounts?.fail ?? subjects.filter((subject) => subject.outcome === "fail").length
  return failing > alertOnly
}
