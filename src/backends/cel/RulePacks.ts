import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { CORE_SCHEMA, load as loadYaml } from "js-yaml"
import { CelRule } from "../../api/ComplianceScanRun.ts"
import { CelCompileError } from "./CelErrors.ts"
import { type Compile, compileRules } from "./CompiledRule.ts"
import { compileVariables, renameVariables, type RuleVariable, variableReferences } from "./RuleVariables.ts"

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
  /** Every Pod rule of another pack, applied to the pod templates of these workload kinds. */
  podTemplatesOf: Schema.optionalKey(Schema.Struct({ pack: Schema.String, resources: Schema.Array(Schema.String) })),
  /** Shared by the rules of every run of the pack (RuleVariables), as `variables.<name>`. */
  variables: Schema.optionalKey(Schema.Array(Schema.Struct({ name: Schema.String.check(Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]*$/u)), expression: Schema.String }))),
  rules: Schema.optionalKey(Schema.Array(CelRule))
})
type RulePackFile = typeof RulePackFile.Type

export interface RulePack {
  readonly name: string
  readonly description: string | undefined
  /** Included packs' rules first, then the pack's own. */
  readonly rules: ReadonlyArray<CelRule>
  /** Included packs' variables first, then the pack's own. */
  readonly variables: ReadonlyArray<RuleVariable>
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
      try: () => loadYaml(text, { schema: CORE_SCHEMA, filename: file }),
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

/**
 * A Pod expression rewritten for the pod template of a workload (`spec.template`): the Pod's
 * spec and annotations are the template's, messages name the workload, and a Pod variable
 * `variables.<name>` is the template's own `variables.template<Name>` (`templateVariable`).
 */
const onTemplate = (expression: string) =>
  renameVariables(expression, templateVariableName)
    .replaceAll("object.spec", "object.spec.template.spec")
    .replaceAll("object.metadata.annotations", "object.spec.template.metadata.annotations")
    .replaceAll("pod ' + object.metadata.name", "pod template of ' + object.kind + ' ' + object.metadata.name")

/** `containers` -> `templateContainers`: a Pod variable and its pod-template copy can be in one rule set. */
const templateVariableName = (name: string) => `template${name.charAt(0).toUpperCase()}${name.slice(1)}`

/** A Pod variable rewritten for pod templates: evaluated once per workload, as the Pod's is once per Pod. */
const templateVariable = (variable: RuleVariable): RuleVariable => ({
  name: templateVariableName(variable.name),
  expression: onTemplate(variable.expression)
})

/** A Pod rule rewritten for the pod templates of workloads (`onTemplate`); ids start with `workload-` instead of `pss-`. */
export const podTemplateRule = (rule: CelRule, resources: ReadonlyArray<string>): CelRule => ({
  ...rule,
  id: rule.id.replace(/^pss-/u, "workload-"),
  title: `${rule.title ?? rule.id} (pod templates)`,
  match: { ...rule.match, apiGroups: ["apps"], resources },
  expression: onTemplate(rule.expression),
  ...(rule.messageExpression === undefined ? {} : { messageExpression: onTemplate(rule.messageExpression) })
})

interface ExpandedPack {
  readonly rules: ReadonlyArray<CelRule>
  readonly variables: ReadonlyArray<RuleVariable>
}

const expand = (files: ReadonlyMap<string, RulePackFile>, name: string, trail: ReadonlyArray<string>): Effect.Effect<ExpandedPack, RulePackInvalid> =>
  Effect.gen(function*() {
    if (trail.includes(name)) return yield* new RulePackInvalid({ pack: trail[0]!, message: `include cycle: ${[...trail, name].join(" -> ")}` })
    const file = files.get(name)
    if (file === undefined) return yield* new RulePackInvalid({ pack: trail.at(-1) ?? name, message: `includes unknown pack "${name}"` })
    const rules: Array<CelRule> = []
    const variables: Array<RuleVariable> = []
    const addVariables = (added: ReadonlyArray<RuleVariable>) =>
      Effect.forEach(added, (variable) => {
        const known = variables.find((candidate) => candidate.name === variable.name)
        if (known === undefined) return Effect.sync(() => void variables.push(variable))
        return known.expression === variable.expression
          ? Effect.void
          : Effect.fail(new RulePackInvalid({ pack: name, message: `variable "${variable.name}" is defined twice, differently` }))
      }, { discard: true })
    for (const included of file.include ?? []) {
      const expanded = yield* expand(files, included, [...trail, name])
      rules.push(...expanded.rules)
      yield* addVariables(expanded.variables)
    }
    if (file.podTemplatesOf !== undefined) {
      const { pack, resources } = file.podTemplatesOf
      const expanded = yield* expand(files, pack, [...trail, name])
      const podRules = expanded.rules.filter((rule) => rule.match?.resources?.includes("pods") ?? true)
      rules.push(...podRules.map((rule) => podTemplateRule(rule, resources)))
      yield* addVariables(expanded.variables.map(templateVariable))
    }
    rules.push(...(file.rules ?? []))
    yield* addVariables(file.variables ?? [])
    const seen = new Set<string>()
    for (const rule of rules) {
      if (seen.has(rule.id)) return yield* new RulePackInvalid({ pack: name, message: `rule id "${rule.id}" appears twice` })
      seen.add(rule.id)
      const unknown = [rule.expression, rule.messageExpression ?? ""].flatMap(variableReferences).filter((reference) => !variables.some((variable) => variable.name === reference))
      if (unknown.length > 0) return yield* new RulePackInvalid({ pack: name, message: `rule "${rule.id}" reads undefined variables: ${[...new Set(unknown)].join(", ")}` })
    }
    return { rules, variables }
  })

/**
 * Every pack in the directory, includes expanded; the rules and variables of each pack
 * `validated` picks compiled once, so a broken pack fails here (the operator checks every
 * pack at startup; `cel test` only the one it runs, about 0.1 s less per start).
 */
export const loadRulePacks = (directory: string, compile: Compile, validated: (pack: string) => boolean = () => true) =>
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
      const { rules, variables } = yield* expand(files, name, [])
      packs.set(name, { name, description: file.description, rules, variables })
      if (!validated(name)) continue
      const compiled = compileRules(compile, rules)
      if (compiled instanceof CelCompileError) return yield* new RulePackInvalid({ pack: name, message: compiled.message })
      const compiledVariables = compileVariables(compile, variables)
      if (typeof compiledVariables === "string") return yield* new RulePackInvalid({ pack: name, message: compiledVariables })
    }
    return packs as ReadonlyMap<string, RulePack>
  })
