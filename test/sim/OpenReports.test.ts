import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Ref, Schedule } from "effect"
import type { Check } from "../../src/api/Check.ts"
import type { ComplianceScanResult } from "../../src/api/ComplianceScanResult.ts"
import type { ComplianceScanRun } from "../../src/api/ComplianceScanRun.ts"
import { ScheduleLabel } from "../../src/api/SeriesLabels.ts"
import type { Scanner } from "../../src/backends/Scanner.ts"
import { buildResult } from "../../src/reconciler/ResultBuilder.ts"
import { labels } from "../../src/reports/OpenReports.ts"
import { reportApis } from "../../src/reports/ReportApis.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Invalid } from "../../src/services/kube/KubeErrors.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../sim/cluster/SimulatedCluster.ts"
import { recordingKubeClient } from "../support/RecordingKubeClient.ts"
import { expectOneToOne } from "../support/ReportWalk.ts"
import { eventsOf, namespaceObject, runManifest, startOperator, testNamespace, waitForPhase } from "../support/TestOperator.ts"
import { instantScanner, scriptedScanner } from "../support/TestScanners.ts"

const cluster = SimulatedCluster.layer({ objects: [namespaceObject(testNamespace), namespaceObject("team-a"), namespaceObject("team-b")] })

const podCheck = (checkID: string, namespaces: ReadonlyArray<string>): Check => ({
  checkID,
  title: `${checkID} holds`,
  outcome: "fail",
  severity: "high",
  subjects: namespaces.map((namespace) => ({ kind: "Pod", name: `web-${namespace}`, namespace, outcome: "fail" as const }))
})

const checks: ReadonlyArray<Check> = [
  podCheck("no-root", ["team-a", "team-b"]),
  { checkID: "nodes-ok", title: "Nodes are fine", outcome: "pass", severity: "low", subjects: [{ kind: "Node", name: "n1", outcome: "pass" }] },
  { checkID: "nothing", title: "No subjects", outcome: "warn", severity: "medium" }
]

/** Every OpenReports object in the cluster (namespaced ones in all namespaces). */
const allReports = Effect.gen(function*() {
  const kube = yield* KubeClient
  const namespaced = yield* kube.list(reportApis.openreports.namespaced)
  const clusterWide = yield* kube.list(reportApis.openreports.cluster)
  return [...clusterWide.items, ...namespaced.items]
})

const waitUntil = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (value: A) => boolean) =>
  effect.pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: done }), Effect.timeout("10 seconds"))

const storedResult = (name: string) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    return (yield* kube.get(Resources.ComplianceScanResult, testNamespace, name)) as unknown as ComplianceScanResult
  })

describe("OpenReports written by the operator (simulated cluster)", () => {
  it.live("a crash between the Result and the reports loses nothing: the next pass writes them from the stored Result without scanning", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const scans = yield* Ref.make(0)
      const created = (yield* kube.create(Resources.ComplianceScanRun, runManifest("crashed", { backend: "cel" }))) as unknown as ComplianceScanRun
      const now = new Date().toISOString()
      const { result } = buildResult(created, checks, undefined, now)
      yield* kube.create(Resources.ComplianceScanResult, result as unknown as KubeObject)
      const condition = (type: string, reason: string) => ({ type, status: "True", reason, message: "", lastTransitionTime: now })
      yield* kube.patch(Resources.ComplianceScanRun, testNamespace, "crashed", {
        status: {
          phase: "Running",
          startTime: now,
          summary: { pass: 1, fail: 1, warn: 1, skip: 0, error: 0 },
          resultRef: { name: "crashed" },
          conditions: [
            { ...condition("Succeeded", "Running"), status: "Unknown" },
            condition("Scanned", "ScanCompleted"),
            condition("ResultWritten", "ResultWritten")
          ]
        }
      }, { subresource: "status" })
      yield* startOperator({ kube, scanners: [instantScanner("cel", [], scans)] })
      const run = yield* waitForPhase("crashed", ["Succeeded"])
      expect(yield* Ref.get(scans)).toBe(0)
      expect(run.status?.conditions?.find((entry) => entry.type === "ReportsWritten")).toMatchObject({ status: "True", reason: "ReportsWritten" })
      const reports = yield* allReports
      expect(reports.map((report) => `${report.kind}/${report.metadata.namespace ?? ""}`).sort()).toEqual([
        "ClusterReport/",
        "Report/team-a",
        "Report/team-b"
      ])
      expectOneToOne((yield* storedResult("crashed")).spec.checks, reports)
      for (const report of reports) expect(report.results).toSatisfy((results: ReadonlyArray<{ timestamp: { seconds: number } }>) => results.every((entry) => entry.timestamp.seconds === Math.floor(Date.parse(now) / 1000)))
    }).pipe(Effect.provide(cluster)))

  it.live("deleting a run removes its reports in every namespace and the cluster report", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: [instantScanner("cel", checks)] })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("gone", { backend: "cel" }))
      yield* waitForPhase("gone", ["Succeeded"])
      expect(yield* allReports).toHaveLength(3)
      yield* kube.delete(Resources.ComplianceScanRun, testNamespace, "gone")
      expect(yield* waitUntil(allReports, (reports) => reports.length === 0)).toEqual([])
    }).pipe(Effect.provide(cluster)))

  it.live("the reports of a run deleted while no operator ran are removed by the next leader", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const first = yield* startOperator({ kube, scanners: [instantScanner("cel", checks)] })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("orphan", { backend: "cel" }))
      yield* kube.create(Resources.ComplianceScanRun, runManifest("kept", { backend: "cel" }))
      yield* waitForPhase("orphan", ["Succeeded"])
      yield* waitForPhase("kept", ["Succeeded"])
      yield* Fiber.interrupt(first.fiber)
      yield* kube.delete(Resources.ComplianceScanRun, testNamespace, "orphan")
      expect(yield* allReports).toHaveLength(6)
      yield* startOperator({ kube, scanners: [instantScanner("cel", checks)] })
      const left = yield* waitUntil(allReports, (reports) => reports.length === 3)
      expect(new Set(left.map((report) => report.metadata.labels?.[labels.run]))).toEqual(new Set(["kept"]))
    }).pipe(Effect.provide(cluster)))

  it.live("a scheduled series keeps only its latest run's reports; an older run finishing late does not replace them", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      // nightly-0 scans until released: it started first and finishes last.
      const release = yield* Deferred.make<void>()
      const scripted = scriptedScanner("cel")
      const gated: Scanner = {
        name: "cel",
        scan: (input) => (input.run.metadata.name === "nightly-0" ? Effect.andThen(Deferred.await(release), scripted.scan(input)) : scripted.scan(input))
      }
      yield* startOperator({ kube, scanners: [gated] })
      const scheduled = (name: string, namespaces: ReadonlyArray<string>) => {
        const manifest = runManifest(name, { backend: "cel" })
        return {
          ...manifest,
          metadata: {
            ...manifest.metadata,
            labels: { [ScheduleLabel]: "nightly" },
            annotations: { "test/checks": JSON.stringify([podCheck("no-root", namespaces)]) }
          }
        }
      }
      yield* kube.create(Resources.ComplianceScanRun, scheduled("nightly-0", ["team-b"]))
      yield* Effect.sleep("1100 millis")
      const first = yield* kube.create(Resources.ComplianceScanRun, scheduled("nightly-1", ["team-a", "team-b"]))
      yield* waitForPhase("nightly-1", ["Succeeded"])
      expect((yield* allReports).map((report) => report.metadata.labels?.[labels.runUID])).toEqual([first.metadata.uid, first.metadata.uid, first.metadata.uid])
      // One second later: creation timestamps have second precision.
      yield* Effect.sleep("1100 millis")
      const second = yield* kube.create(Resources.ComplianceScanRun, scheduled("nightly-2", ["team-a"]))
      yield* waitForPhase("nightly-2", ["Succeeded"])
      const reports = yield* allReports
      expect(reports.map((report) => `${report.kind}/${report.metadata.namespace ?? ""}/${report.metadata.labels?.[labels.run]}`).sort()).toEqual([
        "ClusterReport//nightly-2",
        "Report/team-a/nightly-2"
      ])
      expect(reports.every((report) => report.metadata.labels?.[labels.runUID] === second.metadata.uid)).toBe(true)
      yield* Deferred.succeed(release, undefined)
      const late = yield* waitForPhase("nightly-0", ["Succeeded"])
      expect(late.status?.conditions?.find((entry) => entry.type === "ReportsWritten")?.message).toContain("a newer run of the series wrote its reports")
      expect((yield* allReports).map((report) => report.metadata.labels?.[labels.run])).toEqual(["nightly-2", "nightly-2"])
      // Deleting the older run leaves the series' current reports alone.
      yield* kube.delete(Resources.ComplianceScanRun, testNamespace, "nightly-1")
      yield* Effect.sleep("300 millis")
      expect(yield* allReports).toHaveLength(2)
    }).pipe(Effect.provide(cluster)))

  it.live("a report the API server refuses never fails the run: ReportsWritten=False says why, the events still go out", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const refusing: KubeClient["Service"] = {
        ...kube,
        create: (resource, object) =>
          resource.apiVersion === reportApis.openreports.cluster.apiVersion
            ? Effect.fail(new Invalid({ message: "ClusterReport.openreports.io is invalid: results[0].result: Unsupported value" }))
            : kube.create(resource, object)
      }
      yield* startOperator({ kube: refusing, scanners: [instantScanner("cel", checks)] })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("refused", { backend: "cel" }))
      const run = yield* waitForPhase("refused", ["Succeeded", "Failed"])
      expect(run.status?.phase).toBe("Succeeded")
      expect(run.status?.conditions?.find((entry) => entry.type === "ReportsWritten")).toMatchObject({
        status: "False",
        reason: "ReportRejected",
        message: expect.stringContaining("Unsupported value")
      })
      expect((yield* eventsOf(run)).map((event) => event.spec.type).sort()).toEqual(["ComplianceScanCompleted", "ComplianceScanStarted"])
    }).pipe(Effect.provide(cluster)))

  it.live("--report-api=none writes no report and says so in the run's conditions", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: [instantScanner("cel", checks)], config: { reportApi: "none" } })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("quiet", { backend: "cel" }))
      const run = yield* waitForPhase("quiet", ["Succeeded"])
      expect(run.status?.conditions?.find((entry) => entry.type === "ReportsWritten")).toMatchObject({ status: "True", reason: "ReportsDisabled" })
      expect(yield* allReports).toEqual([])
    }).pipe(Effect.provide(cluster)))

  it.live("once OpenReports is known to be served, a run does not ask the API server again which report APIs it serves", () =>
    Effect.gen(function*() {
      const recording = recordingKubeClient(yield* KubeClient)
      const kube = recording.client
      yield* startOperator({ kube, scanners: [instantScanner("cel", checks)] })
      yield* kube.create(Resources.ComplianceScanRun, runManifest("first", { backend: "cel" }))
      yield* waitForPhase("first", ["Succeeded"])
      const before = recording.calls().length
      yield* kube.create(Resources.ComplianceScanRun, runManifest("second", { backend: "cel" }))
      const second = yield* waitForPhase("second", ["Succeeded"])
      expect(second.status?.conditions?.find((entry) => entry.type === "ReportsWritten")).toMatchObject({ status: "True", reason: "ReportsWritten" })
      // auto writes OpenReports only: a wgpolicyk8s list during the second run would be a probe.
      const probes = recording.calls().slice(before).filter((call) => call.resource.startsWith("wgpolicyk8s.io/"))
      expect(probes).toEqual([])
      expect(recording.calls().slice(0, before).some((call) => call.resource === "wgpolicyk8s.io/clusterpolicyreports")).toBe(true)
    }).pipe(Effect.provide(cluster)))
})
