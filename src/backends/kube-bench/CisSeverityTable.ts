import { readFileSync } from "node:fs"
import { Effect, Result, Schema } from "effect"
import { parse as parseYaml } from "yaml"
import { Severity } from "../../api/Severity.ts"

/**
 * CIS test number -> severity, from the table the project ships as data
 * (cis-severities.yaml, which explains the levels and the default).
 */
export interface CisSeverityTable {
  readonly default: Severity
  /** Dotted id prefix ("1.2", "1.2.1") -> severity. */
  readonly ids: ReadonlyMap<string, Severity>
  /** Per-benchmark entries (`cis-1.8`) for benchmarks that number checks differently. */
  readonly benchmarks: ReadonlyMap<string, ReadonlyMap<string, Severity>>
}

const IdTable = Schema.Record(Schema.String, Severity)

export const CisSeverityFile = Schema.Struct({
  default: Severity,
  ids: IdTable,
  benchmarks: Schema.optionalKey(Schema.Record(Schema.String, IdTable))
})

export class SeverityTableError extends Schema.TaggedError<SeverityTableError>()("SeverityTableError", {
  message: Schema.String
}) {}

const decodeFile = Schema.decodeUnknownResult(CisSeverityFile)

export const parseCisSeverityTable = (yamlText: string): Result.Result<CisSeverityTable, SeverityTableError> => {
  let document: unknown
  try {
    document = parseYaml(yamlText)
  } catch (error) {
    return Result.fail(new SeverityTableError({ message: `invalid YAML: ${String(error)}` }))
  }
  return decodeFile(document).pipe(
    Result.mapError((error) => new SeverityTableError({ message: error.message })),
    Result.map((file) => ({
      default: file.default,
      ids: new Map(Object.entries(file.ids)),
      benchmarks: new Map(
        Object.entries(file.benchmarks ?? {}).map(([name, ids]) => [name, new Map(Object.entries(ids))] as const)
      )
    }))
  )
}

/** Where the shipped table lives (next to this module, so it travels with the sources). */
export const shippedTableUrl = new URL("./cis-severities.yaml", import.meta.url)

/**
 * The shipped table. It is part of the program and covered by tests, so a broken file is
 * a defect, not a run failure.
 */
export const loadCisSeverityTable: Effect.Effect<CisSeverityTable> = Effect.suspend(() =>
  Effect.fromResult(parseCisSeverityTable(readFileSync(shippedTableUrl, "utf8")))
).pipe(Effect.orDie)

/** "1.2.10" -> ["1.2.10", "1.2", "1"]: longest prefix first, whole dotted segments only. */
const prefixesOf = (testNumber: string): Array<string> => {
  const segments = testNumber.trim().split(".")
  return segments.map((_, index) => segments.slice(0, segments.length - index).join("."))
}

/** The severity of a kube-bench check (`testNumber` without the `cis.` prefix). */
export const severityOf = (table: CisSeverityTable, testNumber: string, benchmark?: string): Severity => {
  const own = benchmark === undefined ? undefined : table.benchmarks.get(benchmark)
  for (const prefix of prefixesOf(testNumber)) {
    const severity = own?.get(prefix) ?? table.ids.get(prefix)
    if (severity !== undefined) return severity
  }
  return table.default
}
