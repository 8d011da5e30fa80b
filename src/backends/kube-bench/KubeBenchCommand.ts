import { basename, extname } from "node:path"
import { Console, Effect, FileSystem, Option, Result, Schema } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import type { Check } from "../../api/Check.ts"
import { countOutcomes, type OutcomeCounts } from "../../api/Outcome.ts"
import { loadSeverityTable, type SeverityTable } from "./KubeBenchSeverities.ts"
import { benchmarksOf, checksFromReports, type NodeReport } from "./KubeBenchChecks.ts"
import { parseKubeBenchReport } from "./KubeBenchReport.ts"
import { applyExceptionsFile } from "../../exceptions/ExceptionFile.ts"
import { printYaml } from "../../services/YamlPackage.ts"

/**
 * `kube-bench parse FILE... [--node NAME]...`: turns saved `kube-bench run --json` outputs
 * into the checks the operator would write, so a report can be checked offline.
 */

/** Shown to the user as is (effect/cli renders `userMessage` and exits non-zero). */
export class KubeBenchParseFailed extends Schema.TaggedError<KubeBenchParseFailed>()("KubeBenchParseFailed", {
  message: Schema.String
}) {
  override get [CliError.userMessage](): string {
    return this.message
  }
}

export type OutputFormat = "yaml" | "json"

/** One saved report: where it came from, which node it describes, its text. */
export interface ReportFile {
  readonly path: string
  readonly node: string
  readonly text: string
}

/** What the command prints: the checks and summary a ComplianceScanResult would hold. */
export interface ParsedReports {
  readonly benchmarks: ReadonlyArray<string>
  readonly nodes: ReadonlyArray<string>
  readonly summary: OutcomeCounts
  readonly checks: ReadonlyArray<Check>
}

/** The node a file describes: its `--node` (in order) or the file name without extension. */
export const nodeNamesFor = (
  paths: ReadonlyArray<string>,
  nodes: ReadonlyArray<string>
): Result.Result<Array<string>, KubeBenchParseFailed> => {
  if (nodes.length > 0 && nodes.length !== paths.length) {
    return Result.fail(
      new KubeBenchParseFailed({
        message: `Give one --node per FILE, in the same order, or none (got ${nodes.length} --node for ${paths.length} files).`
      })
    )
  }
  return Result.succeed(paths.map((path, index) => nodes[index] ?? basename(path, extname(path))))
}

/** Parses every file; all unparsable files are named at once, each with its reason. */
export const parseReportFiles = (
  files: ReadonlyArray<ReportFile>,
  severities: SeverityTable
): Result.Result<ParsedReports, KubeBenchParseFailed> => {
  const reports: Array<NodeReport> = []
  const problems: Array<string> = []
  for (const file of files) {
    const parsed = parseKubeBenchReport(file.text)
    if (Result.isSuccess(parsed)) reports.push({ node: file.node, report: parsed.success })
    else problems.push(`${file.path}: ${parsed.failure.message}`)
  }
  if (problems.length > 0) {
    return Result.fail(
      new KubeBenchParseFailed({ message: `Not a kube-bench JSON report:\n${problems.map((line) => `  ${line}`).join("\n")}` })
    )
  }
  const checks = checksFromReports(reports, severities)
  return Result.succeed({
    benchmarks: benchmarksOf(reports),
    nodes: reports.map((report) => report.node),
    summary: countOutcomes(checks.map((check) => check.outcome)),
    checks
  })
}

const renderParsedReports = (parsed: ParsedReports, format: OutputFormat): Effect.Effect<string> =>
  format === "json"
    ? Effect.succeed(JSON.stringify(parsed, null, 2))
    : printYaml(parsed)

/** The command's handler, usable without a process: reads the files, prints the checks. */
export const kubeBenchParse = Effect.fn("kubeBenchParse")(function*(input: {
  readonly files: ReadonlyArray<string>
  readonly nodes: ReadonlyArray<string>
  readonly output: OutputFormat
  readonly exceptions?: Option.Option<string>
}) {
  const fs = yield* FileSystem.FileSystem
  const names = yield* Effect.fromResult(nodeNamesFor(input.files, input.nodes))
  const files = yield* Effect.forEach(input.files, (path, index) =>
    fs.readFileString(path).pipe(
      Effect.map((text): ReportFile => ({ path, node: names[index]!, text })),
      Effect.mapError((error) => new KubeBenchParseFailed({ message: `Cannot read ${path}: ${error.message}` }))
    ))
  const severities = yield* loadSeverityTable
  const parsed = yield* Effect.fromResult(parseReportFiles(files, severities))
  const exceptionsFile = input.exceptions === undefined ? undefined : Option.getOrUndefined(input.exceptions)
  if (exceptionsFile === undefined) return yield* Console.log(yield* renderParsedReports(parsed, input.output))
  const excepted = yield* applyExceptionsFile(exceptionsFile, parsed.checks, "kube-bench").pipe(
    Effect.mapError((error) => new KubeBenchParseFailed({ message: error.message }))
  )
  yield* Console.log(yield* renderParsedReports({ ...parsed, ...excepted }, input.output))
})

const parse = Command.make(
  "parse",
  {
    files: Argument.String("file").pipe(
      Argument.withDescription("A saved `kube-bench run --json` output (glog noise around it is fine)"),
      Argument.variadic({ min: 1 })
    ),
    nodes: Flag.String("node").pipe(
      Flag.withDescription("Node name for the FILE at the same position (default: the file name without extension)"),
      Flag.atLeast(0)
    ),
    output: Flag.Literals("output", ["yaml", "json"]).pipe(
      Flag.withAlias("o"),
      Flag.withDescription("Output format"),
      Flag.withDefault("yaml")
    ),
    exceptions: Flag.String("exceptions").pipe(
      Flag.withMetavar("FILE"),
      Flag.withDescription("ComplianceExceptions (YAML/JSON) to apply as the operator would; without a namespace: cluster-wide"),
      Flag.optional
    )
  },
  kubeBenchParse
).pipe(
  Command.withDescription("Turn saved kube-bench JSON reports into the checks the operator would write"),
  Command.withExamples([
    { command: "kube-bench parse master.json --node cp-1", description: "One node's report as YAML" },
    { command: "kube-bench parse cp-1.json worker-1.json -o json", description: "Two nodes merged, as JSON" }
  ])
)

export const kubeBenchCommand = Command.make("kube-bench").pipe(
  Command.withDescription("kube-bench tools"),
  Command.withSubcommands([parse])
)
