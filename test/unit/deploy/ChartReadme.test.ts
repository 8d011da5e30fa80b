import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { chartDir } from "./DeployFiles.ts"

const values = parse(readFileSync(join(chartDir, "values.yaml"), "utf8"))
const schema = JSON.parse(readFileSync(join(chartDir, "values.schema.json"), "utf8"))
const readme = readFileSync(join(chartDir, "README.md"), "utf8")

type SchemaNode = { readonly $ref?: string; readonly properties?: Record<string, SchemaNode> }
const resolve = (node: SchemaNode | undefined): SchemaNode | undefined =>
  node?.$ref === undefined ? node : schema.definitions[node.$ref.split("/").at(-1)!]

/**
 * Every value of values.yaml with its default: a value the schema describes field by field
 * is walked into; anything else (a list, a free-form map such as resources) is one row.
 */
const documentedValues = (object: Record<string, unknown>, node: SchemaNode, prefix = ""): Array<[string, string]> =>
  Object.entries(object).flatMap(([key, value]) => {
    const child = resolve(node.properties?.[key])
    return child?.properties !== undefined && value !== null && typeof value === "object" && !Array.isArray(value)
      ? documentedValues(value as Record<string, unknown>, child, `${prefix}${key}.`)
      : [[`${prefix}${key}`, JSON.stringify(value)] as [string, string]]
  })

const tableRows = [...readme.matchAll(/^\| `([^`]+)` \| `([^`]*)` \|.*\|$/gmu)].map((match) => ({ path: match[1]!, default: match[2]! }))

describe("the chart's README", () => {
  it("lists every value of values.yaml with its default, and nothing else", () => {
    const expected = documentedValues(values, schema)
    expect(expected.length).toBeGreaterThan(60)
    expect(tableRows.map((row) => [row.path, row.default])).toEqual(expected)
  })

  it("documents every value the schema knows", () => {
    const documented = new Set(tableRows.map((row) => row.path.split(".")[0]))
    const known = Object.keys(schema.properties).filter((key) => key !== "global")
    expect([...documented].sort()).toEqual(known.sort())
  })
})
