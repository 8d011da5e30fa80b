import type { Check, Subject } from "../api/Check.ts"
import type { ComplianceException, ExceptionSubjects } from "../api/ComplianceException.ts"
import { type ScannerName, scannerNameOf } from "../api/ComplianceScanRun.ts"
import { compileSelector, matchesSelector } from "../backends/cel/RuleSelector.ts"

/**
 * Which findings a ComplianceException covers (docs/api.md, "ComplianceException"). Pure:
 * the Result builder, `cel test`, `kube-bench parse` and the status controller share it.
 */

/** Where exceptions are read from and when: the same for every check of a run. */
export interface MatchContext {
  /** The operator's namespace: exceptions there are cluster-wide. */
  readonly operatorNamespace: string
  readonly backend: ScannerName
  /** Epoch milliseconds of the Result being built. */
  readonly now: number
  /** `--max-exception-duration` in milliseconds: longer exceptions are never applied. */
  readonly maxDurationMillis: number
  /** Labels of a subject's object when the scan knows them (CEL); undefined: unknown. */
  readonly labelsOf?: (subject: Subject) => Readonly<Record<string, string>> | undefined
}

/** Whether an exception can be applied at `now`, and if not, why. */
export type Validity =
  | { readonly _tag: "Active"; readonly expiresAt: number }
  | { readonly _tag: "Expired"; readonly expiresAt: number }
  | { readonly _tag: "Invalid"; readonly reason: "InvalidExpiry" | "ExceedsMaximumDuration"; readonly message: string }

/**
 * Active until `expiresAt` (exclusive: at that instant it has expired). An exception running
 * longer than the maximum after its creation is never applied, even where the admission
 * policy is not installed.
 */
export const validityOf = (exception: ComplianceException, now: number, maxDurationMillis: number): Validity => {
  const expiresAt = Date.parse(exception.spec.expiresAt)
  if (Number.isNaN(expiresAt)) {
    return { _tag: "Invalid", reason: "InvalidExpiry", message: `spec.expiresAt ${JSON.stringify(exception.spec.expiresAt)} is not an RFC 3339 time` }
  }
  const created = exception.metadata.creationTimestamp === undefined ? now : Date.parse(exception.metadata.creationTimestamp)
  if (expiresAt - created > maxDurationMillis) {
    return {
      _tag: "Invalid",
      reason: "ExceedsMaximumDuration",
      message: `spec.expiresAt is more than ${maxDurationMillis / 3_600_000}h after the exception's creation (--max-exception-duration)`
    }
  }
  return now < expiresAt ? { _tag: "Active", expiresAt } : { _tag: "Expired", expiresAt }
}

/** `*` matches any run of characters (so `abc*` is a prefix); everything else is literal. */
const globsToRegExp = (patterns: ReadonlyArray<string>): RegExp => {
  const alternatives = patterns.map((pattern) =>
    pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/gu, "\\$&")).join(".*")
  )
  return new RegExp(`^(?:${alternatives.join("|")})$`, "su")
}

/** An absent list matches anything; a present one must have a pattern matching `value`. */
const matchesAny = (patterns: ReadonlyArray<string> | undefined, value: string | undefined): boolean =>
  patterns === undefined || (value !== undefined && globsToRegExp(patterns).test(value))

export const isClusterWide = (exception: ComplianceException, operatorNamespace: string): boolean =>
  exception.metadata.namespace === operatorNamespace

/** Whether the check (its id, the run's backend, its frameworks) is one the exception names. */
export const matchesCheck = (exception: ComplianceException, check: Check, backend: ScannerName): boolean => {
  const { match } = exception.spec
  if (!matchesAny(match.checks, check.checkID)) return false
  if (match.backends !== undefined && !match.backends.some((name) => scannerNameOf(name) === backend)) return false
  if (match.frameworks !== undefined && !(check.frameworks ?? []).some((ref) => match.frameworks!.includes(ref.name))) return false
  return true
}

const matchesSubjectFields = (fields: ExceptionSubjects, subject: Subject, context: MatchContext): boolean => {
  if (!matchesAny(fields.kinds, subject.kind)) return false
  if (!matchesAny(fields.namespaces, subject.namespace)) return false
  if (!matchesAny(fields.names, subject.name)) return false
  if (fields.nodeNames !== undefined && !(subject.kind === "Node" && matchesAny(fields.nodeNames, subject.name))) return false
  if (fields.labelSelector !== undefined) {
    const compiled = compileSelector(fields.labelSelector)
    if (compiled._tag === "Invalid") return false
    // Unknown labels never match: an exception must not cover more than it names.
    const labels = context.labelsOf?.(subject)
    if (labels === undefined || !matchesSelector(compiled.requirements, labels)) return false
  }
  return true
}

/**
 * Whether the exception covers `subject`. An exception outside the operator's namespace
 * covers only subjects in its own namespace (never nodes or cluster-scoped objects): whoever
 * may create exceptions in a namespace can waive findings there and nowhere else.
 */
export const matchesSubject = (exception: ComplianceException, subject: Subject, context: MatchContext): boolean => {
  if (!isClusterWide(exception, context.operatorNamespace) && subject.namespace !== exception.metadata.namespace) return false
  const fields = exception.spec.match.subjects
  return fields === undefined || matchesSubjectFields(fields, subject, context)
}

/**
 * A check without subjects (a kube-bench check of no node, a scan failure) is covered only
 * by a cluster-wide exception that names no subjects.
 */
export const matchesWholeCheck = (exception: ComplianceException, context: MatchContext): boolean =>
  isClusterWide(exception, context.operatorNamespace) && exception.spec.match.subjects === undefined
