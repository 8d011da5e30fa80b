import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { CelScanner, type CelScannerOptions } from "../../../src/backends/cel/CelScanner.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { KubeClient } from "../../../src/services/kube/KubeClient.ts"
import { type KubeObject, MalformedObject, pageOfList, UnreadableEncoding } from "../../../src/services/kube/KubeObject.ts"
import { Resources } from "../../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"
import { namespace, restrictedPod, violating } from "../../unit/cel/PodFixtures.ts"
import { withListPage } from "./ListPageClient.ts"

/**
 * The cel scanner lists page by page (limit/continue) and evaluates each page as it comes;
 * a continue token that expires mid-list (410 Gone, when the simulated server's history no
 * longer reaches back to the list's version, as etcd compaction does) starts the list again
 * and counts every object exactly once.
 */

const run: ComplianceScanRun = {
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name: "paged", namespace: "ugallu-system", uid: "uid-paged" },
  spec: {
    backend: "cel",
    cel: {
      rules: [{
        id: "no-host-pid",
        severity: "high",
        match: { resources: ["pods"] },
        expression: "!(has(object.spec.hostPID) && object.spec.hostPID) && namespaceObject.metadata.labels.team != ''",
        messageExpression: "'pod ' + object.metadata.name + ' shares the host PID namespace'"
      }]
    }
  }
}

const pod = (index: number, hostPID: boolean): KubeObject =>
  hostPID
    ? violating(`pod-${String(index).padStart(3, "0")}`, (object) => {
      object.metadata.namespace = "shop"
      object.spec.hostPID = true
    })
    : restrictedPod(`pod-${String(index).padStart(3, "0")}`, "shop")

/** 50 Pods, every fifth sharing the host PID namespace (10 failing). */
const world: ReadonlyArray<KubeObject> = [namespace("shop", { team: "payments" }), ...Array.from({ length: 50 }, (_, index) => pod(index, index % 5 === 0))]

const scan = Effect.gen(function*() {
  const scanner = yield* CelScanner
  return yield* Effect.scoped(scanner.scan({ run, deadline: Date.now() + 60_000, reportProgress: () => Effect.void }))
})

/**
 * The simulated KubeClient, except that the first continued list of Pods arrives after
 * `changes` writes to the cluster: more than the server's history holds, so the token has
 * expired and the real simulated server answers 410 Gone.
 */
const writesBeforeFirstContinue = (changes: ReadonlyArray<KubeObject>) =>
  Layer.effect(
    KubeClient,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const control = yield* SimulatedCluster
      let written = false
      return KubeClient.of({
        ...kube,
        list: (resource, options) =>
          Effect.gen(function*() {
            if (resource.plural === "pods" && options?.continue !== undefined && !written) {
              written = true
              yield* Effect.orDie(control.apply(changes))
            }
            return yield* kube.list(resource, options)
          })
      })
    })
  )

const scannerOn = (historySize: number, changes: ReadonlyArray<KubeObject>) => {
  const simulated = SimulatedCluster.layer({ objects: world, historySize })
  const client = writesBeforeFirstContinue(changes).pipe(Layer.provideMerge(simulated))
  return CelScanner.layer({ pageSize: 7 }).pipe(Layer.provideMerge(Layer.mergeAll(client, Metrics.layerTest)))
}

/**
 * The simulated KubeClient with a `listPage` (as LiveKubeClient has): Pods come from `list`,
 * and `onPodPage` may change what a page hands out or wait for something. With
 * `bytesPerPod`, each Pod page says it was that many bytes per object (as LiveKubeClient
 * gives the answer's size).
 */
const podPages = (
  onPodPage: (
    page: { readonly continue: string | undefined; readonly limit: number | undefined; readonly objects: ReadonlyArray<KubeObject> }
  ) => Effect.Effect<Iterable<KubeObject>>,
  bytesPerPod?: number
) =>
  withListPage((kube) => (resource, options) =>
    Effect.gen(function*() {
      const page = pageOfList(yield* kube.list(resource, options))
      if (resource.plural !== "pods") return page
      const objects = yield* onPodPage({ continue: options?.continue, limit: options?.limit, objects: [...page.objects()] })
      return { ...page, objects: () => objects, ...(bytesPerPod === undefined ? {} : { bytes: page.size * bytesPerPod }) }
    })
  )

const scannerWith = (client: Layer.Layer<KubeClient, never, KubeClient | SimulatedCluster>, options: Partial<CelScannerOptions> = {}) =>
  CelScanner.layer({ pageSize: 7, ...options }).pipe(
    Layer.provideMerge(Layer.mergeAll(client.pipe(Layer.provideMerge(SimulatedCluster.layer({ objects: world }))), Metrics.layerTest))
  )

describe("paged cel scans", () => {
  it.effect("evaluates every page of a list; the counts are complete and the pages are the requests", () =>
    Effect.gen(function*() {
      const control = yield* SimulatedCluster
      yield* control.resetRequestCounts
      const report = yield* scan
      const check = report.checks[0]!
      expect(check.subjectCounts).toEqual({ pass: 40, fail: 10, warn: 0, skip: 0, error: 0 })
      expect(check.subjects?.map((subject) => subject.name)).toEqual(
        Array.from({ length: 10 }, (_, index) => `pod-${String(index * 5).padStart(3, "0")}`)
      )
      expect(check.subjects?.[0]?.message).toBe("pod pod-000 shares the host PID namespace")
      // One page of Namespaces, ceil(50 / 7) = 8 pages of Pods.
      expect((yield* control.requestCounts).list).toBe(1 + 8)
    }).pipe(Effect.provide(scannerOn(1_000, []))))

  it.effect("a continue token that expired mid-list (410 Gone) restarts the list without counting anything twice", () =>
    Effect.gen(function*() {
      const control = yield* SimulatedCluster
      yield* control.resetRequestCounts
      const report = yield* scan
      const stored = yield* control.objects(Resources.Pod, "shop")
      const failing = stored.filter((object) => (object.spec as { hostPID?: boolean }).hostPID === true)
      // The world after the writes: 50 Pods of which pod-000..pod-019 now all share the host PID namespace,
      // plus pod-050..pod-054 (passing): 55 Pods, 26 failing.
      expect(stored).toHaveLength(55)
      expect(failing).toHaveLength(26)
      const check = report.checks[0]!
      expect(check.subjectCounts).toEqual({ pass: 29, fail: 26, warn: 0, skip: 0, error: 0 })
      expect(new Set(check.subjects?.map((subject) => subject.name)).size).toBe(26)
      // Namespaces (1), the first Pod page (1), the continue that got Gone (1), then the whole list again (8).
      expect((yield* control.requestCounts).list).toBe(1 + 1 + 1 + 8)
    }).pipe(
      Effect.provide(
        scannerOn(10, [...Array.from({ length: 20 }, (_, index) => pod(index, true)), ...Array.from({ length: 5 }, (_, index) => pod(50 + index, false))])
      )
    ))

  it.live("requests the next page before it evaluates this one, so the API server and the scan overlap", () =>
    Effect.gen(function*() {
      const secondRequested = yield* Deferred.make<void>()
      // The first page's objects can only be read once the second page has been asked for:
      // a scan that waited for each page before requesting the next would never finish.
      const client = podPages(({ continue: token, objects }) =>
        token === undefined
          ? Effect.succeed({
            *[Symbol.iterator]() {
              if (!Deferred.isDoneUnsafe(secondRequested)) throw new Error("page 1 evaluated before page 2 was requested")
              yield* objects
            }
          })
          : Deferred.succeed(secondRequested, undefined).pipe(Effect.as(objects))
      )
      const report = yield* scan.pipe(Effect.provide(scannerWith(client)))
      expect(report.checks[0]!.subjectCounts).toEqual({ pass: 40, fail: 10, warn: 0, skip: 0, error: 0 })
    }))

  it.effect.each([
    // Small objects: later pages grow to the cap (7, then 12 each: 7 + 12 + 12 + 12 + 7 = 50).
    { bytesPerPod: 1_000, limits: [7, 12, 12, 12, 12] },
    // Large objects: later pages shrink to what 20,000 bytes hold.
    { bytesPerPod: 5_000, limits: [7, ...Array.from({ length: 11 }, () => 4)] }
  ])("sizes later pages by the bytes of the last one ($bytesPerPod bytes per Pod) and still counts every Pod once", ({ bytesPerPod, limits }) =>
    Effect.gen(function*() {
      const requested: Array<number | undefined> = []
      const client = podPages(({ limit, objects }) => Effect.sync(() => (requested.push(limit), objects)), bytesPerPod)
      const report = yield* scan.pipe(Effect.provide(scannerWith(client, { pageBudget: { bytes: 20_000, maxLimit: 12 } })))
      expect(report.checks[0]!.subjectCounts).toEqual({ pass: 40, fail: 10, warn: 0, skip: 0, error: 0 })
      expect(requested).toEqual(limits)
    }))

  it.effect("a page the client cannot read in the encoding it came in lists the kind again, counting every Pod once", () =>
    Effect.gen(function*() {
      /** Each Pod page's request: whether it asked for protobuf, and its continue token. */
      const requests: Array<{ readonly protobuf: boolean | undefined; readonly continue: string | undefined }> = []
      let thrown = 0
      const client = withListPage((kube) => (resource, options) =>
        Effect.gen(function*() {
          const page = pageOfList(yield* kube.list(resource, options))
          if (resource.plural !== "pods") return page
          requests.push({ protobuf: options?.protobuf, continue: options?.continue })
          const objects = [...page.objects()]
          // The third page: two objects read, then one the client cannot decode (once; it reads JSON after that).
          const unreadable = requests.length === 3
          return {
            ...page,
            objects: function*() {
              yield* objects.slice(0, 2)
              if (unreadable) {
                thrown++
                throw new UnreadableEncoding("pods in protobuf: field 99 of api/core/v1.PodSpec, which this build does not know; reading them as JSON from now on")
              }
              yield* objects.slice(2)
            }
          }
        })
      )
      const report = yield* scan.pipe(Effect.provide(scannerWith(client)))
      expect(report.checks[0]!.subjectCounts).toEqual({ pass: 40, fail: 10, warn: 0, skip: 0, error: 0 })
      expect(thrown).toBe(1)
      // The scan asks for protobuf; 3 pages (the fourth was already requested), then the whole list again.
      expect(requests.every((request) => request.protobuf === true)).toBe(true)
      expect(requests.filter((request) => request.continue === undefined)).toHaveLength(2)
      expect(requests).toHaveLength(4 + 8)
    }))

  it.live("an object the API server sent malformed fails the run with KubernetesAPIError naming the request", () =>
    Effect.gen(function*() {
      const client = podPages(({ continue: token, objects }) =>
        Effect.succeed({
          *[Symbol.iterator]() {
            yield objects[0]!
            if (token !== undefined) throw new MalformedObject("GET /api/v1/pods?limit=7&continue=x: the API server answered with something that is not a Kubernetes object: {}")
            yield* objects.slice(1)
          }
        })
      )
      const failure = yield* scan.pipe(Effect.flip, Effect.provide(scannerWith(client)))
      expect(failure).toMatchObject({
        reason: "KubernetesAPIError",
        message: "GET /api/v1/pods?limit=7&continue=x: the API server answered with something that is not a Kubernetes object: {}"
      })
    }))
})
