import { createHash } from "node:crypto"
import type { AppliedException } from "../api/AppliedException.ts"
import type { Check, Subject } from "../api/Check.ts"
import type { ComplianceScanResult } from "../api/ComplianceScanResult.ts"
import { checkedAgainst, type ComplianceScanRun, scannerNameOf } from "../api/ComplianceScanRun.ts"
import { apiVersion } from "../api/ObjectMeta.ts"
import { countOutcomes, type Outcome, type OutcomeCounts } from "../api/Outcome.ts"
import { BaselineLabel, ScheduleLabel, seriesOf } from "../api/SeriesLabels.ts"
import type { Severity } from "../api/Severity.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import type { ReportApi } from "./ReportApis.ts"

/**
 * A ComplianceScanResult as OpenReports (or wgpolicyk8s PolicyReports): pure, so the
 * reports of a Result are the same whenever they are built (first pass or a resumed one).
 *
 * Scope: one report per namespace (no `scope`, each result names its objects in
 * `resources`) and one cluster report for nodes, hosts, cluster-scoped objects and checks
 * about no object. docs/api.md ("OpenReports") says why.
 *
 * Results: one per check, subject scope (namespace or cluster) and subject outcome, so the
 * objects of one result share its `result`; a check without subjects is one result in the
 * cluster report.
 */

/** The report vocabulary of severities (OpenReports and v1alpha2 share it). */
export type ReportSeverity = "critical" | "high" | "medium" | "low" | "info"
export const reportSeverityOf: Record<Severity, ReportSeverity> = {
  critical: "critical",
  high: "high",
  medium: "medium",
  low: "low",
  info: "info"
}

/** Results of a report: the same words as this project's outcomes. */
export const reportResultOf: Record<Outcome, Outcome> = { pass: "pass", fail: "fail", warn: "warn", error: "error", skip: "skip" }

export interface ObjectReference {
  readonly apiVersion?: string
  readonly kind: string
  readonly name: string
  readonly namespace?: string
}

export interface ReportResult {
  readonly policy: string
  readonly rule: string
  readonly result: Outcome
  readonly severity: ReportSeverity
  readonly category: string
  readonly source: string
  readonly timestamp: { readonly seconds: number; readonly nanos: number }
  readonly message: string
  readonly properties: Readonly<Record<string, string>>
  readonly scored?: boolean
  readonly resources?: ReadonlyArray<ObjectReference>
}

export interface ReportInput {
  readonly run: ComplianceScanRun
  /** The Result as stored (its uid owns the reports in the run's namespace). */
  readonly result: ComplianceScanResult
  /** When the scan finished (ISO 8601): every result's timestamp. */
  readonly finishedAt: string
  readonly budget: number
  /**
   * Namespaces that exist: findings about objects of any other (a Pod Falco saw in a
   * namespace deleted since) go to the cluster report, where no namespace is needed.
   * Undefined: every namespace exists.
   */
  readonly namespaces?: ReadonlySet<string>
}

export const labels = {
  managedBy: "app.kubernetes.io/managed-by",
  runUID: "security.ugallu.io/run-uid",
  run: "security.ugallu.io/run",
  runNamespace: "security.ugallu.io/run-namespace",
  /** Hash of the run (or of its series): every report that one write replaces carries it. */
  reportKey: "security.ugallu.io/report-key",
  part: "security.ugallu.io/report-part"
} as const

export const annotations = {
  run: "security.ugallu.io/run",
  /** When the writing run was created: an older run of a series never replaces a newer one's reports. */
  runCreated: "security.ugallu.io/run-created",
  result: "security.ugallu.io/result",
  parts: "security.ugallu.io/report-parts"
} as const

export const managedBy = "compliance-scan"

/** apiVersion of subject kinds that are Kubernetes kinds (Falco hosts and sources are not). */
const apiVersionOfKind: Readonly<Record<string, string>> = { Node: "v1", Pod: "v1", Namespace: "v1" }

const sha = (text: string) => createHash("sha256").update(text).digest("hex")

/** What one write of reports replaces: the run's reports, or the latest of its series. */
export const reportKeyOf = (run: ComplianceScanRun): string => {
  const series = seriesOf(run.metadata.labels)
  const namespace = run.metadata.namespace ?? ""
  return sha(series === undefined ? `run\0${namespace}\0${run.metadata.name}` : `series\0${namespace}\0${series}`).slice(0, 16)
}

/** Names: readable, a hash of the key keeps them apart, `-<n>` for parts after the first. */
export const reportName = (run: ComplianceScanRun, part: number): string => {
  const readable = `${run.metadata.namespace ?? ""}-${seriesOf(run.metadata.labels) ?? run.metadata.name}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/gu, "-")
    .replace(/^-+|-+$/gu, "")
    .slice(0, 180)
  return `compliance-scan-${readable}-${reportKeyOf(run).slice(0, 8)}${part > 1 ? `-${part}` : ""}`
}

const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/u
const isLabelValue = (value: string) => value.length <= 63 && labelValue.test(value)

const timestampOf = (iso: string) => {
  const millis = Date.parse(iso)
  const seconds = Math.floor(millis / 1000)
  return { seconds, nanos: (millis - seconds * 1000) * 1_000_000 }
}

/** Everything a result's properties are built from. */
export interface ResultContext {
  readonly run: ComplianceScanRun
  readonly result: ComplianceScanResult
  readonly check: Check
  /** The subjects this result covers (empty for a check without subjects). */
  readonly subjects: ReadonlyArray<Subject>
  /** The ComplianceException these subjects (or the subject-less check) were excepted by. */
  readonly exception?: AppliedException | undefined
}

/**
 * The one place a result's `properties` are built (string values only): where it comes
 * from (run, Result), what it maps to (framework controls, benchmark), and for nodes what
 * kube-bench detected.
 */
export const resultProperties = ({ run, result, check, subjects, exception }: ResultContext): Record<string, string> => {
  const properties: Record<string, string> = {
    checkID: check.checkID,
    run: run.metadata.name,
    runNamespace: run.metadata.namespace ?? "",
    runUID: run.metadata.uid ?? "",
    resultRef: result.metadata.name
  }
  const benchmark = checkedAgainst(run.spec)
  if (benchmark !== undefined) properties.benchmark = benchmark
  if (check.frameworks !== undefined && check.frameworks.length > 0) {
    properties.frameworkControls = check.frameworks.map((ref) => `${ref.name}:${ref.controlID}`).join(", ")
  }
  const scannedNodes = (result.spec.nodes ?? []).filter((node) =>
    subjects.some((subject) => subject.kind === "Node" && subject.name === node.name)
  )
  if (scannedNodes.length > 0) {
    properties.node = scannedNodes.map((node) => node.name).join(", ")
    const distinct = (values: ReadonlyArray<string | undefined>) =>
      [...new Set(values.filter((value): value is string => value !== undefined))].join(", ")
    const platform = distinct(scannedNodes.map((node) => node.platform))
    const version = distinct(scannedNodes.map((node) => node.version))
    const nodeBenchmark = distinct(scannedNodes.map((node) => node.benchmark))
    if (platform !== "") properties.platform = platform
    if (version !== "") properties.detectedVersion = version
    if (nodeBenchmark !== "") properties.benchmark = nodeBenchmark
  }
  const listed = check.subjects?.length ?? 0
  const counts = check.subjectCounts
  if (counts !== undefined && Object.values(counts).reduce((a, b) => a + b, 0) > listed) {
    // The Result lists a sample of the check's subjects: the counts say how many there were.
    properties.subjectCounts = Object.entries(counts).map(([outcome, count]) => `${outcome}=${count}`).join(" ")
  }
  if (subjects.length === 1 && subjects[0]!.count !== undefined) properties.events = String(subjects[0]!.count)
  if (exception !== undefined) {
    // An accepted risk stays visible: which exception, how, until when, and what it was before.
    properties.exception = `${exception.namespace}/${exception.name}`
    properties.exceptionMode = exception.mode
    properties.exceptionExpiresAt = exception.expiresAt
    properties.originalResult = reportResultOf[exception.outcome]
  }
  return properties
}

const referenceOf = (subject: Subject): ObjectReference => {
  const version = apiVersionOfKind[subject.kind]
  return {
    ...(version === undefined ? {} : { apiVersion: version }),
    kind: subject.kind,
    name: subject.name,
    ...(subject.namespace === undefined ? {} : { namespace: subject.namespace })
  }
}

/** A check's results, each with the namespace of the report it belongs to ("" = the cluster report). */
interface Placed {
  readonly namespace: string
  readonly result: ReportResult
}

const resultsOfCheck = (input: ReportInput, check: Check): ReadonlyArray<Placed> => {
  const backend = scannerNameOf(input.run.spec.backend)
  const base = (outcome: Outcome, subjects: ReadonlyArray<Subject>, exception: AppliedException | undefined) => {
    const frameworks = [...new Set((check.frameworks ?? []).map((ref) => ref.name))]
    const message = subjects.length === 1 && subjects[0]!.message !== undefined
      ? subjects[0]!.message
      : check.detail ?? check.title
    return {
      policy: check.checkID,
      rule: check.title,
      result: reportResultOf[outcome],
      severity: reportSeverityOf[check.severity],
      category: frameworks.length > 0 ? frameworks.join(", ") : (checkedAgainst(input.run.spec) ?? backend),
      source: `compliance-scan/${backend}`,
      timestamp: timestampOf(input.finishedAt),
      message,
      properties: resultProperties({ run: input.run, result: input.result, check, subjects, exception }),
      ...(check.scored === undefined ? {} : { scored: check.scored }),
      ...(subjects.length === 0 ? {} : { resources: subjects.map(referenceOf) })
    } satisfies ReportResult
  }
  const subjects = check.subjects ?? []
  if (subjects.length === 0) return [{ namespace: "", result: base(check.outcome, [], check.exception) }]
  // Subjects share a result when they share namespace, outcome and exception.
  const groups = new Map<string, { namespace: string; outcome: Outcome; exception: AppliedException | undefined; subjects: Array<Subject> }>()
  for (const subject of subjects) {
    const namespace = subject.namespace ?? ""
    const exception = subject.exception
    const key = `${namespace}\0${subject.outcome}\0${exception === undefined ? "" : `${exception.namespace}/${exception.name}/${exception.outcome}`}`
    const group = groups.get(key) ?? { namespace, outcome: subject.outcome, exception, subjects: [] }
    group.subjects.push(subject)
    groups.set(key, group)
  }
  const exists = (namespace: string) => input.namespaces === undefined || input.namespaces.has(namespace)
  return [...groups.values()].map((group) => ({
    namespace: exists(group.namespace) ? group.namespace : "",
    result: base(group.outcome, group.subjects, group.exception)
  }))
}

/** Every result of a Result, in check order, with the report namespace of each. */
export const placedResults = (input: ReportInput): ReadonlyArray<Placed> =>
  input.result.spec.checks.flatMap((check) => resultsOfCheck(input, check))

export const summaryOfResults = (results: ReadonlyArray<ReportResult>): OutcomeCounts =>
  countOutcomes(results.map((result) => result.result))

const byteLength = (value: unknown) => Buffer.byteLength(JSON.stringify(value))

/** The widest part property a report can carry, so a measured part still fits once numbered. */
const partPlaceholder = "99999/99999"

/**
 * The reports of one Result in one API: one per namespace with findings plus one cluster
 * report, each split into parts of at most `budget` bytes of JSON (parts after the first
 * are named `-2`, `-3`, ...; each result's `part` property and the report's annotation say
 * which). Nothing is dropped: a result that alone exceeds the budget gets a part of its own.
 */
export const buildReports = (api: ReportApi, input: ReportInput): ReadonlyArray<KubeObject> => {
  const { run, result } = input
  const runNamespace = run.metadata.namespace ?? ""
  const byNamespace = new Map<string, Array<ReportResult>>()
  byNamespace.set("", [])
  for (const placed of placedResults(input)) {
    const list = byNamespace.get(placed.namespace) ?? []
    list.push(placed.result)
    byNamespace.set(placed.namespace, list)
  }
  const series = seriesOf(run.metadata.labels)
  const commonLabels: Record<string, string> = {
    [labels.managedBy]: managedBy,
    [labels.runUID]: run.metadata.uid ?? "",
    [labels.runNamespace]: runNamespace,
    [labels.reportKey]: reportKeyOf(run),
    ...(isLabelValue(run.metadata.name) ? { [labels.run]: run.metadata.name } : {}),
    ...(run.metadata.labels?.[ScheduleLabel] === undefined ? {} : { [ScheduleLabel]: run.metadata.labels[ScheduleLabel] }),
    ...(run.metadata.labels?.[BaselineLabel] === undefined ? {} : { [BaselineLabel]: run.metadata.labels[BaselineLabel] })
  }
  const assemble = (namespace: string, results: ReadonlyArray<ReportResult>, part: number, parts: number): KubeObject => {
    const resource = namespace === "" ? api.cluster : api.namespaced
    const owned = namespace !== "" && namespace === runNamespace && result.metadata.uid !== undefined
    return {
      apiVersion: resource.apiVersion,
      kind: resource.kind,
      metadata: {
        name: reportName(run, part),
        ...(namespace === "" ? {} : { namespace }),
        labels: { ...commonLabels, [labels.part]: String(part) },
        annotations: {
          [annotations.run]: `${runNamespace}/${run.metadata.name}`,
          [annotations.result]: result.metadata.name,
          [annotations.parts]: String(parts),
          ...(run.metadata.creationTimestamp === undefined ? {} : { [annotations.runCreated]: run.metadata.creationTimestamp }),
          ...(series === undefined ? {} : { "security.ugallu.io/series": series })
        },
        // Owner references cannot cross namespaces: reports elsewhere are removed by the operator.
        ...(owned
          ? {
            ownerReferences: [{
              apiVersion,
              kind: result.kind,
              name: result.metadata.name,
              uid: result.metadata.uid!,
              controller: false,
              blockOwnerDeletion: false
            }]
          }
          : {})
      },
      ...(api.reportSource ? { source: `compliance-scan/${scannerNameOf(run.spec.backend)}` } : {}),
      summary: summaryOfResults(results),
      results: parts > 1
        ? results.map((entry) => ({ ...entry, properties: { ...entry.properties, part: `${part}/${parts}` } }))
        : results
    }
  }
  const reports: Array<KubeObject> = []
  const namespaces = [...byNamespace.keys()].sort()
  for (const namespace of namespaces) {
    const results = byNamespace.get(namespace)!
    // The cluster report is written even when empty: it carries the run's summary of nothing found.
    if (results.length === 0 && namespace !== "") continue
    // 256: room for summary counts wider than the zeros measured here.
    const overhead = byteLength(assemble(namespace, [], 99999, 99999)) + 256
    const parts: Array<Array<ReportResult>> = [[]]
    let size = overhead
    for (const entry of results) {
      const entrySize = byteLength({ ...entry, properties: { ...entry.properties, part: partPlaceholder } }) + 1
      if (size + entrySize > input.budget && parts.at(-1)!.length > 0) {
        parts.push([])
        size = overhead
      }
      parts.at(-1)!.push(entry)
      size += entrySize
    }
    parts.forEach((list, index) => reports.push(assemble(namespace, list, index + 1, parts.length)))
  }
  return reports
}
