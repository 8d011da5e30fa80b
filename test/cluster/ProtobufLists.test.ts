import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { isDeepStrictEqual } from "node:util"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { builtInKinds, type CelKind } from "../../src/backends/cel/CelKinds.ts"
import { Metrics } from "../../src/services/Metrics.ts"
import { KubeClient, type ListOptions } from "../../src/services/kube/KubeClient.ts"
import { type KubeObject, ListAgain, UnreadableEncoding } from "../../src/services/kube/KubeObject.ts"
import { forEachPage } from "../../src/services/kube/ListWatch.ts"
import { LiveKubeClient } from "../../src/services/kube/LiveKubeClient.ts"
import { builtInMessages, linkSchema, type MessageSchema, messageOfResource } from "../../src/services/kube/protobuf/MessageSchema.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace } from "./harness/ClusterSetup.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import { edgeObjects, randomPod } from "./harness/ProtobufEdgeObjects.ts"

/**
 * Lists of every built-in kind read in protobuf give exactly the objects their JSON gives:
 * the real API server's answers both ways, compared object by object (deep equality and the
 * same key order). The objects are the cluster's own (system ClusterRoles, kwok Nodes, Pods
 * kwok runs, with status times) plus objects made to reach the edges of the encoding
 * (pointers to zero values, empty strings and lists, int-or-strings both ways, quantities,
 * bytes, int64s past 2^53, strings with escapes and non-BMP characters) and seeded random
 * Pods. Then an API server that sends a field the schema does not know: the page is read
 * again as JSON, and nothing is counted twice.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let namespace: string
const randomPods = 150

const pathOf = (kind: CelKind, objectNamespace?: string) =>
  `${kind.group === "" ? "/api/v1" : `/apis/${kind.apiVersion}`}${kind.namespaced && objectNamespace !== undefined ? `/namespaces/${objectNamespace}` : ""}/${kind.plural}`

const kindOf = (object: Json) => builtInKinds.find((kind) => kind.apiVersion === object.apiVersion && kind.kind === object.kind)!

/** Cluster-scoped objects this file makes, removed at the end. */
const clusterScoped: Array<string> = []

beforeAll(async () => {
  admin = connectAdmin(cluster)
  namespace = await createNamespace(admin, "protobuf-lists")
  for (const object of edgeObjects(namespace)) {
    const kind = kindOf(object)
    await admin.create(pathOf(kind, namespace), object)
    if (!kind.namespaced) clusterScoped.push(`${pathOf(kind)}/${object.metadata.name}`)
  }
  for (let index = 0; index < randomPods; index++) await admin.create(pathOf(kindOf({ apiVersion: "v1", kind: "Pod" }), namespace), randomPod(index))
}, 180_000)

afterAll(async () => {
  for (const path of clusterScoped) await admin.remove(path)
  await deleteNamespace(admin, namespace)
  admin.close()
})

const clientLayer = (protobufSchema?: MessageSchema) =>
  LiveKubeClient.layer({ kubeconfig: cluster.adminKubeconfig, ...(protobufSchema === undefined ? {} : { protobufSchema }) }).pipe(Layer.provide(Metrics.layerTest))

interface Listed {
  readonly objects: Array<KubeObject>
  readonly encodings: Set<string>
  readonly restarts: number
}

/** Every object of a kind, page by page (small pages: many page boundaries), as the CEL scan consumes them. */
const listEvery = (kind: CelKind, options: Omit<ListOptions, "continue">) =>
  Effect.gen(function*() {
    const objects: Array<KubeObject> = []
    const encodings = new Set<string>()
    let restarts = 0
    yield* forEachPage(kind, { limit: 40, ...options }, {
      // Reads each page once more to see its encoding (a page's objects are decoded as they are iterated).
      request: (page) => Effect.tap(page, (answer) => Effect.sync(() => encodings.add(answer.encoding ?? "none"))),
      onPage: (page) =>
        Effect.suspend(() => {
          try {
            for (const object of page) objects.push(object)
            return Effect.void
          } catch (error) {
            // What CelScanner does with it.
            if (error instanceof UnreadableEncoding) return Effect.fail(new ListAgain({ message: error.message }))
            throw error
          }
        }),
      onRestart: () => {
        restarts++
        objects.length = 0
      }
    })
    return { objects, encodings, restarts } satisfies Listed
  })

const byUid = (objects: ReadonlyArray<KubeObject>) => new Map(objects.map((object) => [object.metadata.uid!, object]))

/** Objects both lists have at the same resourceVersion (others changed in between), compared exactly. */
const compare = (json: ReadonlyArray<KubeObject>, protobuf: ReadonlyArray<KubeObject>) => {
  const fromProtobuf = byUid(protobuf)
  let compared = 0
  const differences: Array<string> = []
  for (const object of json) {
    const other = fromProtobuf.get(object.metadata.uid!)
    if (other === undefined || other.metadata.resourceVersion !== object.metadata.resourceVersion) continue
    compared++
    // Deep equality, and the same keys in the same order (what JSON.stringify shows).
    if (!isDeepStrictEqual(other, object) || JSON.stringify(other) !== JSON.stringify(object)) {
      differences.push(`${object.kind} ${object.metadata.namespace ?? ""}/${object.metadata.name}:\n  json     ${JSON.stringify(object)}\n  protobuf ${JSON.stringify(other)}`)
    }
  }
  return { compared, differences }
}

describe("lists in protobuf on the real API server", () => {
  it("gives, for every built-in kind, the objects its JSON gives", async () => {
    const comparedByKind: Record<string, number> = {}
    await Effect.runPromise(
      Effect.gen(function*() {
        for (const kind of builtInKinds) {
          // Nodes' heartbeats change them all the time: a few tries to find some unchanged in between.
          for (let attempt = 0; attempt < 5 && (comparedByKind[kind.key] ?? 0) === 0; attempt++) {
            const json = yield* listEvery(kind, {})
            const protobuf = yield* listEvery(kind, { protobuf: true })
            expect(json.encodings, kind.key).toEqual(new Set(["json"]))
            expect(protobuf.encodings, kind.key).toEqual(new Set([messageOfResource(builtInMessages(), kind) === undefined ? "json" : "protobuf"]))
            const { compared, differences } = compare(json.objects, protobuf.objects)
            expect(differences, kind.key).toEqual([])
            comparedByKind[kind.key] = compared
          }
        }
      }).pipe(Effect.provide(clientLayer()))
    )
    // Left to JSON: a StatefulSet's volumeClaimTemplates have an apiVersion and kind in JSON
    // (set by defaulting) that protobuf does not carry (scripts/protobuf-schema).
    expect(builtInKinds.filter((kind) => messageOfResource(builtInMessages(), kind) === undefined).map((kind) => kind.key)).toEqual(["statefulsets.apps"])
    // Every kind had objects to compare; this file's made most of them.
    for (const kind of builtInKinds) expect(comparedByKind[kind.key], kind.key).toBeGreaterThan(0)
    expect(comparedByKind["pods"]).toBeGreaterThanOrEqual(randomPods)
  }, 120_000)

  it("leaves out what the scan does not read exactly as the JSON path does", async () => {
    await Effect.runPromise(
      Effect.gen(function*() {
        for (const kind of builtInKinds) {
          for (const pruning of [{ omitManagedFields: true }, { omitManagedFields: true, onlyMembers: ["spec"] }, { onlyMembers: ["rules", "subjects"] }] satisfies Array<Omit<ListOptions, "continue">>) {
            const scope = kind.namespaced ? { namespace } : {}
            const json = yield* listEvery(kind, { ...pruning, ...scope })
            const protobuf = yield* listEvery(kind, { ...pruning, ...scope, protobuf: true })
            const { compared, differences } = compare(json.objects, protobuf.objects)
            expect(differences, `${kind.key} ${JSON.stringify(pruning)}`).toEqual([])
            expect(compared, kind.key).toBe(json.objects.length)
          }
        }
      }).pipe(Effect.provide(clientLayer()))
    )
  }, 120_000)

  it("reads the API server's error answers in protobuf as it reads them in JSON", async () => {
    const pods = builtInKinds.find((kind) => kind.key === "pods")!
    const refusal = (protobuf: boolean) =>
      Effect.runPromise(
        Effect.gen(function*() {
          const kube = yield* KubeClient
          return yield* Effect.flip(kube.listPage!(pods, { namespace, limit: 5, continue: "not-a-continue-token", protobuf }))
        }).pipe(Effect.provide(clientLayer()))
      )
    const [json, protobuf] = [await refusal(false), await refusal(true)]
    expect(json).toMatchObject({ _tag: "Invalid", message: expect.stringContaining("continue") })
    expect({ _tag: protobuf._tag, message: protobuf.message }).toEqual({ _tag: json._tag, message: json.message })
  }, 60_000)

  it("reads a kind again as JSON when its protobuf holds a field the schema does not know, counting each object once", async () => {
    // An API server newer than this build: the schema without PodSpec.hostname, which one of this file's Pods sets.
    const file = JSON.parse(readFileSync(join(import.meta.dirname, "../../src/services/kube/protobuf/built-in-messages.json"), "utf8"))
    file.messages["api/core/v1.PodSpec"] = file.messages["api/core/v1.PodSpec"].filter((field: Json) => field.json !== "hostname")
    const pods = builtInKinds.find((kind) => kind.key === "pods")!
    const [json, fallBack, after] = await Effect.runPromise(
      Effect.gen(function*() {
        const json = yield* listEvery(pods, { namespace })
        const fallBack = yield* listEvery(pods, { namespace, protobuf: true })
        const after = yield* listEvery(pods, { namespace, protobuf: true })
        return [json, fallBack, after] as const
      }).pipe(Effect.provide(clientLayer(linkSchema(file))))
    )
    // The page with the unknown field came as protobuf; the list then started over in JSON.
    expect(fallBack.restarts).toBe(1)
    expect(fallBack.encodings).toEqual(new Set(["protobuf", "json"]))
    expect(fallBack.objects.map((pod) => pod.metadata.uid)).toEqual(json.objects.map((pod) => pod.metadata.uid))
    expect(compare(json.objects, fallBack.objects)).toEqual({ compared: json.objects.length, differences: [] })
    expect(json.objects.length).toBeGreaterThan(randomPods)
    // The client keeps reading Pods as JSON.
    expect(after.encodings).toEqual(new Set(["json"]))
    expect(after.restarts).toBe(0)
  }, 60_000)
})
