import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schedule } from "effect"
import { CelScanner } from "../../src/backends/cel/CelScanner.ts"
import { Scanners, scannersOf } from "../../src/backends/Scanner.ts"
import { reportApis } from "../../src/reports/ReportApis.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { NotFound } from "../../src/services/kube/KubeErrors.ts"
import type { ResourceType } from "../../src/services/kube/Resources.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { type ApiCall, recordingKubeClient } from "../support/RecordingKubeClient.ts"
import { namespaceObject, runManifest, startOperator, testNamespace, waitForPhase } from "../support/TestOperator.ts"

const cluster = SimulatedCluster.layer({ objects: [namespaceObject(testNamespace), namespaceObject("team-a"), namespaceObject("team-b")] })

const celScanners = Layer.effect(Scanners, Effect.gen(function*() { return scannersOf([yield* CelScanner]) })).pipe(
  Layer.provide(CelScanner.layer())
)

/** The simulated cluster serves every kind; this one, like a cluster without the report CRDs, serves no report API. */
const withoutReportApis = (kube: KubeClient["Service"]): KubeClient["Service"] => {
  const reportGroups = new Set(Object.values(reportApis).flatMap((api) => [api.namespaced.apiVersion, api.cluster.apiVersion]))
  const served = (resource: ResourceType) => !reportGroups.has(resource.apiVersion)
  const notServed = (resource: ResourceType) => Effect.fail(new NotFound({ message: `the server could not find the requested resource (${resource.plural})` }))
  return {
    ...kube,
    get: (resource, namespace, name) => (served(resource) ? kube.get(resource, namespace, name) : notServed(resource)),
    list: (resource, options) => (served(resource) ? kube.list(resource, options) : notServed(resource)),
    create: (resource, object) => (served(resource) ? kube.create(resource, object) : notServed(resource))
  }
}

/** One cheap cel rule over Namespaces, as bench/cluster.ts runs it. */
const celRun = (name: string) =>
  runManifest(name, {
    backend: "cel",
    cel: {
      rules: [{ id: "namespace-has-name", title: "Namespaces have a name", severity: "low", match: { resources: ["namespaces"] }, expression: "object.metadata.name != ''" }]
    }
  })

/** Waits for the run's last write: its Succeeded Kubernetes Event (after the terminal patch). */
const finished = (name: string) =>
  Effect.gen(function*() {
    yield* waitForPhase(name, ["Succeeded"])
    const kube = yield* KubeClient
    yield* kube.list(Resources.Event, { namespace: testNamespace }).pipe(
      Effect.repeat({
        schedule: Schedule.spaced("10 millis"),
        until: (list) => list.items.some((event) => (event.involvedObject as { name?: string }).name === name && event.reason === "Succeeded")
      }),
      Effect.timeout("10 seconds")
    )
  })

/**
 * The operator's requests for one cel run, from its creation to its last write. A first run
 * settles start-up (watches, the first report API probe, the exception watch's sync).
 */
const callsOfOneRun = (served: (kube: KubeClient["Service"]) => KubeClient["Service"]) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const recording = recordingKubeClient(served(kube))
    yield* startOperator({ kube: recording.client, scanners: celScanners })
    yield* kube.create(Resources.ComplianceScanRun, celRun("first"))
    yield* finished("first")
    const before = recording.calls().length
    yield* kube.create(Resources.ComplianceScanRun, celRun("second"))
    yield* finished("second")
    return recording.calls().slice(before)
  })

/** The writes every run makes: the floor of issue 15. */
const floor = [
  "create core/events", // Started, Succeeded
  "create core/events",
  "create security.ugallu.io/compliancescanresults",
  "create security.ugallu.io/securityevents", // ComplianceScanStarted, ComplianceScanCompleted
  "create security.ugallu.io/securityevents",
  "patch security.ugallu.io/compliancescanresults/status",
  "patch security.ugallu.io/compliancescanruns/status", // Running, terminal
  "patch security.ugallu.io/compliancescanruns/status"
]

const describeCalls = (calls: ReadonlyArray<ApiCall>) => calls.map((call) => `${call.verb} ${call.resource}`).sort()

/**
 * A kube-bench stand-in that reports its nodes' progress once, waits until that write is
 * done (the coalesced writer runs the first change at once; `observer` is a client outside
 * the recording), and finishes with one check.
 */
const progressingScanners = (observer: KubeClient["Service"]) => Layer.succeed(
  Scanners,
  scannersOf([{
    name: "kube-bench",
    scan: (request) =>
      Effect.gen(function*() {
        const nodes = [{ name: "node-1", job: "kube-bench-node-1", phase: "Succeeded" as const }]
        yield* request.reportProgress(Effect.succeed({ nodes }))
        yield* observer.get(Resources.ComplianceScanRun, testNamespace, request.run.metadata.name).pipe(
          Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (run) => (run.status as { nodes?: unknown } | undefined)?.nodes !== undefined }),
          Effect.orDie
        )
        return {
          checks: [{ checkID: "1.1.1", title: "a check", severity: "low", outcome: "pass", framework: "cis-1.10", controlID: "1.1.1" }],
          backendStatus: { nodes }
        } as never
      })
  }])
)

describe("API requests per run (simulated cluster)", () => {
  it.live("a cel run on a cluster without report APIs: the 8 writes of the floor and the scan's own list, nothing else", () =>
    Effect.gen(function*() {
      const calls = yield* callsOfOneRun(withoutReportApis)

      const writes = calls.filter((call) => call.verb !== "get" && call.verb !== "list" && call.verb !== "watch")
      expect(describeCalls(writes)).toEqual(floor)
      // Reads: only the scan's own data (the kind its rule matches), which grows with the cluster.
      expect(describeCalls(calls.filter((call) => call.verb === "get" || call.verb === "list" || call.verb === "watch"))).toEqual([
        "list core/namespaces"
      ])
    }).pipe(Effect.provide(cluster)))

  it.live("a backend's progress write does not make the terminal write conflict: no read of the run, no retried patch", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const recording = recordingKubeClient(withoutReportApis(kube))
      yield* startOperator({ kube: recording.client, scanners: progressingScanners(kube) })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("progress", { backend: "kube-bench" }))
      yield* finished("progress")
      const runCalls = describeCalls(recording.calls().filter((call) => call.resource.startsWith("security.ugallu.io/compliancescanruns") && call.verb !== "watch" && call.verb !== "list"))
      // Running, the progress write, terminal: each once, and the run never read.
      expect(runCalls).toEqual([
        "patch security.ugallu.io/compliancescanruns/status",
        "patch security.ugallu.io/compliancescanruns/status",
        "patch security.ugallu.io/compliancescanruns/status"
      ])
    }).pipe(Effect.provide(cluster)))

  it.live("a cel run writing OpenReports: the floor, the scan's list, and the reports step's own requests", () =>
    Effect.gen(function*() {
      const calls = yield* callsOfOneRun((kube) => kube)
      expect(describeCalls(calls)).toEqual([
        ...floor,
        // The reports step: a newer run of the series wrote its reports? (the first part's name)
        "get openreports.io/clusterreports",
        // Its findings are about Namespaces (cluster-scoped): one ClusterReport, no list of namespaces.
        "create openreports.io/clusterreports",
        // What an earlier write of the same run left (fewer parts): namespaced and cluster-wide.
        "list openreports.io/clusterreports",
        "list openreports.io/reports",
        "list core/namespaces" // the scan's own
      ].sort())
    }).pipe(Effect.provide(cluster)))
})
