import type { Check, Subject } from "../../api/Check.ts"
import type { FalcoPriority } from "../../api/ComplianceScanRun.ts"
import { highestSeverity, type Severity, severityRank } from "../../api/Severity.ts"
import { type FalcoEvent, isAtLeastPriority, severityOfPriority } from "./FalcoEvent.ts"
import { frameworksFromTags } from "./FalcoTags.ts"
import { escapedText, hasUnsafeText, visibleText } from "./SafeText.ts"

/** Which events a run counts (`spec.falco` without the window). */
export interface FalcoFilter {
  readonly minPriority?: FalcoPriority | undefined
  /** Rule names (case-insensitive); empty or absent = every rule. */
  readonly rules?: ReadonlyArray<string> | undefined
  /** An event counts when it carries at least one of these tags; empty or absent = any. */
  readonly tags?: ReadonlyArray<string> | undefined
}

export const noEventsCheckID = "falco.no-events"
export const endpointUnreachableCheckID = "falco-endpoint-unreachable"

/** Subjects listed per check; the counts keep the full numbers. */
export const maxSubjectsPerCheck = 100

const maxTextLength = 500

/** `detail` and messages are one line of bounded length, alert text made visible (SafeText). */
const oneLine = (text: string): string => {
  const line = visibleText(text.replace(/\s+/gu, " ").trim())
  return line.length <= maxTextLength ? line : `${line.slice(0, maxTextLength - 1)}…`
}

/** `falco.<rule-slug>`: lower case, runs of other characters collapsed to `-`. */
export const ruleSlug = (rule: string): string =>
  rule.toLowerCase().replace(/[^a-z0-9]+/gu, "-").replace(/^-+|-+$/gu, "") || "unnamed-rule"

export const checkIDOfRule = (rule: string): string => `falco.${ruleSlug(rule)}`

export const matchesFilter = (filter: FalcoFilter) => {
  const rules = new Set((filter.rules ?? []).map((rule) => rule.trim().toLowerCase()))
  const tags = new Set(filter.tags ?? [])
  return (event: FalcoEvent): boolean =>
    (filter.minPriority === undefined || isAtLeastPriority(event.priority, filter.minPriority)) &&
    (rules.size === 0 || rules.has(event.rule.trim().toLowerCase())) &&
    (tags.size === 0 || event.tags.some((tag) => tags.has(tag)))
}

/** The output fields checks read: stores of alerts may keep only these. */
export const fieldsUsedByChecks = ["k8s.ns.name", "k8s.pod.name", "container.name", "container.id"] as const

/** Values Falco writes for a field it could not fill. */
const absent = new Set(["", "<NA>", "null", "N/A"])
const field = (event: FalcoEvent, name: string): string | undefined => {
  const value = event.outputFields[name]
  return value === undefined || absent.has(value) ? undefined : value
}

interface SubjectTally {
  readonly kind: "Pod" | "Host"
  readonly name: string
  readonly namespace: string | undefined
  readonly containers: Set<string>
  count: number
}

/** A Kubernetes pod when Falco saw one (k8s.ns.name, k8s.pod.name), else the host. */
const subjectOf = (event: FalcoEvent): Omit<SubjectTally, "containers" | "count"> => {
  const namespace = field(event, "k8s.ns.name")
  const pod = field(event, "k8s.pod.name")
  if (namespace !== undefined && pod !== undefined) return { kind: "Pod", name: pod, namespace }
  return { kind: "Host", name: event.hostname === "" ? "unknown-host" : event.hostname, namespace: undefined }
}

interface RuleTally {
  readonly checkID: string
  readonly title: string
  events: number
  /** The first event of the worst severity: its output is the check's sample. */
  worst: FalcoEvent
  readonly severities: Set<Severity>
  readonly tags: Set<string>
  readonly subjects: Map<string, SubjectTally>
}

const toSubject = (tally: SubjectTally): Subject => ({
  kind: tally.kind,
  name: visibleText(tally.name),
  ...(tally.namespace === undefined ? {} : { namespace: visibleText(tally.namespace) }),
  // Subjects are told apart by their raw values; the escaped raw keeps them apart in the Result too.
  ...(hasUnsafeText(tally.name) ? { rawName: escapedText(tally.name) } : {}),
  ...(tally.namespace !== undefined && hasUnsafeText(tally.namespace) ? { rawNamespace: escapedText(tally.namespace) } : {}),
  outcome: "fail",
  count: tally.count,
  ...(tally.containers.size === 0
    ? {}
    : { message: oneLine(`${tally.count} event(s) in container(s) ${[...tally.containers].sort().join(", ")}`) })
})

const toCheck = (tally: RuleTally): Check => {
  const subjects = [...tally.subjects.values()].sort((a, b) =>
    b.count - a.count || (a.namespace ?? "").localeCompare(b.namespace ?? "") || a.name.localeCompare(b.name)
  )
  const frameworks = frameworksFromTags(tally.tags).map((reference) => ({ ...reference, controlID: visibleText(reference.controlID) }))
  return {
    checkID: tally.checkID,
    title: visibleText(tally.title),
    detail: oneLine(tally.worst.output === "" ? `${tally.events} event(s) of rule ${tally.title}` : tally.worst.output),
    outcome: "fail",
    severity: highestSeverity(tally.severities) ?? "info",
    subjects: subjects.slice(0, maxSubjectsPerCheck).map(toSubject),
    subjectCounts: { pass: 0, fail: subjects.length, warn: 0, skip: 0, error: 0 },
    ...(frameworks.length === 0 ? {} : { frameworks })
  }
}

export interface CheckBuilder {
  /** Counts one alert (already filtered and de-duplicated). */
  readonly add: (event: FalcoEvent) => void
  /** Alerts counted so far. */
  readonly size: () => number
  readonly checks: () => ReadonlyArray<Check>
}

/**
 * One `fail` check per rule (rules whose names slug the same share one check): severity of
 * its worst event, a subject per pod or host with its event count, frameworks from its
 * tags, and the worst event's output as detail. Most severe checks first. Alerts are
 * tallied as they arrive, so a run never holds them all in memory.
 */
export const makeCheckBuilder = (): CheckBuilder => {
  const byCheck = new Map<string, RuleTally>()
  let size = 0
  const add = (event: FalcoEvent) => {
    size++
    const checkID = checkIDOfRule(event.rule)
    let tally = byCheck.get(checkID)
    if (tally === undefined) {
      tally = { checkID, title: event.rule, events: 0, worst: event, severities: new Set(), tags: new Set(), subjects: new Map() }
      byCheck.set(checkID, tally)
    }
    tally.events++
    const severity = severityOfPriority(event.priority)
    tally.severities.add(severity)
    if (severityRank(severity) > severityRank(severityOfPriority(tally.worst.priority))) tally.worst = event
    for (const tag of event.tags) tally.tags.add(tag)
    const subject = subjectOf(event)
    const key = `${subject.kind}/${subject.namespace ?? ""}/${subject.name}`
    let subjectTally = tally.subjects.get(key)
    if (subjectTally === undefined) {
      subjectTally = { ...subject, containers: new Set(), count: 0 }
      tally.subjects.set(key, subjectTally)
    }
    subjectTally.count++
    // Falco names host processes' "container" `host`: not a container worth listing.
    const container = field(event, "container.name")
    if (container !== undefined && field(event, "container.id") !== "host") subjectTally.containers.add(container)
  }
  const checks = () =>
    [...byCheck.values()].map(toCheck)
      // Worst first, then by ID for a stable Result.
      .sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.checkID.localeCompare(b.checkID))
  return { add, size: () => size, checks }
}

export const checksFromEvents = (events: Iterable<FalcoEvent>): ReadonlyArray<Check> => {
  const builder = makeCheckBuilder()
  for (const event of events) builder.add(event)
  return builder.checks()
}

/**
 * No alert matched. `pass` only when every source saw its whole window; otherwise `skip`:
 * absence of alerts the operator could not see proves nothing (see falco.coverage-incomplete).
 */
export const noEventsCheck = (detail: string, coverageComplete: boolean): Check => ({
  checkID: noEventsCheckID,
  title: "No matching Falco events",
  detail: oneLine(coverageComplete ? detail : `${detail} Coverage of the window is incomplete (falco.coverage-incomplete), so this proves nothing for the part not seen.`),
  outcome: coverageComplete ? "pass" : "skip",
  severity: "info"
})

export const endpointUnreachableCheck = (detail: string): Check => ({
  checkID: endpointUnreachableCheckID,
  title: "Falco endpoint unreachable",
  detail: oneLine(detail),
  remediation:
    "Set --falco-host (Falco <= 0.43 gRPC outputs with mTLS) or --falco-receiver-bind-address (Falco 0.44+ http_output or Falcosidekick), and check that Falco is running and reachable from the operator.",
  outcome: "skip",
  severity: "info"
})
