import { request } from "node:https"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import type { CelRule } from "../../src/api/ComplianceScanRun.ts"
import { kindsOfRule } from "../../src/backends/cel/CelKinds.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { compileVariables, variableReferences, withVariables } from "../../src/backends/cel/RuleVariables.ts"
import { engine, meter, packs, packVariables } from "../unit/cel/CelTestKit.ts"
import { kindPackTable } from "../unit/cel/KindFixtures.ts"
import { samplePods, workloadOf } from "../unit/cel/PodFixtures.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"

/**
 * The Kubernetes CEL implementation as the oracle: every built-in pack rule (except those
 * reading `networkPolicies`, which admission has no such variable for) becomes a
 * ValidatingAdmissionPolicy with the same expression, bound with `validationActions:
 * [Warn]`; sample objects of each kind are created with server-side dry-run, and the
 * warnings say the API server's verdict (true: none; false: the policy's message; error:
 * any other warning of the policy). The backend evaluates the same rule on the object the
 * dry run returned (defaults applied, as admission saw it) and must agree.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let namespace: string
let namespaceObject: Json

const falseMarker = "ORACLE-VERDICT-FALSE"
const probeName = "oracle-probe"
const policyName = (index: number) => `cel-oracle-${index}`

/** Rules whose policy the API server refused to create, with its reason. */
const refused = new Map<string, string>()
const rules: ReadonlyArray<CelRule> = [...new Map([...packs.values()].flatMap((pack) => pack.rules).map((rule) => [rule.id, rule])).values()]
  .filter((rule) => !/\bnetworkPolicies\b/u.test(rule.expression))

/** The packs' variables a rule reads. */
const variablesOf = (rule: CelRule) => packVariables.filter((variable) => variableReferences(rule.expression).includes(variable.name))

/** POST with dry-run; the object the server would store and the warnings it sent. */
const dryRunCreate = (path: string, object: Json) =>
  new Promise<{ readonly status: number; readonly body: Json; readonly warnings: ReadonlyArray<string> }>((resolve, reject) => {
    const server = new URL(cluster.server)
    const body = JSON.stringify(object)
    const req = request(
      {
        method: "POST",
        host: server.hostname,
        port: server.port,
        path: `${path}?dryRun=All`,
        ca: cluster.caPem,
        headers: { authorization: `Bearer ${cluster.adminToken}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) }
      },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () => {
          const header = response.headers.warning
          const warnings = header === undefined ? [] : Array.isArray(header) ? header : [header]
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Json, warnings })
        })
        response.on("error", reject)
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const collectionPath = (object: Json, kindPlural: string, namespaced: boolean) => {
  const apiVersion = String(object.apiVersion)
  const base = apiVersion === "v1" ? "/api/v1" : `/apis/${apiVersion}`
  return `${base}${namespaced ? `/namespaces/${namespace}` : ""}/${kindPlural}`
}

/** The objects to judge, each with where it is created. */
const samples = (): ReadonlyArray<{ readonly object: Json; readonly plural: string; readonly namespaced: boolean }> => {
  // Cluster-scoped names get a suffix: some (cluster-admin, view) exist in every cluster.
  const place = (object: KubeObject, plural: string, namespaced: boolean) => ({
    object: { ...object, metadata: { ...object.metadata, ...(namespaced ? { namespace } : { name: `${object.metadata.name}-oracle` }) } } as Json,
    plural,
    namespaced
  })
  const rbacPlural: Record<string, readonly [string, boolean]> = {
    ClusterRole: ["clusterroles", false],
    Role: ["roles", true],
    ClusterRoleBinding: ["clusterrolebindings", false],
    RoleBinding: ["rolebindings", true],
    Service: ["services", true],
    Ingress: ["ingresses", true],
    NetworkPolicy: ["networkpolicies", true]
  }
  const kindObjects = Object.values(kindPackTable).flatMap(({ pass, fail }) => [...pass, ...fail])
  // What the API server refuses in the fixtures: Linux-only fields on Windows pods, a
  // projected token without a ServiceAccount name, two containers on one host port.
  const admissible = (pod: KubeObject): KubeObject => {
    const spec = structuredClone(pod.spec) as Json
    spec.volumes = (spec.volumes ?? []).filter((volume: Json) => volume.projected === undefined)
    if (spec.hostNetwork === true) for (const container of spec.containers.slice(1)) delete container.ports
    return { ...pod, spec }
  }
  const pods = samplePods.filter((pod) => (pod.spec as Json | undefined)?.os?.name !== "windows").map(admissible)
  return [
    ...pods.map((pod) => place(pod, "pods", true)),
    ...pods.map((pod) => place(workloadOf("Deployment", pod), "deployments", true)),
    ...pods.slice(0, 3).map((pod) => place(workloadOf("DaemonSet", pod), "daemonsets", true)),
    ...kindObjects.map((object) => place(object, ...rbacPlural[String(object.kind)]!))
  ]
}

beforeAll(async () => {
  admin = connectAdmin(cluster)
  namespace = await createNamespace(admin, "cel-oracle")
  namespaceObject = await admin.get(`/api/v1/namespaces/${namespace}`)
  for (const [index, rule] of rules.entries()) {
    const kinds = kindsOfRule(rule)
    if (typeof kinds === "string") throw new Error(kinds)
    const created = await admin.create("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: policyName(index) },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: kinds.map((kind) => ({
            apiGroups: [kind.group],
            apiVersions: [kind.apiVersion.split("/").at(-1)!],
            resources: [kind.plural],
            operations: ["CREATE"]
          }))
        },
        // The pack's variables the rule reads, as the policy's own (the same syntax and semantics).
        ...(variablesOf(rule).length === 0 ? {} : { variables: variablesOf(rule) }),
        validations: [
          { expression: `object.metadata.name != '${probeName}'`, message: `PROBE ${policyName(index)}` },
          { expression: rule.expression, message: falseMarker }
        ]
      }
    }).then(() => true, (error: Error) => {
      // Admission's static cost estimate may refuse an expression the backend runs (docs/cel.md, "Bounded cost").
      refused.set(rule.id, error.message)
      return false
    })
    if (!created) continue
    await admin.create("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings", {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: policyName(index) },
      spec: {
        policyName: policyName(index),
        validationActions: ["Warn"],
        matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } }
      }
    })
  }
  // Policies are loaded asynchronously: wait until a probe of each kind hears from every policy on it.
  const probes = new Map(samples().map((sample) => [sample.plural, sample]))
  for (const sample of probes.values()) {
    const expected = rules.flatMap((rule, index) => {
      if (refused.has(rule.id)) return []
      const kinds = kindsOfRule(rule)
      return typeof kinds !== "string" && kinds.some((kind) => kind.plural === sample.plural) ? [`PROBE ${policyName(index)}`] : []
    })
    const probe = { ...sample.object, metadata: { ...sample.object.metadata, name: probeName } }
    let last = ""
    await eventually(
      async () => {
        const answer = await dryRunCreate(collectionPath(probe, sample.plural, sample.namespaced), probe)
        last = `${answer.status} ${answer.warnings.join(" | ")} ${answer.status === 201 ? "" : JSON.stringify(answer.body)}`
        return expected.every((marker) => answer.warnings.some((warning) => warning.includes(marker))) ? true : undefined
      },
      { what: `every policy on ${sample.plural} to be active`, timeoutMillis: 60_000 }
    ).catch((error: Error) => {
      throw new Error(`${error.message}; expected ${expected.join(", ")}; last answer: ${last}`)
    })
  }
})

afterAll(async () => {
  for (const index of rules.keys()) {
    if (refused.has(rules[index]!.id)) continue
    await admin.remove(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${policyName(index)}`)
    await admin.remove(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${policyName(index)}`)
  }
  await deleteNamespace(admin, namespace)
  admin.close()
})

type Verdict = "true" | "false" | "error"

const ours = (rule: CelRule, object: Json): Verdict => {
  const compiled = engine.compile(rule.expression, "bool")
  if (compiled._tag === "Failed") throw new Error(`${rule.id}: ${compiled.failure.message}`)
  const variables = compileVariables((expression, resultType) => engine.compile(expression, resultType), variablesOf(rule))
  if (typeof variables === "string") throw new Error(`${rule.id}: ${variables}`)
  const activation = { object: engine.fromJson(object), namespaceObject: object.metadata.namespace === undefined ? null : engine.fromJson(namespaceObject) }
  const withMeter = meter()
  const result = engine.evaluate(compiled.program, withVariables(engine, variables, activation, withMeter), withMeter)
  if (result._tag !== "Value") return "error"
  return result.value === true ? "true" : result.value === false ? "false" : "error"
}

const theirs = (warnings: ReadonlyArray<string>, index: number): Verdict => {
  const mine = warnings.filter((warning) => warning.includes(`'${policyName(index)}'`) && !warning.includes("PROBE"))
  if (mine.length === 0) return "true"
  return mine.some((warning) => warning.includes(falseMarker)) ? "false" : "error"
}

describe("differential: the backend vs kube-apiserver's ValidatingAdmissionPolicy", () => {
  it("gives the API server's verdict for every built-in pack rule on sample objects of each kind", async () => {
    const disagreements: Array<string> = []
    const tally: Record<Verdict, number> = { true: 0, false: 0, error: 0 }
    for (const sample of samples()) {
      let last = ""
      const answer = await eventually(
        async () => {
          const created = await dryRunCreate(collectionPath(sample.object, sample.plural, sample.namespaced), sample.object)
          last = JSON.stringify(created.body)
          // A fresh namespace accepts Pods once its default ServiceAccount exists.
          return created.status === 201 ? created : undefined
        },
        { what: `dry-run create of ${sample.plural}/${sample.object.metadata.name}`, timeoutMillis: 30_000 }
      ).catch((error: Error) => {
        throw new Error(`${error.message}; last answer: ${last}`)
      })
      for (const [index, rule] of rules.entries()) {
        const kinds = kindsOfRule(rule)
        if (refused.has(rule.id) || typeof kinds === "string" || !kinds.some((kind) => kind.plural === sample.plural)) continue
        const [mine, server] = [ours(rule, answer.body), theirs(answer.warnings, index)]
        tally[mine]++
        if (mine !== server) disagreements.push(`${rule.id} on ${sample.plural}/${sample.object.metadata.name}: backend ${mine}, kube-apiserver ${server} ${answer.warnings.join(" | ")}`)
      }
    }
    expect(disagreements).toEqual([])
    // Most rules are comparable: admission accepted their expressions.
    expect([...refused.entries()].map(([id, why]) => `${id}: ${why}`)).toHaveLength(0)
    expect(tally.true).toBeGreaterThan(200)
    expect(tally.false).toBeGreaterThan(30)
  })
})
