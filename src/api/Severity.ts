import { Schema } from "effect"

/** The one severity order of the project: `info < low < medium < high < critical`. */
export const severities = ["info", "low", "medium", "high", "critical"] as const

export type Severity = (typeof severities)[number]

export const Severity = Schema.Literals(severities)

export const severityRank = (severity: Severity): number => severities.indexOf(severity)

export const isAtLeast = (severity: Severity, threshold: Severity): boolean =>
  severityRank(severity) >= severityRank(threshold)

/** The highest of the given severities, or undefined for none. */
export const highestSeverity = (list: Iterable<Severity>): Severity | undefined => {
  let worst: Severity | undefined
  for (const severity of list) {
    if (worst === undefined || severityRank(severity) > severityRank(worst)) worst = severity
  }
  return worst
}
