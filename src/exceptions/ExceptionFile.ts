import { Clock, Effect, FileSystem, Schema } from "effect"
import type { ExceptionRecord } from "../api/AppliedException.ts"
import type { Check, Subject } from "../api/Check.ts"
import { type ComplianceException, ComplianceException as ExceptionSchema } from "../api/ComplianceException.ts"
import type { ScannerName } from "../api/ComplianceScanRun.ts"
import { countOutcomes, type OutcomeCounts } from "../api/Outcome.ts"
import { defaultOperatorConfig } from "../services/OperatorConfig.ts"
import { yamlPackage } from "../services/YamlPackage.ts"
import { applyExceptions, isExcepted } from "./ExceptionApplication.ts"

/**
 * `--exceptions FILE` of `cel test` and `kube-bench parse`: ComplianceExceptions from a
 * YAML/JSON file (several documents, or a `List`), applied offline as the operator would
 * apply them. An exception without a namespace is taken as cluster-wide (the operator's
 * namespace); the maximum duration is the operator's default.
 */

export class ExceptionFileInvalid extends Schema.TaggedError<ExceptionFileInvalid>()("ExceptionFileInvalid", {
  message: Schema.String
}) {}

const decode = Schema.decodeUnknownResult(ExceptionSchema)

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

export const readExceptionsFile = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((error) => new ExceptionFileInvalid({ message: `cannot read ${file}: ${error.message}` }))
    )
    const exceptions: Array<ComplianceException> = []
    const { parseAllDocuments } = yield* yamlPackage
    for (const document of parseAllDocuments(text)) {
      const [error] = document.errors
      if (error !== undefined) return yield* new ExceptionFileInvalid({ message: `cannot parse ${file}: ${error.message}` })
      const value: unknown = document.toJS()
      const items = isRecord(value) && Array.isArray(value.items) ? value.items : value === null || value === undefined ? [] : [value]
      for (const item of items) {
        const named = isRecord(item) && isRecord(item.metadata) && item.metadata.namespace === undefined
          ? { ...item, metadata: { ...item.metadata, namespace: defaultOperatorConfig.operatorNamespace } }
          : item
        const decoded = decode(named)
        if (decoded._tag === "Failure") {
          return yield* new ExceptionFileInvalid({ message: `${file}: not a ComplianceException: ${decoded.failure.message}` })
        }
        exceptions.push(decoded.success)
      }
    }
    return exceptions as ReadonlyArray<ComplianceException>
  })

export interface OfflineExceptions {
  readonly checks: ReadonlyArray<Check>
  readonly summary: OutcomeCounts
  readonly exceptions: ReadonlyArray<ExceptionRecord>
}

/** The checks with the file's exceptions applied now, their summary (with `excepted`) and the exceptions applied. */
export const applyExceptionsFile = (
  file: string,
  checks: ReadonlyArray<Check>,
  backend: ScannerName,
  labelsOf?: (subject: Subject) => Readonly<Record<string, string>> | undefined
) =>
  Effect.gen(function*() {
    const exceptions = yield* readExceptionsFile(file)
    const applied = applyExceptions(checks, exceptions, {
      operatorNamespace: defaultOperatorConfig.operatorNamespace,
      backend,
      now: yield* Clock.currentTimeMillis,
      maxDurationMillis: defaultOperatorConfig.maxExceptionDurationMillis,
      ...(labelsOf === undefined ? {} : { labelsOf })
    })
    const excepted = applied.checks.filter(isExcepted).length
    const summary = { ...countOutcomes(applied.checks.map((check) => check.outcome)), ...(excepted === 0 ? {} : { excepted }) }
    return { checks: applied.checks, summary, exceptions: applied.records } satisfies OfflineExceptions
  })
