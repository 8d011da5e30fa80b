import { createHash } from "node:crypto"
import { fieldsUsedByChecks } from "./FalcoChecks.ts"
import type { FalcoEvent } from "./FalcoEvent.ts"

/**
 * The most one stored alert may hold, whichever way it came (receiver buffer, gRPC tallies):
 * a sender with a valid certificate must not be able to grow the operator's memory with
 * huge alerts. Text over its limit is cut and the cut marked, with the original length
 * and a digest so two different long outputs stay two alerts.
 */
export const alertBudget = {
  /** `output`, in UTF-16 code units (at most 2 bytes each in V8). */
  outputChars: 4_096,
  /** Each kept output field value (namespace, pod, container). */
  fieldChars: 256,
  /** Rule name, hostname, source. */
  nameChars: 256,
  tags: 32,
  tagChars: 128
} as const

/** Heap a stored alert costs besides its text (object, arrays, buffer slot); measured with bench/falco.ts. */
const fixedOverheadBytes = 640

const marker = (text: string): string =>
  ` … [cut: ${text.length} characters, sha1 ${createHash("sha1").update(text).digest("base64").slice(0, 12)}]`

/**
 * `text` cut to `limit` code units plus the marker. The cut is copied: V8 keeps a slice
 * of a long string as a view on it, and a 4 KiB slice would keep a 1 MiB output alive.
 */
export const cutText = (text: string, limit: number): string => {
  if (text.length <= limit) return text
  let end = limit
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end-- // never split a surrogate pair
  return Buffer.from(text.slice(0, end) + marker(text), "utf8").toString("utf8")
}

/**
 * The alert within its budget: the fields checks read, each bounded, the text bounded.
 * Alerts already within it come back with the same strings (no copy).
 */
export const boundAlert = (event: FalcoEvent): FalcoEvent => {
  const outputFields: Record<string, string> = {}
  for (const name of fieldsUsedByChecks) {
    const value = event.outputFields[name]
    if (value !== undefined) outputFields[name] = cutText(value, alertBudget.fieldChars)
  }
  const tags = event.tags.length <= alertBudget.tags && event.tags.every((tag) => tag.length <= alertBudget.tagChars)
    ? event.tags
    : event.tags.slice(0, alertBudget.tags).map((tag) => cutText(tag, alertBudget.tagChars))
  return {
    time: event.time,
    timeMillis: event.timeMillis,
    priority: event.priority,
    rule: cutText(event.rule, alertBudget.nameChars),
    output: cutText(event.output, alertBudget.outputChars),
    outputFields,
    hostname: cutText(event.hostname, alertBudget.nameChars),
    tags,
    source: cutText(event.source, alertBudget.nameChars)
  }
}

/**
 * What a stored alert costs, conservatively: 2 bytes per character of each string (shared
 * strings counted every time) plus a fixed overhead. The buffer's byte bound sums these.
 */
export const alertBytes = (event: FalcoEvent): number => {
  let chars = event.time.length + event.rule.length + event.output.length + event.hostname.length + event.source.length
  for (const [name, value] of Object.entries(event.outputFields)) chars += name.length + value.length
  for (const tag of event.tags) chars += tag.length
  return fixedOverheadBytes + 2 * chars
}

/** The most `alertBytes` can be for a bounded alert (a marker is at most 60 characters). */
export const maxAlertBytes = fixedOverheadBytes + 2 * (
  40 + alertBudget.outputChars + 60 + 3 * (alertBudget.nameChars + 60) +
  fieldsUsedByChecks.length * (20 + alertBudget.fieldChars + 60) + alertBudget.tags * (alertBudget.tagChars + 60)
)
