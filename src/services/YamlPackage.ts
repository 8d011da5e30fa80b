import { Effect } from "effect"

/**
 * The `yaml` package (documents with their errors and positions, and printing), loaded the
 * first time a command needs it. It is about 70 modules: a `cel test` or `kube-bench parse`
 * that reads JSON or YAML objects and prints JSON, and the operator itself, start without it.
 * The product's own YAML files (rule packs, the severity table) are read with js-yaml.
 */
export const yamlPackage: Effect.Effect<typeof import("yaml")> = Effect.promise(() => import("yaml"))

/** A command's YAML output: no line folding, no trailing newline (the console adds one). */
export const printYaml = (value: unknown): Effect.Effect<string> =>
  Effect.map(yamlPackage, (yaml) => yaml.stringify(value, { lineWidth: 0 }).trimEnd())
