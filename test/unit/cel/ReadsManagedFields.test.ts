import { describe, expect, it } from "vitest"
import type { CelRule } from "../../../src/api/ComplianceScanRun.ts"
import { combinedReads, compileRule, type CompiledRule, objectReads } from "../../../src/backends/cel/CompiledRule.ts"
import { engine, packs } from "./CelTestKit.ts"

/**
 * A scan leaves `metadata.managedFields` out of the listed objects only when no rule may
 * see them: a rule that names them, or uses `object` or a `metadata` value other than by
 * selecting one of its fields, keeps them.
 */
const compiled = (expression: string, messageExpression?: string): CompiledRule => {
  const rule: CelRule = { id: "r", severity: "low", expression, ...(messageExpression === undefined ? {} : { messageExpression }) }
  const result = compileRule((text, resultType) => engine.compile(text, resultType), rule)
  if (!("reads" in result)) throw new Error(`${expression}: ${result.message}`)
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
      expect(compiled(expression).reads.managedFields, expression).toBe(true)
    }
    expect(compiled("true", "string(object.metadata.size())").reads.managedFields).toBe(true)
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
      expect(compiled(expression).reads.managedFields, expression).toBe(false)
    }
    // None of the built-in packs does: their scans never parse managedFields.
    const reading = [...packs.values()].flatMap((pack) => pack.rules).filter((rule) => {
      const result = compileRule((text, resultType) => engine.compile(text, resultType), rule)
      return !("reads" in result) || result.reads.managedFields
    })
    expect(reading.map((rule) => rule.id)).toEqual([])
  })
})

describe("which members of object a rule may read", () => {
  const members = (expression: string, messageExpression?: string) => {
    const read = compiled(expression, messageExpression).reads.members
    return read === undefined ? undefined : [...read].sort()
  }

  it("is the members it selects, in the expression and the message", () => {
    expect(members("object.spec.containers.all(c, c.name != '')")).toEqual(["spec"])
    expect(members("has(object.status) && object.status.phase == 'Running'", "'pod ' + object.metadata.name")).toEqual(["metadata", "status"])
    expect(members("object . spec . replicas > 1 && namespaceObject.metadata.name != ''")).toEqual(["spec"])
    expect(members("cel.bind(s, object.spec, s.replicas > 1)")).toEqual(["spec"])
    expect(members("true")).toEqual([])
  })

  it("is everything when it may see the whole object", () => {
    for (
      const expression of [
        "object.size() > 3",
        "object.all(key, key != 'status')",
        "[object].size() == 1",
        "object['status'] != null",
        "object.?status.hasValue()",
        "cel.bind(o, object, o.status.phase == 'Running')",
        "'object' != ''"
      ]
    ) {
      expect(members(expression), expression).toBeUndefined()
    }
    expect(members("object.spec.replicas > 1", "'keys: ' + string(object.size())")).toBeUndefined()
  })

  it("adds up over the rules of a kind and the variables they may read", () => {
    const spec = objectReads(["object.spec.replicas > 1"])
    const status = objectReads(["object.status.replicas > 1 && object.metadata.managedFields.size() > 0"])
    expect(combinedReads([spec, status])).toEqual({ managedFields: true, members: new Set(["spec", "status", "metadata"]) })
    expect(combinedReads([spec, objectReads(["object.size() > 1"])]).members).toBeUndefined()
    // The built-in packs' variables read the Pod's and the pod template's spec only.
    const packVariables = [...packs.values()].flatMap((pack) => pack.variables.map((variable) => variable.expression))
    expect(packVariables.length).toBeGreaterThan(0)
    expect([...objectReads(packVariables).members ?? ["everything"]]).toEqual(["spec"])
  })
})
