import type { Check, Subject } from "../api/Check.ts"
import { type Drift, type DriftEntry, driftEntryLimit } from "../api/Drift.ts"
import type { Outcome } from "../api/Outcome.ts"
import { type Severity, severityRank } from "../api/Severity.ts"

/** One finding at the granularity drift compares: a check's subject, or a check without subjects. */
interface Finding {
  readonly checkID: string
  readonly subject: string | undefined
  readonly outcome: Outcome
  readonly severity: Severity
}

const subjectKey = (subject: Subject) =>
  subject.namespace === undefined ? `${subject.kind}/${subject.name}` : `${subject.kind}/${subject.namespace}/${subject.name}`

const findingsOf = (checks: ReadonlyArray<Check>): Map<string, Finding> => {
  const findings = new Map<string, Finding>()
  for (const check of checks) {
    if ((check.subjects?.length ?? 0) === 0) {
      findings.set(check.checkID, { checkID: check.checkID, subject: undefined, outcome: check.outcome, severity: check.severity })
      continue
    }
    for (const subject of check.subjects!) {
      const key = subjectKey(subject)
      findings.set(`${check.checkID}\u0000${key}`, { checkID: check.checkID, subject: key, outcome: subject.outcome, severity: check.severity })
    }
  }
  return findings
}

const entryOf = (finding: Finding, previousSeverity?: Severity): DriftEntry => ({
  checkID: finding.checkID,
  ...(finding.subject === undefined ? {} : { subject: finding.subject }),
  severity: finding.severity,
  ...(previousSeverity === undefined ? {} : { previousSeverity })
})

/** Most severe first, then by check and subject: the entries kept when a list is cut. */
const bySeverity = (a: DriftEntry, b: DriftEntry) =>
  severityRank(b.severity) - severityRank(a.severity) || a.checkID.localeCompare(b.checkID) ||
  (a.subject ?? "").localeCompare(b.subject ?? "")

const bounded = (entries: Array<DriftEntry>) => entries.sort(bySeverity).slice(0, driftEntryLimit)

/**
 * The drift from `previous` checks to `current` ones at (check, subject) granularity
 * (docs/api.md, "Drift"). Only `fail` is a finding: warn, skip and error are neither a finding
 * nor a pass. A failing (check, subject) is `regressed` when that subject was listed as
 * passing before, or when its check passed as a whole before; otherwise `new`.
 */
export const computeDrift = (
  previous: { readonly name: string; readonly completionTime?: string; readonly checks: ReadonlyArray<Check>; readonly truncated?: boolean },
  current: ReadonlyArray<Check>
): Drift => {
  const before = findingsOf(previous.checks)
  // Backends list failing subjects, rarely passing ones: a check that passed as a whole passed for every subject it saw.
  const checkPassedBefore = new Map(previous.checks.map((check) => [check.checkID, check.outcome]))
  const after = findingsOf(current)
  const added: Array<DriftEntry> = []
  const resolved: Array<DriftEntry> = []
  const regressed: Array<DriftEntry> = []
  const improved: Array<DriftEntry> = []
  let unchanged = 0
  for (const [key, now] of after) {
    const then = before.get(key)
    if (now.outcome === "fail") {
      if (then?.outcome === "fail") {
        const change = severityRank(now.severity) - severityRank(then.severity)
        if (change > 0) regressed.push(entryOf(now, then.severity))
        else if (change < 0) improved.push(entryOf(now, then.severity))
        else unchanged++
      } else if (then?.outcome === "pass" || (then === undefined && checkPassedBefore.get(now.checkID) === "pass")) {
        regressed.push(entryOf(now))
      } else added.push(entryOf(now))
    } else if (then?.outcome === "fail") resolved.push(entryOf(then))
    else if (then !== undefined) unchanged++
  }
  for (const [key, then] of before) {
    if (!after.has(key) && then.outcome === "fail") resolved.push(entryOf(then))
  }
  return {
    previous: { name: previous.name, ...(previous.completionTime === undefined ? {} : { completionTime: previous.completionTime }) },
    new: bounded(added),
    resolved: bounded(resolved),
    regressed: bounded(regressed),
    improved: bounded(improved),
    unchanged,
    counts: { new: added.length, resolved: resolved.length, regressed: regressed.length, improved: improved.length, unchanged },
    ...(previous.truncated === true ? { partial: true } : {})
  }
}
