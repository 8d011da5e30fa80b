import { expect } from "@effect/vitest"
import type { Check, Subject } from "../../src/api/Check.ts"
import { type ReportResult, summaryOfResults } from "../../src/reports/OpenReports.ts"

const subjectKey = (kind: string, name: string, namespace: string | undefined) => `${kind}/${namespace ?? ""}/${name}`

/** A report as any client reads it (the operator's KubeObject, the cluster tests' JSON). */
export interface AnyReport {
  readonly metadata?: { readonly namespace?: string }
  readonly summary?: unknown
  readonly results?: unknown
}

export const resultsOf = (report: AnyReport) => (report.results ?? []) as ReadonlyArray<ReportResult>

/**
 * Walks a Result's checks and the reports' results both ways: every result belongs to one
 * check, every subject of a check is in exactly one result of the report of its namespace
 * (cluster-scoped subjects and checks without subjects in the cluster report), with the
 * subject's outcome; each report's summary counts its results.
 */
export const expectOneToOne = (checks: ReadonlyArray<Check>, reports: ReadonlyArray<AnyReport>) => {
  const ids = checks.map((check) => check.checkID)
  expect(new Set(ids).size).toBe(ids.length)
  const byCheck = new Map<string, Array<{ readonly namespace: string | undefined; readonly result: ReportResult }>>()
  for (const report of reports) {
    expect(report.summary).toEqual(summaryOfResults(resultsOf(report)))
    for (const result of resultsOf(report)) {
      const check = checks.find((candidate) => candidate.checkID === result.policy)
      expect(check, `result ${result.policy} has no check`).toBeDefined()
      expect(result.properties.checkID).toBe(check!.checkID)
      expect(result.rule).toBe(check!.title)
      expect(result.severity).toBe(check!.severity)
      const list = byCheck.get(result.policy) ?? []
      list.push({ namespace: report.metadata?.namespace, result })
      byCheck.set(result.policy, list)
    }
  }
  for (const check of checks) {
    const mine = byCheck.get(check.checkID) ?? []
    const subjects: ReadonlyArray<Subject> = check.subjects ?? []
    if (subjects.length === 0) {
      expect(mine, check.checkID).toHaveLength(1)
      expect(mine[0]!.namespace).toBeUndefined()
      expect(mine[0]!.result.result).toBe(check.outcome)
      continue
    }
    const outcomes = new Map(subjects.map((subject) => [subjectKey(subject.kind, subject.name, subject.namespace), subject.outcome]))
    const seen: Array<string> = []
    for (const { namespace, result } of mine) {
      for (const resource of result.resources ?? []) {
        const key = subjectKey(resource.kind, resource.name, resource.namespace)
        // In the report of its namespace, or (a namespace that does not exist) the cluster report.
        if (namespace !== undefined) expect(resource.namespace).toBe(namespace)
        expect(outcomes.get(key), key).toBe(result.result)
        seen.push(key)
      }
    }
    expect(seen.sort()).toEqual([...outcomes.keys()].sort())
  }
}
