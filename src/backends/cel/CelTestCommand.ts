import { isAscii } from "node:buffer"
import { Clock, Console, Effect, FileSystem, Option, Schema } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { CORE_SCHEMA, load as loadYaml } from "js-yaml"
import type { Check } from "../../api/Check.ts"
import { CelRule } from "../../api/ComplianceScanRun.ts"
import { customResourceDefinitions, toOpenApi } from "../../api/CrdGenerator.ts"
import { version } from "../../api/ObjectMeta.ts"
import { countOutcomes, type OutcomeCounts } from "../../api/Outcome.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"
import { printYaml, yamlPackage } from "../../services/YamlPackage.ts"
import { makeCelJsEngine } from "./CelJsEngine.ts"
import { CelCompileError, CelRuleSetInvalid } from "./CelErrors.ts"
import { resolveRuleSet, runVariables } from "./CelRuleSet.ts"
import { inventoryOfObjects } from "./CelInventory.ts"
import { celTargets } from "./CelTarget.ts"
import { adoptJson } from "./CelValue.ts"
import { compileRules } from "./CompiledRule.ts"
import { CostMeter, defaultCostLimits } from "./CostMeter.ts"
import { ProgramCache } from "./ProgramCache.ts"
import { defaultEvaluationOptions, evaluateRulesNow } from "./RuleEvaluation.ts"
import { defaultPacksDirectory, loadRulePacks } from "./RulePacks.ts"
import { strictDecodingError, unknownFields } from "./StrictFields.ts"
import { applyExceptionsFile } from "../../exceptions/ExceptionFile.ts"

/**
 * `cel test --rules FILE --objects FILE...`: evaluates rules against manifests offline and
 * prints the checks the operator would write, so users can try rules before a run.
 *
 * Rules: a YAML or JSON list of rules, one rule, `{rules: [...], profile?}`, or a whole
 * ComplianceScanRun manifest (its spec.cel.rules and spec.profile). Objects: YAML
 * (multi-document) or JSON files, `-` for standard input; `List` kinds are flattened; objects of the kinds the
 * rules match are checked, NetworkPolicies are what `networkPolicies` reads, others are skipped with a note on stderr. A rule that does not compile, a
 * file that cannot be read or parsed, or a bound exceeded: message on stderr, non-zero exit.
 */

export class CelTestFailed extends Schema.TaggedError<CelTestFailed>()("CelTestFailed", {
  message: Schema.String
}) {
  /** The CLI shows this (on stderr) instead of a stack trace. */
  override get [CliError.userMessage](): string {
    return `cel test: ${this.message}`
  }
}

export interface CelTestOptions {
  /** Optional when a profile is given. */
  readonly rulesFile: string | undefined
  readonly objectFiles: ReadonlyArray<string>
  /** A built-in pack; replaces the rules file's own profile. */
  readonly profile: string | undefined
  readonly output: "yaml" | "json"
  readonly packsDirectory?: string
  /** Wall-clock bound of the evaluation. */
  readonly maxEvaluationMillis?: number
  /** ComplianceExceptions to apply, as the operator would (ExceptionFile). */
  readonly exceptionsFile?: string | undefined
  /** What `-` reads (default: the process's standard input). */
  readonly readStdin?: Effect.Effect<string, CelTestFailed>
}

export interface CelTestResult {
  /** What goes to stdout: the summary and the checks. */
  readonly output: string
  /** Notes for stderr (skipped objects). */
  readonly warnings: ReadonlyArray<string>
  readonly summary: OutcomeCounts
  readonly checks: ReadonlyArray<Check>
}

const decodeRules = Schema.decodeUnknownEffect(Schema.Array(CelRule))

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const readText = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const bytes = yield* fs.readFile(file).pipe(
      Effect.mapError((error) => new CelTestFailed({ message: `cannot read ${file}: ${error.message}` }))
    )
    return decodeText(bytes)
  })

/**
 * A manifest's bytes as text. Manifests are mostly ASCII, which decodes about twenty times
 * faster as such than through UTF-8's general path (and Node's own UTF-8 decoding is about
 * three times faster than readFileString's TextDecoder on a 30 MB manifest).
 */
const decodeText = (bytes: Uint8Array): string => {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return isAscii(buffer) ? buffer.toString("ascii") : buffer.toString("utf8")
}

/** Every document of a YAML (or JSON) file as plain data. */
const readDocuments = (file: string) =>
  Effect.gen(function*() {
    const text = yield* readText(file)
    const { parseAllDocuments } = yield* yamlPackage
    const documents = parseAllDocuments(text, { uniqueKeys: false })
    const list = Array.isArray(documents) ? documents : [documents]
    const values: Array<unknown> = []
    for (const document of list) {
      const [error] = document.errors
      if (error !== undefined) return yield* new CelTestFailed({ message: `cannot parse ${file}: ${error.message}` })
      const value: unknown = document.toJS()
      if (value !== null && value !== undefined) values.push(value)
    }
    return values
  })

/** What `-` names: standard input, read once. */
export const stdinName = "-"

const readStdin = Effect.tryPromise({
  // The chunks as they are, decoded once: a text consumer decodes each chunk and joins the
  // pieces, which took more time and held more memory (bench/cel-test.ts).
  try: async () => {
    const chunks: Array<Buffer> = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return decodeText(Buffer.concat(chunks))
  },
  catch: (error) => new CelTestFailed({ message: `cannot read standard input: ${error instanceof Error ? error.message : String(error)}` })
})

/**
 * The objects of a manifest file (or of standard input), handed to `onObject` one by one as
 * they are parsed. JSON (one object, or a List as `kubectl get -o json` prints it) is parsed
 * natively; YAML is read document by document with js-yaml (several times faster than the
 * `yaml` package on large files), YAML 1.2's core schema as the API server reads it, so a
 * later document never waits for the whole file to become a syntax tree.
 */
const readObjects = (file: string, readInput: Effect.Effect<string, CelTestFailed>, onObject: (object: unknown) => void) =>
  Effect.gen(function*() {
    const text = file === stdinName ? yield* readInput : yield* readText(file)
    const emit = (document: unknown) => {
      if (document === null || document === undefined) return
      for (const object of objectsOf([document])) onObject(object)
    }
    const trimmed = text.trimStart()
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      const parsed = parseJson(trimmed)
      if (parsed !== notJson) return emit(parsed)
    }
    // js-yaml's loadAll builds every document before handing out the first: split at the
    // document markers instead, so one document's tree is alive at a time.
    let number = 0
    for (const document of yamlDocuments(text)) {
      number++
      // Only blank and comment lines: no object (js-yaml refuses an empty document).
      if (!/^[ \t]*[^#\s]/mu.test(document)) continue
      const parsed = yield* Effect.try({
        try: () => loadYaml(document, { schema: CORE_SCHEMA, json: true, filename: file }),
        catch: (error) =>
          new CelTestFailed({ message: `cannot parse ${file}: document ${number}: ${error instanceof Error ? error.message : String(error)}` })
      })
      emit(parsed)
    }
  })

/**
 * The documents of a YAML stream, split at `---` lines (a marker at column 0 cannot be
 * inside a document's content, which is indented under its key) and `...` end markers.
 */
function* yamlDocuments(text: string): Generator<string> {
  const marker = /^(?:---|\.\.\.)(?=[ \t]|\r?$)/gmu
  let start = 0
  for (const match of text.matchAll(marker)) {
    yield text.slice(start, match.index)
    // Content after `--- ` on the marker's own line belongs to the next document.
    start = match[0] === "---" ? match.index + 3 : text.indexOf("\n", match.index) === -1 ? text.length : text.indexOf("\n", match.index)
  }
  yield text.slice(start)
}

const notJson = Symbol("not JSON")
/** JSON.parse, or `notJson` (then the text is read as YAML, which JSON-like text may still be). */
const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return notJson
  }
}

interface RulesSource {
  readonly rules: ReadonlyArray<unknown>
  readonly profile: string | undefined
}

const ruleSchema = toOpenApi(CelRule.ast)
const runSchema = (): Record<string, unknown> => {
  const definition = customResourceDefinitions().find((crd) => (crd.spec as { names: { kind: string } }).names.kind === "ComplianceScanRun")!
  return (definition.spec as { versions: ReadonlyArray<{ schema: { openAPIV3Schema: Record<string, unknown> } }> }).versions[0]!.schema.openAPIV3Schema
}

/** Unknown fields refused as the API server's strict field validation would refuse them. */
const strictly = (file: string, source: RulesSource, schema: Record<string, unknown>, document: unknown, prefix = ""): RulesSource | CelTestFailed => {
  const unknown = unknownFields(schema, document)
  return unknown.length === 0 ? source : new CelTestFailed({ message: `invalid rules in ${file}: ${prefix}${strictDecodingError(unknown)}` })
}

const rulesSourceOf = (file: string, documents: ReadonlyArray<unknown>): RulesSource | CelTestFailed => {
  if (documents.length !== 1) {
    return new CelTestFailed({ message: `${file} must hold one document (a list of rules or a ComplianceScanRun), found ${documents.length}` })
  }
  const document = documents[0]
  if (Array.isArray(document)) return strictly(file, { rules: document, profile: undefined }, { type: "array", items: ruleSchema }, document)
  if (isRecord(document)) {
    if (document.kind === "ComplianceScanRun") {
      const spec = isRecord(document.spec) ? document.spec : {}
      const cel = isRecord(spec.cel) ? spec.cel : {}
      const source = { rules: Array.isArray(cel.rules) ? cel.rules : [], profile: typeof spec.profile === "string" ? spec.profile : undefined }
      return strictly(file, source, runSchema(), document, `ComplianceScanRun in version "${version}" cannot be handled as a ComplianceScanRun: `)
    }
    if (Array.isArray(document.rules)) {
      const source = { rules: document.rules, profile: typeof document.profile === "string" ? document.profile : undefined }
      const schema = { type: "object", properties: { rules: { type: "array", items: ruleSchema }, profile: { type: "string" } } }
      return strictly(file, source, schema, document)
    }
    if (typeof document.expression === "string") return strictly(file, { rules: [document], profile: undefined }, ruleSchema, document)
  }
  return new CelTestFailed({ message: `${file} is neither a list of CEL rules nor a ComplianceScanRun` })
}

/** Objects of a file: documents, with `List` kinds flattened. */
const objectsOf = (documents: ReadonlyArray<unknown>): Array<unknown> =>
  documents.flatMap((document) =>
    isRecord(document) && typeof document.kind === "string" && document.kind.endsWith("List") && Array.isArray(document.items)
      ? objectsOf(document.items)
      : [document]
  )

const hasName = (value: Record<string, unknown>): value is KubeObject =>
  isRecord(value.metadata) && typeof value.metadata.name === "string" && value.metadata.name !== ""

export const runCelTest = (options: CelTestOptions): Effect.Effect<CelTestResult, CelTestFailed, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const cache = new ProgramCache(makeCelJsEngine(), 1_000)
    const compile = cache.compile.bind(cache)
    const source: RulesSource | CelTestFailed =
      options.rulesFile === undefined
        ? { rules: [], profile: undefined }
        : rulesSourceOf(options.rulesFile, yield* readDocuments(options.rulesFile))
    if (source instanceof CelTestFailed) return yield* source
    const profile = options.profile ?? source.profile
    const packs = yield* loadRulePacks(options.packsDirectory ?? defaultPacksDirectory, compile, (pack) => pack === profile).pipe(
      Effect.mapError((error) => new CelTestFailed({ message: `built-in pack "${error.pack}" is broken: ${error.message}` }))
    )
    const inline = yield* decodeRules(source.rules).pipe(
      Effect.mapError((error) => new CelTestFailed({ message: `invalid rules in ${options.rulesFile ?? "the rules"}: ${error.message}` }))
    )
    const ruleSet = resolveRuleSet(packs, profile, inline)
    if (ruleSet instanceof CelRuleSetInvalid) return yield* new CelTestFailed({ message: `${ruleSet.reason}: ${ruleSet.message}` })
    const rules = compileRules(compile, ruleSet)
    if (rules instanceof CelCompileError) return yield* new CelTestFailed({ message: `CELCompileError: ${rules.message}` })

    const objects: Array<KubeObject> = []
    const fileOf = new Map<KubeObject, string>()
    const warnings: Array<string> = []
    if (options.objectFiles.filter((file) => file === stdinName).length > 1) {
      return yield* new CelTestFailed({ message: "standard input (-) can be given only once" })
    }
    for (const file of options.objectFiles) {
      let index = 0
      yield* readObjects(file, options.readStdin ?? readStdin, (object) => {
        index++
        if (!isRecord(object) || !hasName(object)) warnings.push(`${file}: object ${index} has no metadata.name; skipped`)
        else {
          objects.push(object)
          fileOf.set(object, file)
        }
      })
    }
    const { inventory, unmatched } = inventoryOfObjects(rules, objects)
    for (const object of unmatched) warnings.push(`${fileOf.get(object)}: ${String(object.kind)} ${object.metadata.name} skipped (no rule matches its kind)`)

    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const meter = new CostMeter(defaultCostLimits, { start: now(), millis: options.maxEvaluationMillis ?? 60_000 }, now)
    // The objects were parsed for this run alone: converted in place, not copied.
    const variables = runVariables(packs, profile, compile)
    const outcome = evaluateRulesNow(cache.engine, rules, celTargets(cache.engine.fromJson, inventory, adoptJson), meter, { ...defaultEvaluationOptions, variables })
    if (outcome._tag === "Exceeded") return yield* new CelTestFailed({ message: `${outcome.error.reason}: ${outcome.error.message}` })
    const excepted = options.exceptionsFile === undefined
      ? { checks: outcome.checks, summary: countOutcomes(outcome.checks.map((check) => check.outcome)), exceptions: [] }
      : yield* applyExceptionsFile(options.exceptionsFile, outcome.checks, "cel", (subject) =>
        objects.find((object) =>
          object.kind === subject.kind && object.metadata.name === subject.name && object.metadata.namespace === subject.namespace
        )?.metadata.labels ?? undefined).pipe(
        Effect.mapError((error) => new CelTestFailed({ message: error.message }))
      )
    const { summary, checks } = excepted
    const report = { summary, checks, ...(excepted.exceptions.length === 0 ? {} : { exceptions: excepted.exceptions }) }
    const output = options.output === "json" ? JSON.stringify(report, null, 2) : yield* printYaml(report)
    return { output, warnings, summary, checks }
  })

export const celTestCommand = Command.make(
  "test",
  {
    rules: Flag.String("rules").pipe(
      Flag.withMetavar("FILE"),
      Flag.withDescription("YAML/JSON list of CEL rules, or a ComplianceScanRun manifest (optional with --profile)"),
      Flag.optional
    ),
    objects: Flag.String("objects").pipe(
      Flag.withMetavar("FILE"),
      Flag.withDescription("YAML (multi-document) or JSON manifests (a List as `kubectl get -o json` prints it) of the objects to check, `-` for standard input; repeatable"),
      Flag.atLeast(1)
    ),
    moreObjects: Argument.String("files").pipe(
      Argument.withDescription("More object files (so `--objects a.yaml b.yaml` works)"),
      Argument.variadic()
    ),
    profile: Flag.String("profile").pipe(
      Flag.withDescription("Built-in rule pack to add: default, pod-security-baseline, pod-security-restricted, workload-hardening, rbac or network"),
      Flag.optional
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
  (input) =>
    runCelTest({
      rulesFile: Option.getOrUndefined(input.rules),
      objectFiles: [...input.objects, ...input.moreObjects],
      profile: Option.getOrUndefined(input.profile),
      output: input.output,
      exceptionsFile: Option.getOrUndefined(input.exceptions)
    }).pipe(
      Effect.tap((result) => Effect.andThen(Effect.forEach(result.warnings, (warning) => Console.error(warning)), Console.log(result.output)))
    )
).pipe(
  Command.withDescription("Evaluate CEL rules against manifests offline and print the checks"),
  Command.withExamples([
    { command: "cel test --rules rules.yaml --objects pods.yaml", description: "Try rules on a set of Pods" },
    { command: "cel test --rules run.yaml --objects ns.yaml --objects pods.json -o json", description: "Use a run manifest's rules" },
    { command: "cel test --profile pod-security-restricted --objects pod.yaml", description: "Try a built-in pack" },
    { command: "cel test --profile pod-security-baseline --objects pods.yaml --exceptions exceptions.yaml", description: "See what exceptions waive" },
    { command: "kubectl get pods -A -o json | cel test --profile pod-security-restricted --objects -", description: "Check a cluster's Pods offline" }
  ])
)

/** `cel` with its subcommands, for the operator's main command. */
export const celCommand = Command.make("cel").pipe(
  Command.withDescription("CEL rule tools"),
  Command.withSubcommands([celTestCommand])
)
