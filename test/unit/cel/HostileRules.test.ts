import { describe, expect, it } from "@effect/vitest"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { CelCompileError } from "../../../src/backends/cel/CelErrors.ts"
import { check, checksOf, rule } from "./CelTestKit.ts"
import { restrictedPod } from "./PodFixtures.ts"

/**
 * Rules written to hurt: each must end the right way (a compile error, an error subject, or
 * a cost/time failure naming the rule) quickly. The per-test timeout is the "quickly": a
 * hostile rule that got through would hang far beyond it.
 */
const fast = 5_000

const podWith = (name: string, extra: Record<string, unknown>): KubeObject => {
  const pod = restrictedPod(name)
  return { ...pod, metadata: { ...pod.metadata, ...extra } }
}

const compileError = (expression: string) => {
  try {
    check([rule("hostile", expression)], [restrictedPod()])
  } catch (error) {
    if (error instanceof CelCompileError) return error
    throw error
  }
  throw new Error(`${expression} compiled`)
}

const exceeded = (outcome: ReturnType<typeof check>) => {
  if (outcome._tag !== "Exceeded") throw new Error(`expected the run to be stopped, got ${JSON.stringify(outcome)}`)
  return outcome.error
}

const thousand = Array.from({ length: 1000 }, (_, index) => index)

describe("hostile CEL rules", () => {
  it("catastrophic regex: RE2 matches in linear time instead of backtracking for ever", () => {
    const pod = podWith("a".repeat(60), { annotations: { payload: `${"a".repeat(100_000)}!` } })
    const outcome = check(
      [
        rule("nested-quantifier", "object.metadata.annotations.payload.matches('^(a+)+$')"),
        rule("overlapping-alternation", "!object.metadata.annotations.payload.matches('^(a|aa)+$')"),
        rule("find-all", "object.metadata.annotations.payload.findAll('(a*)*b').size() == 0")
      ],
      [pod]
    )
    expect(checksOf(outcome).map((found) => found.outcome)).toEqual(["fail", "pass", "pass"])
  }, fast)

  it("regex features RE2 does not have (backreferences, lookaround) do not compile", () => {
    const error = compileError("object.metadata.name.matches('^(a+)\\\\1$')")
    expect(error.message).toMatch(/^rule "hostile": expression does not compile at line 1, column 30: invalid RE2 regular expression/)
    expect(compileError("object.metadata.name.find('(?!x)') == ''").field).toBe("expression")
  })

  it("huge comprehension: nested loops are refused once the cost limit is reached", () => {
    const pod = podWith("loops", { annotations: {} })
    const withItems = { ...pod, spec: { ...(pod.spec as object), items: thousand } }
    const error = exceeded(
      check([rule("cubic", "object.spec.items.all(a, object.spec.items.all(b, object.spec.items.all(c, a + b + c >= 0)))")], [withItems])
    )
    expect(error.reason).toBe("CELCostExceeded")
    expect(error.ruleId).toBe("cubic")
    expect(error.message).toBe('rule "cubic" exceeded the cost limit of 1000000 units for one evaluation')
  }, fast)

  it("a cost failure cannot be hidden by error-absorbing operators", () => {
    const pod = { ...restrictedPod("absorb"), spec: { ...(restrictedPod().spec as object), items: thousand } }
    const error = exceeded(
      check([rule("absorbed", "object.spec.items.exists(a, object.spec.items.exists(b, object.spec.items.exists(c, a + b + c < 0))) || true")], [pod])
    )
    expect(error.reason).toBe("CELCostExceeded")
  }, fast)

  it("exponential growth through cel.bind and + is stopped by size charges", () => {
    const doubling = ["b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z"]
    let expression = "z.size() > 0"
    for (const [index, name] of [...doubling].reverse().entries()) {
      const previous = doubling[doubling.length - 2 - index] ?? "a"
      expression = `cel.bind(${name}, ${previous} + ${previous}, ${expression})`
    }
    expression = `cel.bind(a, [1, 2, 3, 4, 5, 6, 7, 8], ${expression})`
    const error = exceeded(check([rule("doubling", expression)], [restrictedPod()]))
    expect(error.reason).toBe("CELCostExceeded")
  }, fast)

  it("the per-run budget stops a rule that is cheap per object but adds up", () => {
    const pods = Array.from({ length: 50 }, (_, index) => ({ ...restrictedPod(`p${index}`), spec: { ...(restrictedPod().spec as object), items: thousand } }))
    const error = exceeded(
      check([rule("adds-up", "object.spec.items.all(a, object.spec.items.exists(b, b == a))")], pods, {
        costLimits: { perEvaluation: 2_000_000, perRun: 5_000_000 }
      })
    )
    expect(error.reason).toBe("CELCostExceeded")
    expect(error.message).toBe('the run exceeded its CEL cost budget of 5000000 units (5000000 per 10,000 objects) while evaluating rule "adds-up"')
  }, fast)

  it("the wall-clock bound stops a slow run with CELTimeout naming the rule", () => {
    const pods = Array.from({ length: 200 }, (_, index) => ({ ...restrictedPod(`p${index}`), spec: { ...(restrictedPod().spec as object), items: thousand } }))
    const error = exceeded(
      check([rule("slow", "object.spec.items.all(a, object.spec.items.exists(b, b == a))")], pods, {
        costLimits: { perEvaluation: 10_000_000, perRun: 1_000_000_000 },
        millis: 100
      })
    )
    expect(error.reason).toBe("CELTimeout")
    expect(error.message).toBe(`the run exceeded its CEL time bound (100 ms of evaluation per 10,000 objects, or the run's timeout) while evaluating rule "slow"`)
  }, fast)

  it("deep nesting and huge expressions do not compile", () => {
    expect(compileError(`${"(".repeat(3000)}true${")".repeat(3000)}`).message).toMatch(/nests deeper than 64 levels/)
    expect(compileError(`${"[".repeat(100)}${"]".repeat(100)}.size() == 1`).message).toMatch(/nests deeper than 64 levels/)
    expect(compileError(`${"!".repeat(5000)}true`).message).toMatch(/too large \(more than 2000 syntax nodes\)/)
    expect(compileError(`object.metadata.name == '${"x".repeat(20_000)}'`).message).toMatch(/characters long; the limit is 10000/)
  }, fast)

  it("type errors: static ones do not compile (with the position), dynamic ones make error subjects", () => {
    const error = compileError("object.metadata.name == 'x' && 1 + 'one' == 2")
    expect(error.message).toBe('rule "hostile": expression does not compile at line 1, column 32: no such overload: int + string')
    expect([error.line, error.column]).toEqual([1, 32])
    const [found] = checksOf(check([rule("dynamic", "object.metadata.name > 5")], [restrictedPod("a"), restrictedPod("b")]))
    expect(found!.outcome).toBe("error")
    expect(found!.subjectCounts).toEqual({ pass: 0, fail: 0, warn: 0, skip: 0, error: 2 })
    expect(found!.subjects![0]!.message).toMatch(/^expression failed: no such overload: dyn<string> > int/)
  })

  it("a rule returning a string: statically a compile error, dynamically an error subject", () => {
    expect(compileError("'yes'").message).toBe('rule "hostile": expression does not compile at line 1, column 1: the expression must evaluate to bool, but its type is string')
    const [found] = checksOf(check([rule("stringly", "object.metadata.name")], [restrictedPod("web")]))
    expect(found!.outcome).toBe("error")
    expect(found!.subjects).toEqual([{ kind: "Pod", name: "web", namespace: "default", outcome: "error", message: "expression must evaluate to bool, got string" }])
  })
})
