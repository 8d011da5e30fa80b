import { describe, expect, it } from "@effect/vitest"
import { makeCelJsEngine } from "../../../src/backends/cel/CelJsEngine.ts"
import { CostMeter } from "../../../src/backends/cel/CostMeter.ts"
import { engine, evaluate, meter, valueOf } from "./CelTestKit.ts"

const pod = {
  metadata: { name: "web-1", namespace: "shop", labels: { app: "web", tier: "frontend" } },
  spec: {
    replicas: 3,
    cpu: 0.5,
    containers: [
      { name: "app", image: "nginx:1.27", ports: [{ containerPort: 80 }, { containerPort: 443 }] },
      { name: "sidecar", image: "envoy:1.30", securityContext: { runAsNonRoot: true } }
    ]
  }
}

describe("CEL engine: Kubernetes semantics", () => {
  it("turns integral JSON numbers into ints so arithmetic and int comparisons work", () => {
    expect(valueOf("object.spec.replicas + 1 == 4", pod)).toBe(true)
    expect(valueOf("object.spec.replicas * 2 == 6 && object.spec.replicas / 2 == 1", pod)).toBe(true)
    expect(valueOf("object.spec.containers[0].ports.all(p, p.containerPort < 1024)", pod)).toBe(true)
    expect(valueOf("object.spec.cpu == 0.5 && object.spec.cpu + 0.5 == 1.0", pod)).toBe(true)
  })

  it("supports has(), the macros and optional syntax", () => {
    expect(valueOf("has(object.metadata.labels) && !has(object.metadata.annotations)", pod)).toBe(true)
    expect(valueOf("object.spec.containers.exists(c, c.name == 'sidecar')", pod)).toBe(true)
    expect(valueOf("object.spec.containers.exists_one(c, c.image.startsWith('nginx'))", pod)).toBe(true)
    expect(valueOf("object.spec.containers.filter(c, has(c.securityContext)).map(c, c.name) == ['sidecar']", pod)).toBe(true)
    expect(valueOf("object.metadata.labels.all(k, k in ['app', 'tier'])", pod)).toBe(true)
    expect(valueOf("object.spec.containers.all(c, c.?securityContext.?runAsNonRoot.orValue(false))", pod)).toBe(false)
    expect(valueOf("object.spec.?securityContext.?runAsNonRoot.orValue(true)", pod)).toBe(true)
    expect(valueOf("cel.bind(names, object.spec.containers.map(c, c.name), names.size() == 2 && 'app' in names)", pod)).toBe(true)
  })

  it("keeps the meaning of every operator in the metered rewrite it runs", () => {
    // Each would be false if the rewrite lost a parenthesis or an operand.
    for (const expression of [
      "2 - (3 - 4) == 3 && (1 + 2) * 3 == 9 && 10 / (5 / 5) == 10 && 7 % (5 % 3) == 1 && -(2 - 3) == 1 && - -1 == 1",
      "!(true && false) && (true || false) && !false == true && (false ? 1 : 2) + 1 == 3",
      "((true ? false : true) ? false : true) && (1 in [1]) == true && 1 in [1] == true",
      "'a' + 'b' + ('c' + 'd') == 'abcd' && [1] + [2] + [3] == [1, 2, 3] && {'a': 1 + 1}['a'] == 2",
      "[1, 2].map(x, x + 1) == [2, 3] && cel.bind(x, 1 + 1, x * x) == 4 && [[1]][0][0] == 1",
      "(object.metadata.name + '-x').matches('^web-1-x$') && matches(object.metadata.name, 'web') && object.metadata.?labels[?'app'].orValue('') == 'web'"
    ]) expect([expression, valueOf(expression, pod)]).toEqual([expression, true])
  })

  it("gives messageExpressions the object and namespaceObject", () => {
    const result = evaluate("object.metadata.name + ' in ' + namespaceObject.metadata.name", pod, "string", { metadata: { name: "shop" } })
    expect(result).toEqual({ _tag: "Value", value: "web-1 in shop" })
  })

  it("reports an evaluation error with the engine's message, not an exception", () => {
    expect(evaluate("object.spec.containers.all(c, c.securityContext.runAsNonRoot)", pod)).toEqual({
      _tag: "Error",
      message: "No such key: securityContext"
    })
    expect(evaluate("object.metadata.name + 1 > 0", pod)).toMatchObject({ _tag: "Error", message: expect.stringMatching(/no such overload/) })
  })

  it("fails compilation with the position of a syntax error", () => {
    const compiled = engine.compile("object.spec.containers.all(c,\n  c.name == )", "bool")
    expect(compiled).toMatchObject({ _tag: "Failed", failure: { position: { line: 2, column: 13 } } })
  })

  it("fails compilation of static type errors and of expressions that cannot be bool (or string)", () => {
    expect(engine.compile("1 + 'a' == 'b'", "bool")).toMatchObject({ _tag: "Failed", failure: { message: "no such overload: int + string" } })
    expect(engine.compile("object.metadata.name.size()", "bool")).toMatchObject({
      _tag: "Failed",
      failure: { message: "the expression must evaluate to bool, but its type is int", position: { line: 1, column: 1 } }
    })
    expect(engine.compile("'pod ' + object.metadata.name", "string")._tag).toBe("Compiled")
    expect(engine.compile("object.spec.replicas > 1", "string")).toMatchObject({ _tag: "Failed" })
    expect(engine.compile("unknownVariable == 1", "bool")).toMatchObject({ _tag: "Failed", failure: { message: expect.stringMatching(/unknownVariable/) } })
  })

  it("rejects regular expressions that are not RE2 at compile time, where the pattern is", () => {
    const compiled = engine.compile("object.metadata.name.matches('^(?=web)')", "bool")
    expect(compiled).toMatchObject({
      _tag: "Failed",
      failure: { message: expect.stringMatching(/invalid RE2 regular expression/), position: { line: 1, column: 30 } }
    })
    expect(engine.compile("object.metadata.name.find('(a)\\\\1') == ''", "bool")._tag).toBe("Failed")
    expect(engine.compile("matches(object.metadata.name, '[')", "bool")._tag).toBe("Failed")
  })

  it("enforces the static limits on length, size and nesting", () => {
    const small = makeCelJsEngine({ maxExpressionLength: 100, maxAstNodes: 20, maxNestingDepth: 8, maxListLiteralElements: 5, maxMapLiteralEntries: 5 })
    expect(small.compile(`'${"x".repeat(120)}' == ''`, "bool")).toMatchObject({ failure: { message: "the expression is 128 characters long; the limit is 100" } })
    expect(small.compile("1 == 1 && 2 == 2 && 3 == 3 && 4 == 4 && 5 == 5 && 6 == 6", "bool")).toMatchObject({
      failure: { message: "the expression is too large (more than 20 syntax nodes)" }
    })
    expect(small.compile(`${"(".repeat(12)}true${")".repeat(12)}`, "bool")).toMatchObject({
      failure: { message: "the expression nests deeper than 8 levels" }
    })
    expect(small.compile("size([1, 2, 3, 4, 5, 6]) > 0", "bool")).toMatchObject({ failure: { message: "a list literal has more than 5 elements" } })
  })

  it("evaluates a program only with the engine that compiled it", () => {
    const compiled = makeCelJsEngine().compile("true", "bool")
    if (compiled._tag !== "Compiled") throw new Error("does not compile")
    expect(() => engine.evaluate(compiled.program, { object: {}, namespaceObject: null }, meter())).toThrow(/engine that compiled it/)
  })

  it("charges every evaluation to the meter", () => {
    const compiled = engine.compile("object.spec.containers.all(c, c.name != '')", "bool")
    if (compiled._tag !== "Compiled") throw new Error("does not compile")
    const costs = new CostMeter({ perEvaluation: 1_000, perRun: 1_000_000 }, { start: Date.now(), millis: 10_000 })
    for (let index = 0; index < 10; index++) engine.evaluate(compiled.program, { object: engine.fromJson(pod), namespaceObject: null }, costs)
    // Per evaluation: one unit, plus one for the comprehension and one per container it iterates.
    expect(costs.used).toBe(40)
  })
})
