import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import type { CelActivation, CelEngine, CelEvaluation, CelResultType } from "../../../src/backends/cel/CelEngine.ts"
import { defaultCelEngineLimits, isCompiledToJs, makeCelJsEngine } from "../../../src/backends/cel/CelJsEngine.ts"
import { compileVariables, withVariables } from "../../../src/backends/cel/RuleVariables.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { seededRandom } from "../../../sim/cluster/SeededRandom.ts"
import { meter, packs, packVariables } from "./CelTestKit.ts"
import { namespace, restrictedPod, seededPod } from "./PodFixtures.ts"

/**
 * The engine evaluates with JavaScript compiled from the expression (JsCompiler) and hands
 * anything it is not sure of to cel-js. The answer must never depend on the path: every
 * expression of every pack and user-style expressions over seeded random and hostile objects
 * give the same value or the same error, and cost the same, with it and without it.
 */

let fallBacks = 0
const compiled = makeCelJsEngine(defaultCelEngineLimits, { compiledJs: true, onFallBack: () => fallBacks++ })
const interpreted = makeCelJsEngine(defaultCelEngineLimits, { compiledJs: false })

/** Expressions outside the packs that use every part of the compiled subset, and its edges. */
const userExpressions: ReadonlyArray<readonly [string, CelResultType]> = [
  ["size(object.metadata.name) > 3 && object.metadata.name.size() < 100", "bool"],
  ["size(object.metadata.name)", "dyn"],
  ["'constructor' in object.metadata.labels || 'toString' in object.metadata.labels", "bool"],
  ["has(object.metadata.labels.constructor) || has(object.metadata.labels.__proto__)", "bool"],
  ["object.metadata.labels.constructor == 'x'", "bool"],
  ["object.metadata.labels.toString", "dyn"],
  ["object.metadata.labels", "dyn"],
  ["object.metadata", "dyn"],
  ["object.spec.containers.filter(c, true)", "dyn"],
  ["object.spec.containers.all(c, true) && object.spec.containers.exists(c, c.name == 'app')", "bool"],
  ["object.spec.containers.exists(c, c.name == 'app')", "bool"],
  ["object.spec.containers.exists_one(c, c.name.startsWith('side'))", "bool"],
  ["object.spec.containers.filter(c, has(c.ports)).size() >= 1", "bool"],
  ["object.spec.containers.map(c, c.name)", "dyn"],
  ["object.spec.containers.map(c, c.image.endsWith(':latest'))", "dyn"],
  ["object.metadata.labels.all(k, k.startsWith('a') || object.metadata.labels[k] != '')", "bool"],
  ["has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.contains('apparmor'))", "bool"],
  ["object.spec.securityContext.runAsUser >= 1000", "bool"],
  ["object.spec.securityContext.runAsUser == 1000.0 || object.spec.securityContext.runAsUser != 65534.0", "bool"],
  ["object.spec.securityContext.runAsUser < 0 || object.spec.securityContext.runAsUser <= 65534", "bool"],
  ["object.spec.securityContext.runAsUser > 999 && object.spec.securityContext.runAsUser + 1 > 1000", "bool"],
  ["object.spec.containers[0].name == 'app' && object.spec.containers[1].name != 'x'", "bool"],
  ["object.metadata['name'] == object.metadata.name", "bool"],
  ["namespaceObject == null || namespaceObject.metadata.name == 'shop'", "bool"],
  ["namespaceObject != null && namespaceObject.metadata.labels.owner != ''", "bool"],
  ["object.spec.containers + object.spec.containers", "dyn"],
  ["object.metadata.name + '-x'", "dyn"],
  ["9223372036854775807 + size(object.spec.containers) > 0", "bool"],
  ["object.spec.hostNetwork ? 'host' : 'pod'", "dyn"],
  ["object.spec.hostNetwork == true || object.spec.hostPID == false", "bool"],
  ["'ALL' in object.spec.containers[0].securityContext.capabilities.drop", "bool"],
  ["object.spec.containers.all(c, !has(c.ports) || c.ports.all(p, p.containerPort > 1000))", "bool"],
  ["object.spec.containers.exists(c, has(c.securityContext) && c.securityContext.privileged)", "bool"],
  ["object.spec.containers.all(c, c.securityContext.runAsNonRoot)", "bool"],
  ["object.metadata.labels.team == 'payments'", "bool"],
  ["object.spec.containers.all(c, c.name in ['app', 'sidecar-1', 'sidecar-2'])", "bool"],
  ["[object.metadata.name, 'x'].exists(n, n == 'x')", "bool"],
  ["object.metadata.name == '\"); throw 1; (\"' || object.metadata.name == '\\u2028\\\\'", "bool"],
  ["object.spec.containers.map(c, c.name).filter(n, n != 'app').all(n, n.contains('-'))", "bool"],
  ["object.spec.nodeSelector.all(k, k == 'x')", "bool"],
  ["variables.containers.all(c, c.name != '')", "bool"],
  ["size(variables.containers) == size(object.spec.containers)", "bool"]
]

/** Values JSON never holds as CEL sees them from the packs: nulls, wrong types, doubles, hostile keys, surrogates. */
const hostile = (pod: KubeObject, variant: number): KubeObject => {
  const copy = structuredClone(pod) as Record<string, any>
  const spec = copy.spec
  const first = spec.containers[0]
  switch (variant % 14) {
    case 0:
      copy.metadata.labels = { constructor: "x", toString: "y", ["__proto__"]: "z", app: "" }
      break
    case 13:
      first.constructor = "x"
      copy.metadata.annotations = { note: { constructor: 1 } }
      break
    case 12:
      copy.metadata.labels = JSON.parse('{"toString": "y", "__proto__": "z", "hasOwnProperty": "w", "app": "a"}')
      break
    case 1:
      first.securityContext = { privileged: "true", runAsNonRoot: 1, capabilities: { drop: [1, "ALL"], add: null } }
      break
    case 2:
      spec.securityContext = { runAsUser: 1000.5, seccompProfile: { type: 7 } }
      break
    case 3:
      copy.metadata.name = "pod-\ud83d\ude00-\ud800"
      break
    case 4:
      spec.containers = { app: first }
      break
    case 5:
      spec.volumes = [null, { name: "h", hostPath: null }]
      break
    case 6:
      spec.securityContext = { runAsUser: 1e30 }
      break
    case 7:
      copy.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/app": 5, constructor: "unconfined" }
      break
    case 8:
      spec.hostNetwork = "yes"
      spec.nodeSelector = { x: "1" }
      break
    case 9:
      first.securityContext = []
      break
    case 10:
      first.ports = [{ containerPort: 80.5 }, { containerPort: "8080" }]
      break
    case 11:
      spec.initContainers = "none"
      break
  }
  return copy as KubeObject
}

/** A CEL value as text that tells every kind apart (bigint from double, list from map). */
const shown = (value: unknown): string =>
  JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === "bigint") return `${item}n`
    if (typeof item === "number") return `${item}d`
    const prototype: unknown = item !== null && typeof item === "object" && !Array.isArray(item) ? Object.getPrototypeOf(item) : null
    if (prototype !== null && prototype !== Object.prototype) return `<${(prototype as { constructor: { name: string } }).constructor.name}:${Object.prototype.toString.call(item)}>`
    return item
  })

const outcome = (evaluation: CelEvaluation): string =>
  evaluation._tag === "Value" ? `value ${shown(evaluation.value)}` : evaluation._tag === "Error" ? `error ${evaluation.message}` : `exhausted ${evaluation.exhaustion}`

const programOf = (engine: CelEngine, expression: string, resultType: CelResultType) => {
  const result = engine.compile(expression, resultType)
  if (result._tag === "Failed") throw new Error(`${expression}: ${result.failure.message}`)
  return result.program
}

const variablesOf = (engine: CelEngine) => {
  const variables = compileVariables((expression, resultType) => engine.compile(expression, resultType), packVariables)
  if (typeof variables === "string") throw new Error(variables)
  return variables
}

const packExpressions = (): ReadonlyArray<readonly [string, CelResultType]> =>
  [...packs.values()].flatMap((pack) => [
    ...pack.rules.flatMap((rule) => [[rule.expression, "bool"] as const, ...(rule.messageExpression === undefined ? [] : [[rule.messageExpression, "string"] as const])]),
    ...pack.variables.map((variable) => [variable.expression, "dyn"] as const)
  ])

describe("compiled JavaScript (JsCompiler)", () => {
  it("compiles every rule and variable of every built-in pack", () => {
    const rules = [...packs.values()].flatMap((pack) => [...pack.rules.map((rule) => rule.expression), ...pack.variables.map((variable) => variable.expression)])
    const notCompiled = rules.filter((expression) => !isCompiledToJs(programOf(compiled, expression, "dyn")))
    expect(notCompiled).toEqual([])
    expect(rules.length).toBeGreaterThan(60)
    // Outside the subset (a double operation, a library function): cel-js alone, never a guess.
    expect(isCompiledToJs(programOf(compiled, "object.spec.replicas * 2 > 1", "bool"))).toBe(false)
    expect(isCompiledToJs(programOf(compiled, "quantity(object.spec.memory).isInteger()", "bool"))).toBe(false)
    expect(isCompiledToJs(programOf(interpreted, "true", "bool"))).toBe(false)
  })

  it("gives the same value, error and cost as cel-js for every expression on every object", () => {
    const next = seededRandom(20261206)
    const random = Array.from({ length: 240 }, (_, index) => seededPod(next, index))
    const objects = [restrictedPod("compliant", "shop"), ...random, ...random.slice(0, 120).map(hostile)]
    const namespaces = new Map([namespace("shop", { owner: "payments" }), namespace("ops")].map((ns) => [ns.metadata.name, ns]))
    const expressions = [...packExpressions(), ...userExpressions]
    const engines = [compiled, interpreted].map((engine) => ({
      engine,
      programs: expressions.map(([expression, resultType]) => programOf(engine, expression, resultType)),
      variables: variablesOf(engine),
      costs: meter()
    }))

    const disagreements: Array<string> = []
    const tally = { compiledValues: 0, fellBack: 0, errors: 0, costCompared: 0 }
    for (const object of objects) {
      const namespaceObject = namespaces.get(object.metadata.namespace ?? "")
      const [fast, slow] = engines.map(({ engine, variables, costs }) => {
        costs.admitObject()
        const activation: CelActivation = { object: engine.fromJson(object), namespaceObject: namespaceObject === undefined ? null : engine.fromJson(namespaceObject) }
        return withVariables(engine, variables, activation, costs)
      })
      expressions.forEach(([expression], index) => {
        const before = { fallBacks, fast: engines[0]!.costs.used, slow: engines[1]!.costs.used }
        const [left, right] = [compiled.evaluate(engines[0]!.programs[index]!, fast!, engines[0]!.costs), interpreted.evaluate(engines[1]!.programs[index]!, slow!, engines[1]!.costs)]
        const fellBack = fallBacks > before.fallBacks
        if (fellBack) tally.fellBack++
        else if (isCompiledToJs(engines[0]!.programs[index]!)) tally.compiledValues++
        if (right._tag === "Error") tally.errors++
        if (outcome(left) !== outcome(right)) disagreements.push(`${expression} on ${object.metadata.name}: compiled ${outcome(left)}, cel-js ${outcome(right)}`)
        // A fallback keeps what the compiled attempt charged; otherwise the costs are the same.
        if (!fellBack) {
          tally.costCompared++
          const [fastCost, slowCost] = [engines[0]!.costs.used - before.fast, engines[1]!.costs.used - before.slow]
          if (fastCost !== slowCost) disagreements.push(`${expression} on ${object.metadata.name}: cost ${fastCost} compiled, ${slowCost} cel-js`)
        }
      })
    }
    expect(disagreements.slice(0, 20)).toEqual([])
    // The comparison proves something only if both paths ran often and errors were among the
    // answers (60,000 evaluations: 18,000 errors, pack rules of other kinds on Pods among them).
    const evaluations = objects.length * expressions.length
    expect(tally.compiledValues).toBeGreaterThan((evaluations - tally.errors) * 0.8)
    expect(tally.fellBack).toBeGreaterThan(5_000)
    expect(tally.errors).toBeGreaterThan(5_000)
    expect(tally.costCompared).toBeGreaterThan(evaluations * 0.6)
  })

  it("reads string literals as data, never as code", () => {
    const expression = "'\"); globalThis.compromised = true; (\"' + '`${1}`' + '\\u2028'"
    const value = compiled.evaluate(programOf(compiled, expression, "string"), { object: {}, namespaceObject: null }, meter())
    expect(value).toEqual({ _tag: "Value", value: '"); globalThis.compromised = true; ("`${1}`\u2028' })
    expect((globalThis as Record<string, unknown>).compromised).toBeUndefined()
  })

  it("leaves everything to cel-js where Node forbids code generation", () => {
    const engineModule = new URL("../../../src/backends/cel/CelJsEngine.ts", import.meta.url).href
    const script = `
      const { makeCelJsEngine, isCompiledToJs } = await import(${JSON.stringify(engineModule)})
      const engine = makeCelJsEngine()
      const compiled = engine.compile("object.spec.containers.all(c, has(c.securityContext))", "bool")
      const meter = { startEvaluation() {}, charge() {}, exhaustion: undefined }
      const value = engine.evaluate(compiled.program, { object: { spec: { containers: [{ securityContext: {} }] } }, namespaceObject: null }, meter)
      console.log(JSON.stringify({ compiledToJs: isCompiledToJs(compiled.program), value }))`
    const child = spawnSync(process.execPath, ["--disallow-code-generation-from-strings", "--input-type=module", "--eval", script], { encoding: "utf8" })
    expect(child.stderr).not.toMatch(/Error/)
    expect(JSON.parse(child.stdout)).toEqual({ compiledToJs: false, value: { _tag: "Value", value: true } })
  })
})
