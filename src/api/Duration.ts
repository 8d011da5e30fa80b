import { Schema } from "effect"

/**
 * Kubernetes-style duration strings (`30s`, `5m`, `1h`, `1h30m`, `500ms`), the subset of
 * Go's time.ParseDuration that manifests use. The same pattern is the CRD's format check.
 */
export const durationPattern = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$/u

const unitMillis: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

export const DurationString = Schema.String.check(
  Schema.isPattern(durationPattern, { expected: "a duration such as 30s, 5m or 1h" })
)

/** Milliseconds of a duration string; undefined when it is not one. */
export const parseDurationMillis = (text: string): number | undefined => {
  if (!durationPattern.test(text)) return undefined
  let total = 0
  for (const match of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/gu)) {
    total += Number(match[1]) * unitMillis[match[2]!]!
  }
  return total
}
