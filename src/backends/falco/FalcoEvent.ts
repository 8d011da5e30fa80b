import { createHash } from "node:crypto"
import { falcoPriorities, type FalcoPriority } from "../../api/ComplianceScanRun.ts"
import type { Severity } from "../../api/Severity.ts"

/**
 * One Falco alert, the same whichever way it came (gRPC outputs, `http_output`,
 * Falcosidekick): everything downstream (filters, checks, de-duplication) reads only this.
 */
export interface FalcoEvent {
  /** RFC 3339 in UTC with nanoseconds, as Falco writes it; part of the event's identity. */
  readonly time: string
  readonly timeMillis: number
  readonly priority: FalcoPriority
  readonly rule: string
  readonly output: string
  /** Field values as text (non-strings as JSON text, as Falco's gRPC API sends them). */
  readonly outputFields: Readonly<Record<string, string>>
  readonly hostname: string
  readonly tags: ReadonlyArray<string>
  readonly source: string
}

/** Falcosidekick's own mapping of Falco priorities to severities. */
const severityByPriority: Record<FalcoPriority, Severity> = {
  emergency: "critical",
  alert: "critical",
  critical: "critical",
  error: "high",
  warning: "medium",
  notice: "low",
  informational: "info",
  debug: "info"
}

export const severityOfPriority = (priority: FalcoPriority): Severity => severityByPriority[priority]

/** Falco's order: `emergency` (0) is the most urgent, `debug` (7) the least. */
export const priorityRank = (priority: FalcoPriority): number => falcoPriorities.indexOf(priority)

/** At least as urgent as `minimum` (`error` passes a `warning` minimum). */
export const isAtLeastPriority = (priority: FalcoPriority, minimum: FalcoPriority): boolean =>
  priorityRank(priority) <= priorityRank(minimum)

/**
 * A priority name in any spelling Falco uses (`EMERGENCY`, `Emergency`, `emergency`; the
 * short forms `info`/`warn` some tools write), or undefined.
 */
export const parsePriority = (name: string): FalcoPriority | undefined => {
  const lower = name.trim().toLowerCase()
  if (lower === "info") return "informational"
  if (lower === "warn") return "warning"
  return (falcoPriorities as ReadonlyArray<string>).includes(lower) ? (lower as FalcoPriority) : undefined
}

/** Epoch seconds + nanoseconds to Falco's RFC 3339 text with nine fractional digits. */
export const formatEventTime = (seconds: bigint, nanos: number): string => {
  const iso = new Date(Number(seconds) * 1000).toISOString()
  return `${iso.slice(0, 19)}.${String(nanos).padStart(9, "0")}Z`
}

/**
 * Parses an RFC 3339 time keeping nanoseconds (Date keeps milliseconds only, and two
 * alerts in the same millisecond must stay two alerts). Undefined when it is not one.
 */
export const parseEventTime = (text: string): { readonly time: string; readonly timeMillis: number } | undefined => {
  const match = /^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9})\d*)?([Zz]|[+-]\d{2}:\d{2})$/u.exec(text.trim())
  if (match === null) return undefined
  const wholeSeconds = Date.parse(`${match[1]!.replace(/[t ]/u, "T")}${match[3]!.toUpperCase()}`)
  if (Number.isNaN(wholeSeconds)) return undefined
  const nanos = Number((match[2] ?? "").padEnd(9, "0"))
  const seconds = BigInt(Math.floor(wholeSeconds / 1000))
  return { time: formatEventTime(seconds, nanos), timeMillis: wholeSeconds + Math.floor(nanos / 1_000_000) }
}

/**
 * Identity of an alert for de-duplication: the same alert delivered by gRPC and by the
 * receiver (or twice by Falcosidekick) counts once.
 */
export const eventKey = (event: FalcoEvent): string =>
  JSON.stringify([event.time, event.rule, event.priority, event.hostname, event.source, event.output])

/**
 * A predicate that is true the first time it sees an alert and false for repeats. Keeps a
 * digest per alert, not the alert, so remembering a whole run's alerts stays small.
 */
export const makeDeduplicator = (): ((event: FalcoEvent) => boolean) => {
  const seen = new Set<string>()
  return (event) => {
    const digest = createHash("sha1").update(eventKey(event)).digest("base64")
    if (seen.has(digest)) return false
    seen.add(digest)
    return true
  }
}

/** Events in first-seen order without repeats. */
export const dedupeEvents = (events: Iterable<FalcoEvent>): ReadonlyArray<FalcoEvent> => {
  const firstSeen = makeDeduplicator()
  const unique: Array<FalcoEvent> = []
  for (const event of events) if (firstSeen(event)) unique.push(event)
  return unique
}

/** Output field values in Falco's gRPC form: strings as they are, anything else as JSON text. */
export const fieldText = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value) ?? "null")
