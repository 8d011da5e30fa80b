import type { Check, Subject } from "../../api/Check.ts"
import { countOutcomes, type Outcome, worstOutcome } from "../../api/Outcome.ts"
import { type SeverityTable, severityOf } from "./KubeBenchSeverities.ts"
import { type KubeBenchReport, type KubeBenchStatus, reportChecks } from "./KubeBenchReport.ts"

/** One node's parsed report. */
export interface NodeReport {
  readonly node: string
  readonly report: KubeBenchReport
  /** The benchmark passed to kube-bench, when known (else the report's own `version`). */
  readonly benchmark?: string
}

/**
 * kube-bench status -> outcome. WARN means "review by hand" and INFO "skipped"; a FAIL of a
 * check that is not scored does not count against the benchmark, so it is only a warning.
 */
export const outcomeOf = (status: KubeBenchStatus, scored: boolean): Outcome => {
  switch (status) {
    case "PASS":
      return "pass"
    case "FAIL":
      return scored ? "fail" : "warn"
    case "WARN":
      return "warn"
    case "INFO":
      return "skip"
  }
}

/** `cis.<test_number>`: the check identity of api.md. */
export const checkIdOf = (testNumber: string): string => `cis.${testNumber.trim()}`

/**
 * The identity of every check of one report, in report order. A test number is its own
 * identity unless the report repeats it: then each occurrence keeps its section
 * (`V-242402@2.2`, `V-242402@5.2`, as eks-stig-kubernetes-v1r6 repeats), and an ordinal
 * when the section repeats it too (`1.1@1#2`, as rh-0.7 does), so no result is merged
 * into another and the counts stay kube-bench's.
 */
export const reportCheckKeys = (report: KubeBenchReport): Array<string> => {
  const entries = [...reportChecks(report)].map(({ check, group }) => ({
    number: check.test_number.trim(),
    section: group.section.trim()
  }))
  const count = (keys: ReadonlyArray<string>) => {
    const counts = new Map<string, number>()
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1)
    return counts
  }
  const byNumber = count(entries.map((entry) => entry.number))
  const withSection = entries.map((entry) => (byNumber.get(entry.number)! > 1 ? `${entry.number}@${entry.section}` : entry.number))
  const bySection = count(withSection)
  const seen = new Map<string, number>()
  return withSection.map((key) => {
    if (bySection.get(key)! === 1) return key
    const ordinal = (seen.get(key) ?? 0) + 1
    seen.set(key, ordinal)
    return `${key}#${ordinal}`
  })
}

/** Expected and actual values can be whole `ps` lines or config files: keep them readable. */
export const maxValueLength = 1024

export const trimValue = (value: string | undefined, max = maxValueLength): string | undefined => {
  const trimmed = value?.trim()
  if (trimmed === undefined || trimmed.length === 0) return undefined
  return trimmed.length > max ? `${trimmed.slice(0, max)}... (${trimmed.length - max} more characters)` : trimmed
}

const oneLine = (text: string): string => text.replace(/\s+/gu, " ").trim()

/** Compares dotted ids numerically ("1.2.9" before "1.2.10"). */
export const compareTestNumbers = (left: string, right: string): number => {
  const a = left.split(".")
  const b = right.split(".")
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const x = a[index]
    const y = b[index]
    if (x === undefined) return -1
    if (y === undefined) return 1
    const byNumber = Number(x) - Number(y)
    if (!Number.isNaN(byNumber) && byNumber !== 0) return byNumber
    if (Number.isNaN(byNumber) && x !== y) return x < y ? -1 : 1
  }
  return 0
}

interface Draft {
  /** The check's identity (the test number, with section or ordinal when repeated). */
  readonly key: string
  readonly testNumber: string
  readonly title: string
  readonly detail: string | undefined
  readonly remediation: string | undefined
  readonly scored: boolean
  readonly benchmark: string | undefined
  /** The group's description (the STIG's DISA category). */
  readonly section: string | undefined
  /** node -> subject; a node listing the same id twice keeps the worse result. */
  readonly subjects: Map<string, Subject>
}

/**
 * The checks the operator writes for a kube-bench run: one per CIS id, with one subject per
 * node that reported it; the check's outcome is the worst across those nodes.
 */
export const checksFromReports = (reports: ReadonlyArray<NodeReport>, severities: SeverityTable): Array<Check> => {
  const drafts = new Map<string, Draft>()
  for (const { benchmark, node, report } of reports) {
    const keys = reportCheckKeys(report)
    let index = 0
    for (const { check, controls, group } of reportChecks(report)) {
      // The benchmark the node was scanned with (kube-bench writes cis-1.24 for cis-1.24-microk8s).
      const key = keys[index++]!
      const scored = check.scored ?? false
      const subject: Subject = {
        kind: "Node",
        name: node,
        outcome: outcomeOf(check.status, scored),
        ...optional("message", trimValue(check.reason)),
        ...optional("expected", trimValue(check.expected_result)),
        ...optional("actual", trimValue(check.actual_value))
      }
      const testNumber = check.test_number.trim()
      let draft = drafts.get(key)
      if (draft === undefined) {
        const where = [group.section, group.desc].filter((part) => part !== undefined && part !== "").join(" ")
        draft = {
          key,
          testNumber,
          title: oneLine(check.test_desc),
          detail: where === "" ? undefined : oneLine(controls.text ? `${where} (${controls.text})` : where),
          remediation: trimValue(check.remediation, 8 * maxValueLength),
          scored,
          benchmark: benchmark ?? controls.version,
          section: group.desc,
          subjects: new Map()
        }
        drafts.set(key, draft)
      }
      const previous = draft.subjects.get(node)
      if (previous === undefined || worstOutcome([previous.outcome, subject.outcome]) !== previous.outcome) {
        draft.subjects.set(node, subject)
      }
    }
  }
  return [...drafts.values()]
    .sort((left, right) => compareTestNumbers(left.key, right.key))
    .map((draft): Check => {
      const subjects = [...draft.subjects.values()]
      const outcomes = subjects.map((subject) => subject.outcome)
      return {
        checkID: checkIdOf(draft.key),
        title: draft.title,
        ...optional("detail", draft.detail),
        ...optional("remediation", draft.remediation),
        outcome: worstOutcome(outcomes),
        severity: severityOf(severities, { benchmark: draft.benchmark, title: draft.title, section: draft.section }),
        scored: draft.scored,
        subjects,
        subjectCounts: countOutcomes(outcomes)
      }
    })
}

/** The benchmark ids (`cis-1.10`) the reports were produced with. */
export const benchmarksOf = (reports: ReadonlyArray<NodeReport>): Array<string> => {
  const names = new Set<string>()
  for (const { report } of reports) {
    for (const controls of report.controls) if (controls.version) names.add(controls.version)
  }
  return [...names].sort()
}

/** `{key: value}` when value is defined, `{}` otherwise (optional keys stay absent, not undefined). */
const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }
