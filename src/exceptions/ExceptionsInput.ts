import type { Subject } from "../api/Check.ts"
import type { ComplianceException } from "../api/ComplianceException.ts"

/** The exceptions a Result is built with, and what decides which of them apply. */
export interface ExceptionsInput {
  readonly exceptions: ReadonlyArray<ComplianceException>
  /** Exceptions in this namespace are cluster-wide. */
  readonly operatorNamespace: string
  /** `--max-exception-duration` in milliseconds. */
  readonly maxDurationMillis: number
  /** Labels of subjects, for exceptions selecting by label (SubjectLabels). */
  readonly labelsOf?: ((subject: Subject) => Readonly<Record<string, string>> | undefined) | undefined
}
