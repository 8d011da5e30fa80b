import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Logger, Stream } from "effect"
import { TestClock } from "effect/testing"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Forbidden, type KubeError } from "../../src/services/kube/KubeErrors.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { listAll, type ListWatchEvent, watchResource } from "../../src/services/kube/ListWatch.ts"
import type { ResourceType } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster, type SimulatedClusterOptions } from "../../sim/cluster/SimulatedCluster.ts"

const ConfigMap: ResourceType = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true }
const namespaces = ["alpha", "beta"]

const configMap = (ns: string, name: string, data: Record<string, string> = {}, labels?: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: ns, ...(labels === undefined ? {} : { labels }) },
  data
})

const withCluster = (options: SimulatedClusterOptions = {}) =>
  Effect.provide(
    SimulatedCluster.layer({
      ...options,
      objects: namespaces.map((name): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } }))
    })
  )

const keyOf = (object: KubeObject) => `${object.metadata.namespace}/${object.metadata.name}`

/** What a consumer of watchResource builds: the objects by key, as the events describe them. */
const makeMirror = () => {
  const objects = new Map<string, KubeObject>()
  const events: Array<ListWatchEvent> = []
  const apply = (event: ListWatchEvent) =>
    Effect.sync(() => {
      events.push(event)
      if (event.type === "SYNCED") return
      if (event.type === "DELETED") objects.delete(keyOf(event.object))
      else objects.set(keyOf(event.object), event.object)
    })
  const synced = () => events.filter((event) => event.type === "SYNCED").length
  return { objects, events, apply, synced }
}

/** The store's state as key -> resourceVersion, read without faults. */
const truth = (resource: ResourceType) =>
  Effect.gen(function*() {
    const stored = yield* (yield* SimulatedCluster).objects(resource)
    return new Map(stored.map((object) => [keyOf(object), object.metadata.resourceVersion]))
  })

const versions = (objects: Map<string, KubeObject>) =>
  new Map([...objects].map(([key, object]) => [key, object.metadata.resourceVersion]))

/** Retries what the fault injection breaks, as a well-behaved writer would. */
const retryTransient = <A, R>(effect: Effect.Effect<A, KubeError, R>) =>
  effect.pipe(Effect.retry({ times: 100, while: (error) => error._tag === "Transient" }))

/** Lets other fibers run until `check` holds (virtual time does not move). */
const settle = (check: () => boolean) =>
  Effect.gen(function*() {
    for (let turn = 0; turn < 10_000 && !check(); turn++) yield* Effect.yieldNow
    expect(check()).toBe(true)
  })

describe("listAll", () => {
  it.effect("follows continue tokens through every page and returns the list's resourceVersion", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      for (let index = 0; index < 45; index++) yield* kube.create(ConfigMap, configMap("alpha", `cm-${index}`))
      yield* cluster.resetRequestCounts
      const listed = yield* listAll(ConfigMap, { namespace: "alpha", limit: 10 })
      expect(listed.items).toHaveLength(45)
      expect(new Set(listed.items.map(keyOf)).size).toBe(45)
      expect(listed.resourceVersion).toBe(yield* cluster.resourceVersion)
      expect((yield* cluster.requestCounts).list).toBe(5)
    }).pipe(withCluster()))
})

describe("watchResource", () => {
  it.effect("lists first (ADDED each, then SYNCED), then streams changes", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(ConfigMap, configMap("alpha", "a"))
      yield* kube.create(ConfigMap, configMap("beta", "b"))
      const mirror = makeMirror()
      yield* Effect.forkChild(Stream.runForEach(watchResource(ConfigMap), mirror.apply))
      yield* settle(() => mirror.synced() === 1)
      yield* kube.patch(ConfigMap, "alpha", "a", { data: { v: "2" } })
      yield* kube.delete(ConfigMap, "beta", "b")
      yield* settle(() => mirror.events.length === 5)
      expect(mirror.events.map((event) => (event.type === "SYNCED" ? "SYNCED" : `${event.type} ${keyOf(event.object)}`))).toEqual([
        "ADDED alpha/a",
        "ADDED beta/b",
        "SYNCED",
        "MODIFIED alpha/a",
        "DELETED beta/b"
      ])
    }).pipe(withCluster()))

  it.effect("a namespace and label selector narrow what is watched", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const mirror = makeMirror()
      yield* Effect.forkChild(Stream.runForEach(watchResource(ConfigMap, { namespace: "alpha", labelSelector: "app=web" }), mirror.apply))
      yield* settle(() => mirror.synced() === 1)
      yield* kube.create(ConfigMap, configMap("alpha", "web", {}, { app: "web" }))
      yield* kube.create(ConfigMap, configMap("alpha", "db", {}, { app: "db" }))
      yield* kube.create(ConfigMap, configMap("beta", "web", {}, { app: "web" }))
      yield* settle(() => mirror.objects.size === 1)
      yield* Effect.yieldNow
      expect([...mirror.objects.keys()]).toEqual(["alpha/web"])
    }).pipe(withCluster()))

  it.effect("resumes a dropped watch from the last event it saw: nothing re-listed, nothing delivered twice", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      yield* kube.create(ConfigMap, configMap("alpha", "a"))
      const mirror = makeMirror()
      yield* Effect.forkChild(Stream.runForEach(watchResource(ConfigMap), mirror.apply))
      yield* settle(() => mirror.synced() === 1)
      yield* kube.patch(ConfigMap, "alpha", "a", { data: { v: "1" } })
      yield* kube.patch(ConfigMap, "alpha", "a", { data: { v: "2" } })
      yield* settle(() => mirror.events.length === 4)
      expect(yield* cluster.dropWatches).toBe(1)
      yield* kube.patch(ConfigMap, "alpha", "a", { data: { v: "3" } })
      yield* settle(() => mirror.events.length === 5)
      yield* Effect.yieldNow
      expect(mirror.events.map((event) => (event.type === "SYNCED" ? "SYNCED" : `${event.type} ${JSON.stringify(event.object.data)}`))).toEqual([
        "ADDED {}",
        "SYNCED",
        `MODIFIED {"v":"1"}`,
        `MODIFIED {"v":"2"}`,
        `MODIFIED {"v":"3"}`
      ])
      expect(yield* cluster.requestCounts).toMatchObject({ list: 1, watch: 2 })
    }).pipe(withCluster()))

  it.effect("re-lists after Gone and reports what was deleted while it was away", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      for (const name of ["a", "b", "c"]) yield* kube.create(ConfigMap, configMap("alpha", name))
      const mirror = makeMirror()
      yield* Effect.forkChild(Stream.runForEach(watchResource(ConfigMap, { initialBackoff: "1 second" }), mirror.apply))
      yield* settle(() => mirror.synced() === 1)
      // An idle watch closed: the loop backs off (virtual time stands still meanwhile) ...
      expect(yield* cluster.dropWatches).toBe(1)
      yield* settle(() => true)
      // ... while more changes happen than the history keeps.
      yield* kube.delete(ConfigMap, "alpha", "b")
      for (let index = 0; index < 6; index++) yield* kube.patch(ConfigMap, "alpha", "c", { data: { n: String(index) } })
      yield* kube.create(ConfigMap, configMap("alpha", "d"))
      yield* TestClock.adjust("1 second")
      yield* settle(() => mirror.synced() === 2)
      const afterFirstSync = mirror.events.slice(mirror.events.findIndex((event) => event.type === "SYNCED") + 1)
      expect(afterFirstSync.map((event) => (event.type === "SYNCED" ? "SYNCED" : `${event.type} ${keyOf(event.object)}`))).toEqual([
        "MODIFIED alpha/c",
        "ADDED alpha/d",
        "DELETED alpha/b",
        "SYNCED"
      ])
      expect(versions(mirror.objects)).toEqual(yield* truth(ConfigMap))
    }).pipe(withCluster({ historySize: 4 })))

  it.effect("keeps going through Forbidden and Transient answers (retrying with back-off) and logs Forbidden as an error", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      const logged: Array<{ level: string; message: unknown }> = []
      const logger = Logger.make(({ logLevel, message }) => {
        logged.push({ level: logLevel, message })
      })
      yield* kube.create(ConfigMap, configMap("alpha", "a"))
      const forbidden = new Forbidden({ message: `configmaps is forbidden: User "system:serviceaccount:x" cannot list resource "configmaps"` })
      yield* cluster.failNext("list", forbidden)
      yield* cluster.failNext("list", forbidden)
      const mirror = makeMirror()
      yield* Effect.forkChild(
        Stream.runForEach(watchResource(ConfigMap, { initialBackoff: "1 second", maxBackoff: "1 second" }), mirror.apply).pipe(
          Effect.provide(Logger.layer([logger]))
        )
      )
      yield* settle(() => logged.length === 1)
      expect(mirror.synced()).toBe(0)
      yield* TestClock.adjust("1 second")
      yield* settle(() => logged.length === 2)
      yield* TestClock.adjust("1 second")
      yield* settle(() => mirror.synced() === 1)
      expect(logged.map((entry) => entry.level)).toEqual(["Error", "Error"])
      expect(String(logged[0]!.message)).toContain("list failed")

      // The watch closes; reopening it is forbidden once: logged, retried after the back-off.
      yield* cluster.failNext("watch", forbidden)
      yield* cluster.dropWatches
      yield* TestClock.adjust("1 second")
      yield* settle(() => logged.length === 3)
      expect(logged[2]!.level).toBe("Error")
      expect(String(logged[2]!.message)).toContain("watch failed")
      yield* TestClock.adjust("1 second")
      yield* kube.create(ConfigMap, configMap("alpha", "b"))
      yield* settle(() => mirror.objects.has("alpha/b"))
      expect(versions(mirror.objects)).toEqual(yield* truth(ConfigMap))
    }).pipe(withCluster()))

  // A short history, so some reconnections find their version compacted and re-list.
  it.live("converges to the store's final state under 20% transient errors and dropped watches", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* SimulatedCluster
      const mirror = makeMirror()
      const watcher = yield* Effect.forkChild(
        Stream.runForEach(watchResource(ConfigMap, { initialBackoff: "2 millis", maxBackoff: "20 millis" }), mirror.apply)
      )
      const dropper = yield* Effect.forkChild(Effect.forever(Effect.andThen(Effect.sleep("5 millis"), cluster.dropWatches)))
      yield* cluster.setFaults({ errorRate: 0.2, seed: 2024 })

      // 300 objects, each created, updated and (every third) deleted, by 30 concurrent writers.
      const lifecycle = (index: number) =>
        Effect.gen(function*() {
          const ns = namespaces[index % 2]!
          const name = `cm-${index}`
          yield* retryTransient(kube.create(ConfigMap, configMap(ns, name, { step: "created" })))
          yield* Effect.sleep(index % 7)
          yield* retryTransient(kube.patch(ConfigMap, ns, name, { data: { step: "updated" } }))
          if (index % 3 === 0) yield* retryTransient(kube.delete(ConfigMap, ns, name))
          else yield* retryTransient(kube.patch(ConfigMap, ns, name, { data: { step: "final" } }))
        })
      yield* Effect.forEach(Array.from({ length: 300 }, (_, index) => index), lifecycle, { concurrency: 30, discard: true })

      yield* Fiber.interrupt(dropper)
      const expected = yield* truth(ConfigMap)
      expect(expected.size).toBe(200)
      for (let waited = 0; waited < 5_000 && !sameVersions(versions(mirror.objects), expected); waited += 10) {
        yield* Effect.sleep(10)
      }
      expect(versions(mirror.objects)).toEqual(expected)
      expect([...mirror.objects.values()].every((object) => (object.data as Record<string, string>).step === "final")).toBe(true)
      const counts = yield* cluster.requestCounts
      expect(counts.watch).toBeGreaterThan(5)
      yield* Fiber.interrupt(watcher)
    }).pipe(withCluster({ historySize: 20 })))
})

const sameVersions = (left: Map<string, string | undefined>, right: Map<string, string | undefined>) =>
  left.size === right.size && [...left].every(([key, version]) => right.get(key) === version)
