import type { Check, Subject } from "../../../src/api/Check.ts"
import type { ComplianceException, ComplianceExceptionSpec } from "../../../src/api/ComplianceException.ts"

export const operatorNamespace = "ugallu-system"
export const day = 86_400_000
/** The instant the tests build Results at (TestClock starts at 0; the tests set it here). */
export const now = Date.parse("2026-12-01T00:00:00Z")
export const iso = (millis: number) => new Date(millis).toISOString()

export const exceptionOf = (
  name: string,
  namespace: string,
  spec: Partial<ComplianceExceptionSpec> & Pick<ComplianceExceptionSpec, "match">,
  metadata: Partial<ComplianceException["metadata"]> = {}
): ComplianceException => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceException",
  metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: "42", creationTimestamp: iso(now - day), ...metadata },
  spec: { justification: "accepted risk", approvedBy: "security-team", expiresAt: iso(now + 30 * day), ...spec }
})

export const subject = (name: string, namespace: string | undefined, outcome: Subject["outcome"] = "fail", kind = "Pod"): Subject => ({
  kind,
  name,
  ...(namespace === undefined ? {} : { namespace }),
  outcome
})

export const checkOf = (checkID: string, subjects: ReadonlyArray<Subject> | undefined, overrides: Partial<Check> = {}): Check => ({
  checkID,
  title: checkID,
  outcome: "fail",
  severity: "critical",
  ...(subjects === undefined ? {} : { subjects }),
  ...overrides
})
