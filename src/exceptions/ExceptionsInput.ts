import type { ComplianceException } from "../api/ComplianceException.ts"

/** The exceptions a Result is built with, and what decides which of them apply. */
export interface ExceptionsInput {
  readonly exceptions: ReadonlyArray<ComplianceException>
  /** Exceptions in this namespace are cluster-wide. */
  readonly operatorNamespace: string
  /** `--max-exception-duration` in milliseconds. */
  readonly maxDurationMillis: number
}
