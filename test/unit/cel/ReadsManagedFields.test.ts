import { describe, expect, it } from "vitest"
import type { CelRule } from "../../../src/api/ComplianceScanRun.ts"
import { compileRule, type CompiledRule } from "../../../src/backends/cel/CompiledRule.ts"
import { engine, packs } from "./CelTestKit.ts"

/**
 * A scan leaves `metadata.managedFields` out of the listed objects only when no rule may
 * see them: a rule that names them, or uses `object` or a `metadata` value other than by
 * selecting one of its fields, keeps them.
 */
const compiled = (expression: string, messageExpression?: string): CompiledRule => {
  const rule: CelRule = { id: "r", severity: "low", expression, ...(messageExpression === undefined ? {} : { messageExpression }) }
  const result = compileRule((text, resultType) => engine.compile(text, resultType), rule)
  if (!("readsManagedFields" in result)) throw new Error(`${expression}: ${result.message}`)
  return result
}

describe("whether a rule may read metadata.managedFields", () => {
  it("may, when it names them or could see the whole object or metadata", () => {
    for (
      const expression of [
        "has(object.metadata.managedFields)",
        "object.metadata.?managedFields.orValue([]).size() == 0",
        "object.metadata.size() > 3",
        "size(object.metadata) > 3",
        "object.metadata.all(key, key != 'x')",
        "[object.metadata].all(m, m.name != '')",
        "object.?metadata.?name.orValue('') != ''",
        "object['metadata'].name != ''",
        "object.all(key, key != 'spec')",
        "[object].size() == 1",
        "cel.bind(m, object.metadata, m.name != '')",
        "object . metadata . size ( ) > 0"
      ]
    ) {
      expect(compiled(expression).readsManagedFields, expression).toBe(true)
    }
    expect(compiled("true", "string(object.metadata.size())").readsManagedFields).toBe(true)
  })

  it("may not, when it only selects fields", () => {
    for (
      const expression of [
        "object.metadata.name.startsWith('a')",
        "has(object.metadata.labels) && object.metadata.labels.app == 'web'",
        "object.spec.containers.all(c, !has(c.securityContext) || c.securityContext.privileged != true)",
        "namespaceObject.metadata.labels.team != ''",
        "object . metadata . annotations . size() >= 0"
      ]
    ) {
      expect(compiled(expression).readsManagedFields, expression).toBe(false)
    }
    // None of the built-in packs does: their scans never parse managedFields.
    const reading = [...packs.values()].flatMap((pack) => pack.rules).filter((rule) => {
      const result = compileRule((text, resultType) => engine.compile(text, resultType), rule)
      return !("readsManagedFields" in result) || result.readsManagedFields
    })
    expect(reading.map((rule) => rule.id)).toEqual([])
  })
})
