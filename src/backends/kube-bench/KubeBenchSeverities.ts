import { readFileSync } from "node:fs"
import { Effect, Result, Schema } from "effect"
import { CORE_SCHEMA, load as loadYaml } from "js-yaml"
import { Severity } from "../../api/Severity.ts"

/**
 * Severity of kube-bench checks by what they mean, from the table the project ships as data
 * (kube-bench-severities.yaml explains the levels, the families and the lookup).
 */
export interface SeverityTable {
  readonly default: Severity
  readonly families: ReadonlyArray<{ readonly family: string; readonly pattern: RegExp }>
  readonly stigCategories: Readonly<Record<string, Severity>>
  readonly rules: ReadonlyArray<{ readonly severity: Severity; readonly match: RegExp; readonly families?: ReadonlyArray<string> }>
}

export const SeverityFile = Schema.Struct({
  default: Severity,
  families: Schema.Array(Schema.Struct({ family: Schema.String, pattern: Schema.String })),
  stigCategories: Schema.Record(Schema.String, Severity),
  rules: Schema.Array(
    Schema.Struct({ severity: Severity, match: Schema.String, families: Schema.optionalKey(Schema.Array(Schema.String)) })
  )
})

export class SeverityTableError extends Schema.TaggedError<SeverityTableError>()("SeverityTableError", {
  message: Schema.String
}) {}

const decodeFile = Schema.decodeUnknownResult(SeverityFile)

export const parseSeverityTable = (yamlText: string): Result.Result<SeverityTable, SeverityTableError> => {
  let document: unknown
  try {
    document = loadYaml(yamlText, { schema: CORE_SCHEMA })
  } catch (error) {
    return Result.fail(new SeverityTableError({ message: `invalid YAML: ${String(error)}` }))
  }
  return decodeFile(document).pipe(
    Result.mapError((error) => new SeverityTableError({ message: error.message })),
    Result.flatMap((file) => {
      try {
        return Result.succeed<SeverityTable>({
          default: file.default,
          families: file.families.map(({ family, pattern }) => ({ family, pattern: new RegExp(pattern, "u") })),
          stigCategories: file.stigCategories,
          rules: file.rules.map((rule) => ({ ...rule, match: new RegExp(rule.match, "iu") }))
        })
      } catch (error) {
        return Result.fail(new SeverityTableError({ message: `invalid pattern: ${String(error)}` }))
      }
    })
  )
}

/** Where the shipped table lives (next to this module, so it travels with the sources). */
export const shippedTableUrl = new URL("./kube-bench-severities.yaml", import.meta.url)

/** The shipped table: part of the program and covered by tests, so a broken file is a defect. */
export const loadSeverityTable: Effect.Effect<SeverityTable> = Effect.suspend(() =>
  Effect.fromResult(parseSeverityTable(readFileSync(shippedTableUrl, "utf8")))
).pipe(Effect.orDie)

/** The family of a benchmark id (`eks-1.8.0` -> `eks`); undefined for an id no pattern knows. */
export const familyOf = (table: SeverityTable, benchmark: string | undefined): string | undefined =>
  benchmark === undefined ? undefined : table.families.find(({ pattern }) => pattern.test(benchmark))?.family

/** What decided a check's severity: a rule (its index), the STIG category, or the default. */
export type SeveritySource =
  | { readonly _tag: "Rule"; readonly index: number }
  | { readonly _tag: "StigCategory"; readonly category: string }
  | { readonly _tag: "Default" }

export interface CheckMeaning {
  readonly benchmark: string | undefined
  readonly title: string
  /** The group's description (`DISA Category Code II` in the STIG). */
  readonly section: string | undefined
}

export const classifyCheck = (table: SeverityTable, check: CheckMeaning): { readonly severity: Severity; readonly source: SeveritySource } => {
  const family = familyOf(table, check.benchmark)
  const index = table.rules.findIndex((rule) =>
    (rule.families === undefined || (family !== undefined && rule.families.includes(family))) && rule.match.test(check.title)
  )
  if (index !== -1) return { severity: table.rules[index]!.severity, source: { _tag: "Rule", index } }
  const category = family === "stig" ? /category code (I{1,3})\b/iu.exec(check.section ?? "")?.[1]?.toUpperCase() : undefined
  const fromCategory = category === undefined ? undefined : table.stigCategories[category]
  if (fromCategory !== undefined) return { severity: fromCategory, source: { _tag: "StigCategory", category: category! } }
  return { severity: table.default, source: { _tag: "Default" } }
}

export const severityOf = (table: SeverityTable, check: CheckMeaning): Severity => classifyCheck(table, check).severity
