import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { parse as parseYaml } from "yaml"
import { CelRule } from "../../api/ComplianceScanRun.ts"
import { CelCompileError } from "./CelErrors.ts"
import { type Compile, compileRules } from "./CompiledRule.ts"

/**
 * Built-in rule packs (`spec.profile`): YAML data files in `packs/`, one pack per file,
 * named after the file. A pack may `include` others (restricted builds on baseline).
 * Loaded and compiled when the scanner starts: a broken pack is a defect of the release
 * and must stop the operator from starting, not fail runs one by one.
 */

export const defaultPacksDirectory = join(import.meta.dirname, "packs")

const RulePackFile = Schema.Struct({
  name: Schema.String,
  description: Schema.optionalKey(Schema.String),
  include: Schema.optionalKey(Schema.Array(Schema.String)),
  rules: Schema.Array(CelRule)
})
type RulePackFile = typeof RulePackFile.Type

export interface RulePack {
  readonly name: string
  readonly description: string | undefined
  /** Included packs' rules first, then the pack's own. */
  readonly rules: ReadonlyArray<CelRule>
}

export class RulePackInvalid extends Schema.TaggedError<RulePackInvalid>()("RulePackInvalid", {
  pack: Schema.String,
  message: Schema.String
}) {}

const decodePack = Schema.decodeUnknownEffect(RulePackFile)

const readPackFile = (directory: string, file: string) =>
  Effect.gen(function*() {
    const pack = file.replace(/\.ya?ml$/, "")
    const text = yield* Effect.try({
      try: () => readFileSync(join(directory, file), "utf8"),
      catch: (error) => new RulePackInvalid({ pack, message: `cannot read ${file}: ${String(error)}` })
    })
    const document = yield* Effect.try({
      try: () => parseYaml(text) as unknown,
      catch: (error) => new RulePackInvalid({ pack, message: `${file} is not valid YAML: ${String(error)}` })
    })
    const decoded = yield* decodePack(document).pipe(
      Effect.mapError((error) => new RulePackInvalid({ pack, message: `${file} is not a rule pack: ${error.message}` }))
    )
    if (decoded.name !== pack) {
      return yield* new RulePackInvalid({ pack, message: `${file} declares name "${decoded.name}"; a pack is named after its file` })
    }
    return decoded
  })

const expand = (files: ReadonlyMap<string, RulePackFile>, name: string, trail: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<CelRule>, RulePackInvalid> =>
  Effect.gen(function*() {
    if (trail.includes(name)) return yield* new RulePackInvalid({ pack: trail[0]!, message: `include cycle: ${[...trail, name].join(" -> ")}` })
    const file = files.get(name)
    if (file === undefined) return yield* new RulePackInvalid({ pack: trail.at(-1) ?? name, message: `includes unknown pack "${name}"` })
    const rules: Array<CelRule> = []
    for (const included of file.include ?? []) rules.push(...(yield* expand(files, included, [...trail, name])))
    rules.push(...file.rules)
    const seen = new Set<string>()
    for (const rule of rules) {
      if (seen.has(rule.id)) return yield* new RulePackInvalid({ pack: name, message: `rule id "${rule.id}" appears twice` })
      seen.add(rule.id)
    }
    return rules
  })

/** Every pack in the directory, includes expanded and every rule compiled once. */
export const loadRulePacks = (directory: string, compile: Compile) =>
  Effect.gen(function*() {
    const fileNames = yield* Effect.try({
      try: () => readdirSync(directory).filter((file) => /\.ya?ml$/.test(file)).sort(),
      catch: (error) => new RulePackInvalid({ pack: directory, message: `cannot list rule packs: ${String(error)}` })
    })
    const files = new Map<string, RulePackFile>()
    for (const fileName of fileNames) {
      const file = yield* readPackFile(directory, fileName)
      files.set(file.name, file)
    }
    const packs = new Map<string, RulePack>()
    for (const [name, file] of files) {
      const rules = yield* expand(files, name, [])
      const compiled = compileRules(compile, rules)
      if (compiled instanceof CelCompileError) return yield* new RulePackInvalid({ pack: name, message: compiled.message })
      packs.set(name, { name, description: file.description, rules })
    }
    return packs as ReadonlyMap<string, RulePack>
  })
