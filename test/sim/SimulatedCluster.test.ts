import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Forbidden } from "../../src/services/kube/KubeErrors.ts"
import type { KubeObject, WatchEvent } from "../../src/services/kube/KubeObject.ts"
import { type ResourceType, Resources } from "../../src/services/kube/Resources.ts"
import {
  type JobExecutor,
  SimulatedCluster,
  type SimulatedClusterOptions
} from "../../sim/cluster/SimulatedCluster.ts"

const ConfigMap: ResourceType = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true }

const namespace = (name: string, labels?: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, ...(labels === undefined ? {} : { labels }) }
})

const configMap = (name: string, data: Record<string, unknown> = {}, labels?: Record<string, string>, ns = "team"): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: ns, ...(labels === undefined ? {} : { labels }) },
  data
})

const run = (name: string, spec: Record<string, unknown> = { backend: "cel" }): KubeObject => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: "team" },
  spec
})

const result = (name: string, owner: KubeObject): KubeObject => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanResult",
  metadata: {
    name,
    namespace: "team",
    ownerReferences: [{
      apiVersion: owner.apiVersion!,
      kind: owner.kind!,
      name: owner.metadata.name,
      uid: owner.metadata.uid!,
      controller: true
    }]
  },
  spec: {
    derivedFromRun: { name: owner.metadata.name, uid: owner.metadata.uid! },
    backend: "cel",
    checks: [],
    summary: { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 }
  }
})

const node = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, labels },
  spec: {},
  status: { conditions: [{ type: "Ready", status: "True" }] }
})

const job = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: { name, namespace: "scans" },
  spec: {
    backoffLimit: 0,
    ...extra,
    template: {
      metadata: { labels: { app: "kube-bench" } },
      spec: {
        nodeName: "node-1",
        restartPolicy: "Never",
        containers: [{ name: "kube-bench", image: "aquasec/kube-bench:v0.10.6" }]
      }
    }
  }
})

/** A cluster with the namespaces "team" and "scans" and one Node. */
const withCluster = (options: SimulatedClusterOptions = {}) =>
  Effect.provide(
    SimulatedCluster.layer({ ...options, objects: [namespace("team"), namespace("scans"), node("node-1"), ...(options.objects ?? [])] })
  )

/** Polls (in real time) until `check` yields a value; fails the test after `millis`. */
const eventually = <A, E, R>(check: Effect.Effect<A | undefined, E, R>, millis = 3_000) =>
  Effect.gen(function*() {
    for (let waited = 0; waited < millis; waited += 5) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.sleep(5)
    }
    return yield* Effect.die(new Error(`condition not reached within ${millis} ms`))
  })

const status = (object: KubeObject) => object.status as Record<string, any> | undefined

describe("SimulatedCluster: the API server's answers", () => {
  it.effect("every write gets a new, higher resourceVersion; lists report the current one", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const first = yield* kube.create(ConfigMap, configMap("a"))
      const second = yield* kube.create(ConfigMap, configMap("b"))
      const updated = yield* kube.patch(ConfigMap, "team", "a", { data: { x: "1" } })
      const versions = [first, second, updated].map((object) => Number(object.metadata.resourceVersion))
      expect(versions[0]).toBeLessThan(versions[1]!)
      expect(versions[1]).toBeLessThan(versions[2]!)
      expect(first.metadata.uid).toMatch(/^[0-9a-f-]{36}$/u)
      expect(first.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/u)
      expect(first.metadata.generation).toBe(1)
      const list = yield* kube.list(ConfigMap, { namespace: "team" })
      expect(list.resourceVersion).toBe(updated.metadata.resourceVersion)
      expect(list.items.map((item) => item.metadata.name)).toEqual(["a", "b"])
    }).pipe(withCluster()))

  it.effect("a replace with a stale resourceVersion is a Conflict; with the current one it succeeds", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(ConfigMap, configMap("a", { v: "1" }))
      yield* kube.replace(ConfigMap, { ...created, data: { v: "2" } })
      const stale = yield* Effect.flip(kube.replace(ConfigMap, { ...created, data: { v: "3" } }))
      expect(stale._tag).toBe("Conflict")
      expect(stale.message).toContain("the object has been modified")
      const current = yield* kube.get(ConfigMap, "team", "a")
      const replaced = yield* kube.replace(ConfigMap, { ...current, data: { v: "3" } })
      expect(replaced.data).toEqual({ v: "3" })
      const missing = yield* Effect.flip(kube.replace(ConfigMap, configMap("nope")))
      expect(missing._tag).toBe("NotFound")
    }).pipe(withCluster()))

  it.effect("custom resources refuse an update without resourceVersion, like CRDs on a real server", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(Resources.ComplianceScanRun, run("r"))
      const error = yield* Effect.flip(kube.replace(Resources.ComplianceScanRun, run("r")))
      expect(error._tag).toBe("Invalid")
      expect(error.message).toContain("must be specified for an update")
    }).pipe(withCluster()))

  it.effect("create: AlreadyExists, Invalid names, generateName, and namespaces must exist", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(ConfigMap, configMap("a"))
      const twice = yield* Effect.flip(kube.create(ConfigMap, configMap("a")))
      expect(twice._tag).toBe("AlreadyExists")
      expect(twice.message).toBe(`configmaps "a" already exists`)
      const unnamed = yield* Effect.flip(kube.create(ConfigMap, configMap("")))
      expect(unnamed._tag).toBe("Invalid")
      const badName = yield* Effect.flip(kube.create(ConfigMap, configMap("Not_Valid")))
      expect(badName._tag).toBe("Invalid")
      const generated = yield* kube.create(ConfigMap, {
        ...configMap(""),
        metadata: { name: "", generateName: "scan-", namespace: "team" }
      })
      expect(generated.metadata.name).toMatch(/^scan-[a-z0-9]{5}$/u)
      const noNamespace = yield* Effect.flip(kube.create(ConfigMap, configMap("x", {}, undefined, "missing")))
      expect(noNamespace._tag).toBe("NotFound")
      expect(noNamespace.message).toBe(`namespaces "missing" not found`)
    }).pipe(withCluster()))

  it.effect("nobody can change the cluster through an object: inputs are copied, outputs are frozen", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const input = configMap("a", { v: "1" })
      const created = yield* kube.create(ConfigMap, input)
      ;(input.data as Record<string, string>).v = "changed"
      expect(() => {
        ;(created.data as Record<string, string>).v = "changed too"
      }).toThrow(TypeError)
      const listed = yield* kube.list(ConfigMap, { namespace: "team" })
      expect(() => {
        ;(listed.items[0]!.metadata as { name: string }).name = "renamed"
      }).toThrow(TypeError)
      const read = yield* kube.get(ConfigMap, "team", "a")
      expect(read.data).toEqual({ v: "1" })
      expect(read.metadata.name).toBe("a")
    }).pipe(withCluster()))
})

describe("SimulatedCluster: status subresource, generation and the run's CRD rules", () => {
  it.effect("status writes leave spec and generation alone; main writes leave status alone", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(Resources.Node, {
        ...node("node-2"),
        status: { capacity: { cpu: "4" } }
      })
      // Like the real server, a create ignores the status it is sent.
      expect(status(created)).toBeUndefined()
      const withStatus = yield* kube.replaceStatus(Resources.Node, {
        ...created,
        spec: { unschedulable: true },
        status: { capacity: { cpu: "8" } }
      })
      expect(withStatus.spec).toEqual({})
      expect(withStatus.metadata.generation).toBe(1)
      expect(status(withStatus)).toEqual({ capacity: { cpu: "8" } })

      const cordoned = yield* kube.replace(Resources.Node, {
        ...withStatus,
        spec: { unschedulable: true },
        status: { capacity: { cpu: "1" } }
      })
      expect(cordoned.spec).toEqual({ unschedulable: true })
      expect(cordoned.metadata.generation).toBe(2)
      expect(status(cordoned)).toEqual({ capacity: { cpu: "8" } })

      const patched = yield* kube.patch(Resources.Node, undefined, "node-2", { status: { capacity: null, phase: "Up" } }, {
        subresource: "status"
      })
      expect(status(patched)).toEqual({ phase: "Up" })
      expect(patched.metadata.generation).toBe(2)
      const mainPatch = yield* kube.patch(Resources.Node, undefined, "node-2", { status: { phase: "Down" } })
      expect(status(mainPatch)).toEqual({ phase: "Up" })
    }).pipe(withCluster()))

  it.effect("a run's spec is immutable; defaults are applied; invalid runs are rejected with the schema's message", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(Resources.ComplianceScanRun, run("r", { backend: "kube-bench", kubeBench: {} }))
      expect(created.spec).toEqual({ backend: "kube-bench", alertOn: "high", timeout: "10m", kubeBench: { maxConcurrentNodes: 10 } })

      const replaced = yield* Effect.flip(kube.replace(Resources.ComplianceScanRun, { ...created, spec: { backend: "cel" } }))
      expect(replaced._tag).toBe("Invalid")
      expect(replaced.message).toContain("spec is immutable")
      const patched = yield* Effect.flip(kube.patch(Resources.ComplianceScanRun, "team", "r", { spec: { alertOn: "low" } }))
      expect(patched.message).toContain("spec is immutable")

      // Re-sending the same spec (without the defaulted fields) is no change at all.
      const same = yield* kube.replace(Resources.ComplianceScanRun, { ...created, spec: { backend: "kube-bench", kubeBench: {} } })
      expect(same.metadata.resourceVersion).toBe(created.metadata.resourceVersion)

      const running = yield* kube.patch(Resources.ComplianceScanRun, "team", "r", { status: { phase: "Running" } }, {
        subresource: "status"
      })
      expect(status(running)?.phase).toBe("Running")
      expect(running.metadata.generation).toBe(1)
      const badPhase = yield* Effect.flip(
        kube.patch(Resources.ComplianceScanRun, "team", "r", { status: { phase: "Exploded" } }, { subresource: "status" })
      )
      expect(badPhase._tag).toBe("Invalid")

      const invalid = yield* Effect.flip(kube.create(Resources.ComplianceScanRun, run("bad", { backend: "nmap", timeout: "5 minutes" })))
      expect(invalid._tag).toBe("Invalid")
      expect(invalid.message).toContain(`ComplianceScanRun.security.ugallu.io "bad" is invalid`)
      expect(invalid.message).toContain(`Expected "kube-bench" | "falco" | "cel" | "cel-custom"`)
      expect(invalid.message).toContain("Expected a duration such as 30s, 5m or 1h")
    }).pipe(withCluster()))

  it.effect("unknown fields of a custom resource are pruned, as the structural schema does", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(Resources.ComplianceScanRun, run("r", { backend: "cel", colour: "blue" }))
      expect(created.spec).toEqual({ backend: "cel", alertOn: "high", timeout: "10m" })
    }).pipe(withCluster()))
})

describe("SimulatedCluster: merge patches", () => {
  it.effect("null deletes a key, objects merge, arrays replace; a stale resourceVersion in the patch is a Conflict", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(ConfigMap, {
        ...configMap("a", { keep: "1", drop: "2", nested: { x: 1, y: 2 }, list: [1, 2, 3] }),
        metadata: { name: "a", namespace: "team", labels: { app: "x" } }
      })
      const patched = yield* kube.patch(ConfigMap, "team", "a", {
        metadata: { labels: { tier: "web" } },
        data: { drop: null, nested: { y: null, z: 3 }, list: [9] }
      })
      expect(patched.data).toEqual({ keep: "1", nested: { x: 1, z: 3 }, list: [9] })
      expect(patched.metadata.labels).toEqual({ app: "x", tier: "web" })
      const stale = yield* Effect.flip(
        kube.patch(ConfigMap, "team", "a", { metadata: { resourceVersion: created.metadata.resourceVersion }, data: { keep: "2" } })
      )
      expect(stale._tag).toBe("Conflict")
      const current = yield* kube.patch(ConfigMap, "team", "a", {
        metadata: { resourceVersion: patched.metadata.resourceVersion },
        data: { keep: "2" }
      })
      expect((current.data as Record<string, unknown>).keep).toBe("2")
      const missing = yield* Effect.flip(kube.patch(ConfigMap, "team", "zzz", { data: {} }))
      expect(missing._tag).toBe("NotFound")
    }).pipe(withCluster()))
})

describe("SimulatedCluster: delete and garbage collection", () => {
  it.effect("deleting an owner deletes its dependents (Background, Foreground); Orphan keeps them without the reference", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      for (const [name, policy] of [["bg", "Background"], ["fg", "Foreground"], ["orphan", "Orphan"]] as const) {
        const owner = yield* kube.create(Resources.ComplianceScanRun, run(name))
        yield* kube.create(Resources.ComplianceScanResult, result(name, owner))
        const grandchild = yield* kube.create(ConfigMap, {
          ...configMap(`${name}-child`),
          metadata: {
            name: `${name}-child`,
            namespace: "team",
            ownerReferences: [{ apiVersion: "v1", kind: "X", name, uid: (yield* kube.get(Resources.ComplianceScanResult, "team", name)).metadata.uid! }]
          }
        })
        expect(grandchild.metadata.ownerReferences).toHaveLength(1)
        yield* kube.delete(Resources.ComplianceScanRun, "team", name, { propagationPolicy: policy })
        const gone = yield* Effect.flip(kube.get(Resources.ComplianceScanRun, "team", name))
        expect(gone._tag).toBe("NotFound")
        const dependent = yield* Effect.result(kube.get(Resources.ComplianceScanResult, "team", name))
        const child = yield* Effect.result(kube.get(ConfigMap, "team", `${name}-child`))
        if (policy === "Orphan") {
          expect(dependent._tag).toBe("Success")
          if (dependent._tag === "Success") expect(dependent.success.metadata.ownerReferences).toBeUndefined()
          expect(child._tag).toBe("Success")
        } else {
          expect(dependent._tag).toBe("Failure")
          expect(child._tag).toBe("Failure")
        }
      }
      const again = yield* Effect.flip(kube.delete(Resources.ComplianceScanRun, "team", "bg"))
      expect(again._tag).toBe("NotFound")
    }).pipe(withCluster()))

  it.effect("a dependent with another live owner loses only the deleted owner's reference", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const first = yield* kube.create(ConfigMap, configMap("first"))
      const second = yield* kube.create(ConfigMap, configMap("second"))
      const ref = (owner: KubeObject) => ({ apiVersion: "v1", kind: "ConfigMap", name: owner.metadata.name, uid: owner.metadata.uid! })
      yield* kube.create(ConfigMap, { ...configMap("shared"), metadata: { name: "shared", namespace: "team", ownerReferences: [ref(first), ref(second)] } })
      yield* kube.delete(ConfigMap, "team", "first")
      const shared = yield* kube.get(ConfigMap, "team", "shared")
      expect(shared.metadata.ownerReferences?.map((owner) => owner.name)).toEqual(["second"])
      yield* kube.delete(ConfigMap, "team", "second")
      expect((yield* Effect.flip(kube.get(ConfigMap, "team", "shared")))._tag).toBe("NotFound")
    }).pipe(withCluster()))

  it.effect("deleting a Namespace deletes everything in it", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(ConfigMap, configMap("a"))
      yield* kube.create(Resources.ComplianceScanRun, run("r"))
      yield* kube.create(ConfigMap, configMap("elsewhere", {}, undefined, "scans"))
      yield* kube.delete(Resources.Namespace, undefined, "team")
      expect((yield* kube.list(ConfigMap, { namespace: "team" })).items).toEqual([])
      expect((yield* kube.list(Resources.ComplianceScanRun, {})).items).toEqual([])
      expect((yield* kube.list(ConfigMap, {})).items.map((item) => item.metadata.name)).toEqual(["elsewhere"])
      expect((yield* Effect.flip(kube.create(ConfigMap, configMap("b"))))._tag).toBe("NotFound")
    }).pipe(withCluster()))
})

describe("SimulatedCluster: list", () => {
  it.effect("label selectors, field selectors, and their errors", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(ConfigMap, configMap("web", {}, { tier: "web", env: "prod" }))
      yield* kube.create(ConfigMap, configMap("db", {}, { tier: "db", env: "prod" }))
      yield* kube.create(ConfigMap, configMap("tmp", {}, { env: "dev" }))
      const names = (items: ReadonlyArray<KubeObject>) => items.map((item) => item.metadata.name)
      expect(names((yield* kube.list(ConfigMap, { labelSelector: "env=prod" })).items)).toEqual(["db", "web"])
      expect(names((yield* kube.list(ConfigMap, { labelSelector: "tier in (web,cache),env!=dev" })).items)).toEqual(["web"])
      expect(names((yield* kube.list(ConfigMap, { labelSelector: "!tier" })).items)).toEqual(["tmp"])
      expect(names((yield* kube.list(ConfigMap, { fieldSelector: "metadata.name=db" })).items)).toEqual(["db"])
      expect(names((yield* kube.list(ConfigMap, { fieldSelector: "metadata.name!=db", labelSelector: "env" })).items)).toEqual(["tmp", "web"])
      const badSelector = yield* Effect.flip(kube.list(ConfigMap, { labelSelector: "tier in (web" }))
      expect(badSelector._tag).toBe("Invalid")
      const badField = yield* Effect.flip(kube.list(ConfigMap, { fieldSelector: "data.colour=blue" }))
      expect(badField._tag).toBe("Invalid")
      expect(badField.message).toContain("field label not supported")
    }).pipe(withCluster()))

  it.effect("Pods by spec.nodeName, across namespaces", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const pod = (name: string, ns: string, nodeName: string): KubeObject => ({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: ns },
        spec: { nodeName, containers: [{ name: "app", image: "nginx" }] }
      })
      yield* kube.create(Resources.Pod, pod("a", "team", "node-1"))
      yield* kube.create(Resources.Pod, pod("b", "scans", "node-2"))
      yield* kube.create(Resources.Pod, pod("c", "scans", "node-1"))
      const onNode1 = yield* kube.list(Resources.Pod, { fieldSelector: "spec.nodeName=node-1" })
      expect(onNode1.items.map((item) => `${item.metadata.namespace}/${item.metadata.name}`)).toEqual(["scans/c", "team/a"])
      expect(status(onNode1.items[0]!)?.phase).toBe("Pending")
    }).pipe(withCluster()))

  it.effect("pagination: every object exactly once, in namespace/name order, with a continue token between pages", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      for (let index = 0; index < 23; index++) {
        yield* kube.create(ConfigMap, configMap(`cm-${String(index).padStart(2, "0")}`, {}, undefined, index % 2 === 0 ? "team" : "scans"))
      }
      const seen: Array<string> = []
      let token: string | undefined
      let pages = 0
      let firstVersion: string | undefined
      do {
        const page = yield* kube.list(ConfigMap, { limit: 10, ...(token === undefined ? {} : { continue: token }) })
        firstVersion ??= page.resourceVersion
        expect(page.resourceVersion).toBe(firstVersion)
        seen.push(...page.items.map((item) => `${item.metadata.namespace}/${item.metadata.name}`))
        token = page.continue
        pages++
      } while (token !== undefined)
      expect(pages).toBe(3)
      expect(seen).toHaveLength(23)
      expect(seen).toEqual([...seen].sort())
      expect(new Set(seen).size).toBe(23)
    }).pipe(withCluster()))

  it.effect("a continue token older than the history window is Gone", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      for (let index = 0; index < 4; index++) yield* kube.create(ConfigMap, configMap(`cm-${index}`))
      const first = yield* kube.list(ConfigMap, { limit: 2 })
      for (let index = 0; index < 10; index++) yield* kube.patch(ConfigMap, "team", "cm-0", { data: { n: String(index) } })
      const expired = yield* Effect.flip(kube.list(ConfigMap, { limit: 2, continue: first.continue! }))
      expect(expired._tag).toBe("Gone")
    }).pipe(withCluster({ historySize: 5 })))
})

describe("SimulatedCluster: watch", () => {
  const collect = (stream: Stream.Stream<WatchEvent, unknown>, count: number) =>
    stream.pipe(
      Stream.take(count),
      Stream.runCollect,
      Effect.map((events) =>
        Array.from(events, (event) => (event.type === "BOOKMARK" ? "BOOKMARK" : `${event.type} ${event.object.metadata.name}`))
      )
    )

  it.effect("delivers the changes after a resourceVersion, with the objects as stored", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(ConfigMap, configMap("a"))
      yield* kube.create(ConfigMap, configMap("b"))
      const from = (yield* kube.list(ConfigMap, { namespace: "team" })).resourceVersion
      yield* kube.patch(ConfigMap, "team", "a", { data: { v: "2" } })
      yield* kube.delete(ConfigMap, "team", "b")
      yield* kube.create(ConfigMap, configMap("c"))
      yield* kube.create(ConfigMap, configMap("other-namespace", {}, undefined, "scans"))
      const events = yield* collect(kube.watch(ConfigMap, { namespace: "team", resourceVersion: from }), 3)
      expect(events).toEqual(["MODIFIED a", "DELETED b", "ADDED c"])
    }).pipe(withCluster()))

  it.effect("live events arrive after the replay; a label-selector watch sees objects enter and leave the selection", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(ConfigMap, configMap("a", {}, { watched: "no" }))
      const from = (yield* kube.list(ConfigMap, {})).resourceVersion
      const fiber = yield* Effect.forkChild(collect(kube.watch(ConfigMap, { labelSelector: "watched=yes", resourceVersion: from }), 3))
      yield* Effect.yieldNow
      yield* kube.patch(ConfigMap, "team", "a", { metadata: { labels: { watched: "yes" } } })
      yield* kube.patch(ConfigMap, "team", "a", { data: { v: "1" } })
      yield* kube.patch(ConfigMap, "team", "a", { metadata: { labels: { watched: "no" } } })
      expect(yield* Fiber.join(fiber)).toEqual(["ADDED a", "MODIFIED a", "DELETED a"])
    }).pipe(withCluster()))

  it.effect("a DELETED event carries the deletion's resourceVersion, so a watch resumes after it", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(ConfigMap, configMap("a"))
      yield* kube.delete(ConfigMap, "team", "a")
      const [deleted] = yield* kube.watch(ConfigMap, { resourceVersion: created.metadata.resourceVersion! }).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      expect(deleted?.type).toBe("DELETED")
      if (deleted?.type === "DELETED") {
        expect(Number(deleted.object.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion))
        expect(deleted.object.metadata.resourceVersion).toBe(yield* (yield* SimulatedCluster).resourceVersion)
      }
    }).pipe(withCluster()))

  it.effect("after a dropped watch, resuming from the last seen resourceVersion replays what was missed", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      const from = yield* cluster.resourceVersion
      const seen: Array<WatchEvent> = []
      const first = yield* Effect.forkChild(
        Stream.runForEach(kube.watch(ConfigMap, { resourceVersion: from }), (event) => Effect.sync(() => seen.push(event)))
      )
      yield* Effect.yieldNow
      yield* kube.create(ConfigMap, configMap("before-drop"))
      yield* Effect.yieldNow
      expect(yield* cluster.openWatches).toBe(1)
      expect(yield* cluster.dropWatches).toBe(1)
      // The stream ends cleanly, as when an API server restarts.
      yield* Fiber.join(first)
      expect(seen.map((event) => event.type === "BOOKMARK" ? "" : event.object.metadata.name)).toEqual(["before-drop"])
      yield* kube.create(ConfigMap, configMap("while-away-1"))
      yield* kube.create(ConfigMap, configMap("while-away-2"))
      const last = seen.at(-1)!
      const resumeFrom = last.type === "BOOKMARK" ? last.resourceVersion : last.object.metadata.resourceVersion!
      const replayed = yield* collect(kube.watch(ConfigMap, { resourceVersion: resumeFrom }), 2)
      expect(replayed).toEqual(["ADDED while-away-1", "ADDED while-away-2"])
    }).pipe(withCluster()))

  it.effect("a resourceVersion older than the history window fails the watch with Gone", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const created = yield* kube.create(ConfigMap, configMap("a"))
      for (let index = 0; index < 10; index++) yield* kube.patch(ConfigMap, "team", "a", { data: { n: String(index) } })
      const error = yield* Effect.flip(Stream.runDrain(kube.watch(ConfigMap, { resourceVersion: created.metadata.resourceVersion! })))
      expect(error._tag).toBe("Gone")
      expect(error.message).toContain("too old resource version")
      // Within the window it still works.
      const recent = String(Number(yield* (yield* SimulatedCluster).resourceVersion) - 2)
      expect(yield* collect(kube.watch(ConfigMap, { resourceVersion: recent }), 2)).toEqual(["MODIFIED a", "MODIFIED a"])
    }).pipe(withCluster({ historySize: 5 })))

  it.effect("resourceVersion 0 starts with the current objects as ADDED events", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(ConfigMap, configMap("a"))
      yield* kube.create(ConfigMap, configMap("b"))
      expect(yield* collect(kube.watch(ConfigMap, { resourceVersion: "0" }), 2)).toEqual(["ADDED a", "ADDED b"])
    }).pipe(withCluster()))

  it.effect("timeoutSeconds ends the stream cleanly", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const fiber = yield* Effect.forkChild(Stream.runCollect(kube.watch(ConfigMap, { resourceVersion: "0", timeoutSeconds: 30 })))
      yield* TestClock.adjust("29 seconds")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 second")
      const events = yield* Fiber.join(fiber)
      expect(Array.from(events)).toEqual([])
    }).pipe(withCluster()))
})

describe("SimulatedCluster: Jobs, Pods and logs", () => {
  const jobPods = (kube: KubeClient["Service"], name: string) =>
    kube.list(Resources.Pod, { namespace: "scans", labelSelector: `job-name=${name}` }).pipe(Effect.map((list) => list.items))

  const condition = (object: KubeObject, type: string) =>
    (status(object)?.conditions as Array<Record<string, string>> | undefined)?.find((entry) => entry.type === type)

  const finished = (kube: KubeClient["Service"], name: string, type: "Complete" | "Failed") =>
    eventually(
      kube.get(Resources.Job, "scans", name).pipe(
        Effect.map((object) => (condition(object, type)?.status === "True" ? object : undefined))
      )
    )

  it.live("a Job gets a Pod like the Job controller makes; the executor's log is the Pod's log", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      const executed: Array<string> = []
      yield* cluster.setJobExecutor(({ pod }) =>
        Effect.sync(() => {
          executed.push(pod.metadata.name)
          return { _tag: "Succeeded", log: `{"Controls":[]} from ${String((pod.spec as { nodeName?: string }).nodeName)}` }
        })
      )
      const created = yield* kube.create(Resources.Job, job("scan-node-1"))
      const done = yield* finished(kube, "scan-node-1", "Complete")
      expect(status(done)).toMatchObject({ succeeded: 1 })
      expect(status(done)?.startTime).toBeDefined()
      expect(status(done)?.completionTime).toBeDefined()
      const [pod, ...others] = yield* jobPods(kube, "scan-node-1")
      expect(others).toEqual([])
      expect(pod!.metadata.name).toMatch(/^scan-node-1-[a-z0-9]{5}$/u)
      expect(executed).toEqual([pod!.metadata.name])
      expect(pod!.metadata.labels).toMatchObject({
        app: "kube-bench",
        "job-name": "scan-node-1",
        "batch.kubernetes.io/job-name": "scan-node-1",
        "controller-uid": created.metadata.uid,
        "batch.kubernetes.io/controller-uid": created.metadata.uid
      })
      expect(pod!.metadata.ownerReferences).toEqual([
        { apiVersion: "batch/v1", kind: "Job", name: "scan-node-1", uid: created.metadata.uid, controller: true, blockOwnerDeletion: true }
      ])
      expect((pod!.spec as { nodeName?: string }).nodeName).toBe("node-1")
      expect(status(pod!)?.phase).toBe("Succeeded")
      expect(status(pod!)?.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: "Completed" })
      expect(yield* kube.podLogs("scans", pod!.metadata.name)).toBe(`{"Controls":[]} from node-1`)
      expect(yield* kube.podLogs("scans", pod!.metadata.name, { limitBytes: 4 })).toBe(`{"Co`)
    }).pipe(withCluster()))

  it.live("a failing container fails the Pod with its exit code and, past backoffLimit, the Job", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      yield* cluster.setJobExecutor(() =>
        Effect.succeed({ _tag: "Failed", exitCode: 2, message: "config not found", log: "error: config not found" })
      )
      yield* kube.create(Resources.Job, job("fails-once", { backoffLimit: 1 }))
      const failed = yield* finished(kube, "fails-once", "Failed")
      expect(condition(failed, "Failed")).toMatchObject({ status: "True", reason: "BackoffLimitExceeded" })
      expect(status(failed)).toMatchObject({ failed: 2 })
      const pods = yield* jobPods(kube, "fails-once")
      expect(pods).toHaveLength(2)
      for (const pod of pods) {
        expect(status(pod)?.phase).toBe("Failed")
        expect(status(pod)?.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 2, reason: "Error", message: "config not found" })
        expect(yield* kube.podLogs("scans", pod.metadata.name)).toBe("error: config not found")
      }
    }).pipe(withCluster()))

  it.live("a container that never starts leaves the Pod Pending with the waiting reason, and its log is refused", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      yield* cluster.setJobExecutor(() =>
        Effect.succeed({ _tag: "Waiting", reason: "ErrImagePull", message: "pull access denied for nope/kube-bench" })
      )
      yield* kube.create(Resources.Job, job("bad-image"))
      const pod = yield* eventually(
        jobPods(kube, "bad-image").pipe(Effect.map((pods) => pods.find((candidate) => status(candidate)?.containerStatuses !== undefined)))
      )
      expect(status(pod)?.phase).toBe("Pending")
      expect(status(pod)?.containerStatuses[0].state.waiting).toEqual({
        reason: "ErrImagePull",
        message: "pull access denied for nope/kube-bench"
      })
      const refused = yield* Effect.flip(kube.podLogs("scans", pod.metadata.name))
      expect(refused._tag).toBe("Invalid")
      expect(refused.message).toMatch(/container "kube-bench" in pod ".*" is waiting to start/u)
      const jobNow = yield* kube.get(Resources.Job, "scans", "bad-image")
      expect(condition(jobNow, "Complete")).toBeUndefined()
      expect(condition(jobNow, "Failed")).toBeUndefined()
      expect((yield* Effect.flip(kube.podLogs("scans", "no-such-pod")))._tag).toBe("NotFound")
    }).pipe(withCluster()))

  it.live("deleting a Job (Background) removes its Pod and interrupts the executor; the default policy orphans the Pod", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      const interrupted: Array<string> = []
      const hanging: JobExecutor = ({ job: running }) =>
        Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push(running.metadata.name))))
      yield* cluster.setJobExecutor(hanging)
      yield* kube.create(Resources.Job, job("hangs"))
      yield* eventually(jobPods(kube, "hangs").pipe(Effect.map((pods) => pods[0])))
      yield* kube.delete(Resources.Job, "scans", "hangs", { propagationPolicy: "Background" })
      expect(yield* jobPods(kube, "hangs")).toEqual([])
      yield* eventually(Effect.sync(() => (interrupted.includes("hangs") ? true : undefined)))

      yield* kube.create(Resources.Job, job("orphans"))
      yield* eventually(jobPods(kube, "orphans").pipe(Effect.map((pods) => pods[0])))
      yield* kube.delete(Resources.Job, "scans", "orphans")
      const [orphan] = yield* jobPods(kube, "orphans")
      expect(orphan?.metadata.ownerReferences).toBeUndefined()
    }).pipe(withCluster()))
})

describe("SimulatedCluster: Job deadlines and TTL (virtual time)", () => {
  /** Lets the simulation's fibers run until `check` yields a value; virtual time stands still. */
  const settle = <A, E, R>(check: Effect.Effect<A | undefined, E, R>) =>
    Effect.gen(function*() {
      for (let turn = 0; turn < 2_000; turn++) {
        const value = yield* check
        if (value !== undefined) return value
        yield* Effect.yieldNow
      }
      return yield* Effect.die(new Error("condition not reached"))
    })

  const failedCondition = (object: KubeObject) =>
    (status(object)?.conditions as Array<Record<string, string>> | undefined)?.find((entry) => entry.type === "Failed")

  it.effect("activeDeadlineSeconds: the running Pod is deleted and the Job fails with DeadlineExceeded", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* (yield* SimulatedCluster).setJobExecutor(() => Effect.never)
      yield* kube.create(Resources.Job, job("slow", { activeDeadlineSeconds: 60 }))
      const pods = kube.list(Resources.Pod, { namespace: "scans", labelSelector: "job-name=slow" })
      yield* settle(pods.pipe(Effect.map((list) => list.items[0])))
      yield* TestClock.adjust("59 seconds")
      expect(failedCondition(yield* kube.get(Resources.Job, "scans", "slow"))).toBeUndefined()
      yield* TestClock.adjust("1 second")
      const failed = yield* settle(kube.get(Resources.Job, "scans", "slow").pipe(Effect.map((object) => failedCondition(object) === undefined ? undefined : object)))
      expect(failedCondition(failed)).toMatchObject({ status: "True", reason: "DeadlineExceeded" })
      expect(status(failed)).toMatchObject({ failed: 1 })
      expect((yield* pods).items).toEqual([])
    }).pipe(withCluster()))

  it.effect("ttlSecondsAfterFinished: a finished Job and its Pod are removed after the TTL", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(Resources.Job, job("short-lived", { ttlSecondsAfterFinished: 30 }))
      yield* settle(kube.get(Resources.Job, "scans", "short-lived").pipe(Effect.map((object) => status(object)?.succeeded)))
      yield* TestClock.adjust("29 seconds")
      expect((yield* Effect.result(kube.get(Resources.Job, "scans", "short-lived")))._tag).toBe("Success")
      yield* TestClock.adjust("1 second")
      yield* settle(Effect.flip(kube.get(Resources.Job, "scans", "short-lived")).pipe(Effect.map((error) => error._tag), Effect.orElseSucceed(() => undefined)))
      expect((yield* kube.list(Resources.Pod, { namespace: "scans", labelSelector: "job-name=short-lived" })).items).toEqual([])
    }).pipe(withCluster()))
})

describe("SimulatedCluster: fault injection and request counts", () => {
  it.effect("errorRate fails that fraction of calls with Transient, the same ones for the same seed", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      yield* kube.create(ConfigMap, configMap("a"))
      const outcomes = (seed: number) =>
        Effect.gen(function*() {
          yield* cluster.setFaults({ errorRate: 0.2, seed })
          const results: Array<string> = []
          for (let index = 0; index < 1000; index++) {
            const attempt = yield* Effect.result(kube.get(ConfigMap, "team", "a"))
            results.push(attempt._tag === "Failure" ? attempt.failure._tag : "ok")
          }
          return results
        })
      const first = yield* outcomes(7)
      const failures = first.filter((outcome) => outcome !== "ok")
      expect(new Set(failures)).toEqual(new Set(["Transient"]))
      expect(failures.length).toBeGreaterThan(150)
      expect(failures.length).toBeLessThan(250)
      expect(yield* outcomes(7)).toEqual(first)
      yield* cluster.setFaults({ errorRate: 0 })
      expect((yield* Effect.result(kube.get(ConfigMap, "team", "a")))._tag).toBe("Success")
    }).pipe(withCluster()))

  it.effect("failNext fails exactly the next call of a verb; requests are counted by verb", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      yield* cluster.failNext("create", new Forbidden({ message: "configmaps is forbidden" }))
      const refused = yield* Effect.flip(kube.create(ConfigMap, configMap("a")))
      expect(refused._tag).toBe("Forbidden")
      yield* kube.create(ConfigMap, configMap("a"))
      yield* kube.get(ConfigMap, "team", "a")
      yield* kube.list(ConfigMap, {})
      expect(yield* cluster.requestCounts).toMatchObject({ create: 2, get: 1, list: 1, patch: 0, watch: 0 })
      yield* cluster.resetRequestCounts
      expect((yield* cluster.requestCounts).create).toBe(0)
    }).pipe(withCluster()))

  it.effect("latency delays every call", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* (yield* SimulatedCluster).setFaults({ latency: "200 millis" })
      const fiber = yield* Effect.forkChild(kube.create(ConfigMap, configMap("slow")))
      yield* TestClock.adjust("199 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(fiber)).metadata.name).toBe("slow")
    }).pipe(withCluster()))
})
