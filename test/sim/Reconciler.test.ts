import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Ref, Schedule } from "effect"
import type { Scanner } from "../../src/backends/Scanner.ts"
import { severities } from "../../src/api/Severity.ts"
import { securityEventName } from "../../src/services/SecurityEvents.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../src/services/kube/SimulatedCluster.ts"
import {
  eventsOf,
  getRun,
  listResults,
  listSecurityEvents,
  runManifest,
  startOperator,
  testCluster,
  testNamespace,
  waitForPhase
} from "../support/TestOperator.ts"
import {
  defectScanner,
  failingCheck,
  failingScanner,
  hangingScanner,
  instantScanner,
  passingCheck,
  scriptedScanner
} from "../support/TestScanners.ts"

const createRun = (name: string, spec: Record<string, unknown>, annotations?: Record<string, string>) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const manifest = runManifest(name, spec)
    return yield* kube.create(Resources.ComplianceScanRun, {
      ...manifest,
      metadata: { ...manifest.metadata, ...(annotations === undefined ? {} : { annotations }) }
    })
  })

describe("Reconciler: phase machine", () => {
  it.live("a run goes '' -> Running -> Succeeded with a Result, one Started and one Completed event", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const checks = [failingCheck("rule-a", "medium"), failingCheck("rule-b", "low"), passingCheck("rule-c")]
      yield* startOperator({ kube, scanners: [instantScanner("cel", checks)] })
      yield* createRun("nightly", { backend: "cel", alertOn: "high" })

      const run = yield* waitForPhase("nightly", ["Succeeded"])
      expect(run.status).toMatchObject({
        phase: "Succeeded",
        reason: "ScanCompleted",
        worstSeverity: "medium",
        summary: { pass: 1, fail: 2, warn: 0, skip: 0, error: 0 },
        resultRef: { name: "nightly" }
      })
      expect(run.status?.startTime).toBeDefined()
      expect(run.status?.completionTime).toBeDefined()
      expect(run.status?.conditions?.[0]).toMatchObject({ type: "Succeeded", status: "True" })
      // Every step it went through, as `kubectl get csrun -o yaml` shows them.
      expect(run.status?.conditions?.map((condition) => [condition.type, condition.status])).toEqual([
        ["Succeeded", "True"],
        ["Scanned", "True"],
        ["ResultWritten", "True"],
        ["EventsEmitted", "True"]
      ])

      const [result, ...others] = yield* listResults
      expect(others).toHaveLength(0)
      expect(result!.metadata.ownerReferences?.[0]).toMatchObject({ kind: "ComplianceScanRun", uid: run.metadata.uid })
      expect(result!.spec.derivedFromRun).toEqual({ name: "nightly", uid: run.metadata.uid })
      expect(result!.spec.checks.map((check) => check.checkID)).toEqual(["rule-a", "rule-b", "rule-c"])
      expect(result!.status?.worstSeverity).toBe("medium")

      const events = yield* eventsOf(run)
      expect(events.map((event) => [event.spec.type, event.spec.class, event.spec.severity]).sort()).toEqual([
        ["ComplianceScanCompleted", "Compliance", "medium"],
        ["ComplianceScanStarted", "Compliance", "info"]
      ])
      const completed = events.find((event) => event.spec.type === "ComplianceScanCompleted")!
      expect(completed.metadata.name).toBe(securityEventName(run.metadata.uid!, "ComplianceScanCompleted"))
      expect(completed.spec.subject).toMatchObject({ kind: "ComplianceScanRun", name: "nightly", namespace: testNamespace })
      expect(completed.spec.signals).toMatchObject({ backend: "cel", worstSeverity: "medium", fail: "2", resultRef: "nightly" })

      const kubeEvents = yield* kube.list(Resources.Event, { namespace: testNamespace })
      expect(kubeEvents.items.map((event) => event["reason"]).sort()).toEqual(["Started", "Succeeded"])
    }).pipe(Effect.provide(testCluster)))

  it.live("a scanner that cannot start ends the run Failed with its reason, a Result with an error check and a Failed event", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* startOperator({
        kube,
        scanners: [failingScanner("falco", "FalcoCredentialsInvalid", "cannot read /etc/falco/client.crt: no such file")]
      })
      yield* createRun("runtime", { backend: "falco" })
      const run = yield* waitForPhase("runtime", ["Failed"])
      expect(run.status).toMatchObject({
        reason: "FalcoCredentialsInvalid",
        message: "cannot read /etc/falco/client.crt: no such file",
        summary: { error: 1 }
      })
      const [result] = yield* listResults
      expect(result!.spec.checks).toEqual([
        expect.objectContaining({ checkID: "scan.FalcoCredentialsInvalid", outcome: "error", severity: "high" })
      ])
      const events = yield* eventsOf(run)
      expect(events.map((event) => [event.spec.type, event.spec.class, event.spec.severity]).sort()).toEqual([
        ["ComplianceScanFailed", "Anomaly", "high"],
        ["ComplianceScanStarted", "Compliance", "info"]
      ])
    }).pipe(Effect.provide(testCluster)))

  it.live("a defect in a scanner fails that run with InternalError; the operator goes on with the next run", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const operator = yield* startOperator({
        kube,
        scanners: [defectScanner("kube-bench"), instantScanner("cel", [passingCheck("ok")])]
      })
      yield* createRun("broken", { backend: "kube-bench" })
      const broken = yield* waitForPhase("broken", ["Failed"])
      expect(broken.status?.reason).toBe("InternalError")
      expect(broken.status?.message).toContain("Cannot read properties of undefined")
      yield* createRun("after", { backend: "cel-custom" })
      expect((yield* waitForPhase("after", ["Succeeded"])).status?.phase).toBe("Succeeded")
      expect(operator.fiber.pollUnsafe()).toBeUndefined()
    }).pipe(Effect.provide(testCluster)))

  it.live("terminal runs are never touched again, even by a fresh operator", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const sim = yield* SimulatedCluster
      const scans = yield* Ref.make(0)
      yield* sim.apply([{
        ...runManifest("done-before", { backend: "cel" }),
        status: { phase: "Succeeded", reason: "ScanCompleted" }
      }])
      const before = yield* getRun("done-before")
      yield* startOperator({ kube, scanners: [instantScanner("cel", [], scans)] })
      yield* createRun("marker", { backend: "cel" })
      yield* waitForPhase("marker", ["Succeeded"])
      const after = yield* getRun("done-before")
      expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion)
      expect(yield* Ref.get(scans)).toBe(1)
    }).pipe(Effect.provide(testCluster)))

  it.live("changing a run's spec is rejected with 'spec is immutable'", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* createRun("fixed", { backend: "cel", alertOn: "high" })
      const error = yield* kube.patch(Resources.ComplianceScanRun, testNamespace, "fixed", { spec: { alertOn: "low" } }).pipe(
        Effect.flip
      )
      expect(error._tag).toBe("Invalid")
      expect(error.message).toContain("spec is immutable")
    }).pipe(Effect.provide(testCluster)))
})

describe("Reconciler: concurrency", () => {
  it.live("at most --max-concurrent-runs runs scan at once; the others wait in phase ''", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const scanning = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      const gated: Scanner = {
        name: "cel",
        scan: () =>
          Ref.update(scanning, (n) => n + 1).pipe(
            Effect.andThen(Deferred.await(release)),
            Effect.as({ checks: [passingCheck("p")] })
          )
      }
      yield* startOperator({ kube, scanners: [gated], config: { maxConcurrentRuns: 2 } })
      for (let i = 0; i < 5; i++) yield* createRun(`queued-${i}`, { backend: "cel" })
      // Two start (however loaded the machine), and no third follows while they hold their permits.
      yield* Ref.get(scanning).pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n >= 2 }), Effect.timeout("10 seconds"))
      yield* Effect.sleep("300 millis")
      expect(yield* Ref.get(scanning)).toBe(2)
      const phases = yield* Effect.forEach([0, 1, 2, 3, 4], (i) => Effect.map(getRun(`queued-${i}`), (run) => run.status?.phase ?? ""))
      expect(phases.filter((phase) => phase === "Running")).toHaveLength(2)
      expect(phases.filter((phase) => phase === "")).toHaveLength(3)
      yield* Deferred.succeed(release, undefined)
      for (let i = 0; i < 5; i++) yield* waitForPhase(`queued-${i}`, ["Succeeded"])
      expect(yield* Ref.get(scanning)).toBe(5)
    }).pipe(Effect.provide(testCluster)))
})

describe("Reconciler: deletion", () => {
  it.live("deleting a Running run stops its scan at once (its cleanup runs) and writes nothing more", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cleanups = yield* Ref.make(0)
      yield* startOperator({ kube, scanners: [hangingScanner("kube-bench", cleanups)] })
      yield* createRun("doomed", { backend: "kube-bench" })
      yield* waitForPhase("doomed", ["Running"])
      yield* kube.delete(Resources.ComplianceScanRun, testNamespace, "doomed")
      // The deletion is reported: a ComplianceScanFailed event with reason Deleted.
      const failed = yield* listSecurityEvents.pipe(
        Effect.map((events) => events.filter((event) => event.spec.type === "ComplianceScanFailed")),
        Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (events) => events.length > 0 }),
        Effect.timeout("5 seconds")
      )
      expect(failed[0]!.spec).toMatchObject({ class: "Anomaly", severity: "high", signals: { reason: "Deleted" } })
      expect(yield* Ref.get(cleanups)).toBe(1)
      expect(yield* listResults).toHaveLength(0)
      const types = (yield* listSecurityEvents).map((event) => event.spec.type).sort()
      expect(types).toEqual(["ComplianceScanFailed", "ComplianceScanStarted"])
    }).pipe(Effect.provide(testCluster)))

  it.effect("a timeout below 10s is rejected at admission", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(createRun("hasty", { backend: "cel", timeout: "9s" }))
      expect(error._tag).toBe("Invalid")
      expect(error.message).toContain("at least 10s")
      yield* createRun("patient-enough", { backend: "cel", timeout: "10s" })
    }).pipe(Effect.provide(testCluster)))
})

describe("Reconciler: alertOn flips the Completed event's class", () => {
  const cases = severities.flatMap((alertOn) => severities.map((worst) => [alertOn, worst] as const))
  it.live("Detection at and above the threshold, Compliance below it, for every pair of severities", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* startOperator({ kube, scanners: [scriptedScanner("cel")], config: { maxConcurrentRuns: 25 } })
      for (const [alertOn, worst] of cases) {
        yield* createRun(`alert-${alertOn}-${worst}`, { backend: "cel", alertOn }, {
          "test/checks": JSON.stringify([failingCheck("r", worst), passingCheck("p")])
        })
      }
      for (const [alertOn, worst] of cases) {
        const run = yield* waitForPhase(`alert-${alertOn}-${worst}`, ["Succeeded"])
        const completed = (yield* eventsOf(run)).find((event) => event.spec.type === "ComplianceScanCompleted")!
        const expected = severities.indexOf(worst) >= severities.indexOf(alertOn) ? "Detection" : "Compliance"
        expect([alertOn, worst, completed.spec.class, completed.spec.severity]).toEqual([alertOn, worst, expected, worst])
      }
    }).pipe(Effect.provide(testCluster)), 60_000)

  it.live("nothing failed: Compliance, severity info, no worstSeverity (warn does not count)", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const review = { checkID: "manual", title: "review", outcome: "warn", severity: "critical" } as const
      yield* startOperator({ kube, scanners: [instantScanner("kube-bench", [review, passingCheck("p")])] })
      yield* createRun("clean", { backend: "kube-bench", alertOn: "info" })
      const run = yield* waitForPhase("clean", ["Succeeded"])
      expect(run.status?.worstSeverity).toBeUndefined()
      const completed = (yield* eventsOf(run)).find((event) => event.spec.type === "ComplianceScanCompleted")!
      expect([completed.spec.class, completed.spec.severity]).toEqual(["Compliance", "info"])
    }).pipe(Effect.provide(testCluster)))
})

describe("Reconciler: control mappings and framework reports", () => {
  it.live("one scan fills the SOC2 and ISO 27001 reports from spec.controlMappings", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const checks = [failingCheck("cis.1.2.1", "critical"), passingCheck("cis.1.1.1"), passingCheck("cis.4.2.1")]
      yield* startOperator({ kube, scanners: [instantScanner("kube-bench", checks)] })
      yield* createRun("mapped", {
        backend: "kube-bench",
        controlMappings: [
          { checkID: "cis.1.2.1", frameworks: [{ name: "soc2", controlID: "CC6.1" }, { name: "iso27001", controlID: "A.8.5" }] },
          { checkID: "cis.4.2.1", frameworks: [{ name: "soc2", controlID: "CC6.1" }] },
          { checkID: "cis.1.1.1", frameworks: [{ name: "iso27001", controlID: "A.8.9" }] }
        ]
      })
      yield* waitForPhase("mapped", ["Succeeded"])
      const [result] = yield* listResults
      expect(result!.spec.checks.find((check) => check.checkID === "cis.1.2.1")!.frameworks).toEqual([
        { name: "soc2", controlID: "CC6.1" },
        { name: "iso27001", controlID: "A.8.5" }
      ])
      expect(result!.spec.frameworks).toEqual([
        {
          name: "iso27001",
          controls: [
            { controlID: "A.8.5", outcome: "fail", checks: ["cis.1.2.1"] },
            { controlID: "A.8.9", outcome: "pass", checks: ["cis.1.1.1"] }
          ],
          passed: 1,
          failed: 1
        },
        {
          name: "soc2",
          controls: [{ controlID: "CC6.1", outcome: "fail", checks: ["cis.1.2.1", "cis.4.2.1"] }],
          passed: 0,
          failed: 1
        }
      ])
    }).pipe(Effect.provide(testCluster)))
})

describe("Reconciler: metrics", () => {
  it.live("/metrics text carries the required metrics with their labels after a few runs", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const operator = yield* startOperator({
        kube,
        scanners: [
          instantScanner("kube-bench", [failingCheck("cis.1.2.1", "critical"), failingCheck("cis.1.1.1", "medium")]),
          failingScanner("falco", "FalcoTLSHandshakeFailed", "the server rejected our certificate")
        ]
      })
      yield* createRun("bench", { backend: "kube-bench", benchmark: "cis-1.10" })
      yield* createRun("runtime", { backend: "falco" })
      yield* waitForPhase("bench", ["Succeeded"])
      yield* waitForPhase("runtime", ["Failed"])
      const text = (yield* operator.metrics.render).body
      expect(text).toContain('ugallu_compliance_scan_runs_total{backend="kube-bench",outcome="Succeeded"} 1')
      expect(text).toContain('ugallu_compliance_scan_runs_total{backend="falco",outcome="Failed"} 1')
      expect(text).toContain('ugallu_compliance_scan_findings_total{benchmark="cis-1.10",severity="critical"} 1')
      expect(text).toContain('ugallu_compliance_scan_findings_total{benchmark="cis-1.10",severity="medium"} 1')
      expect(text).toMatch(/ugallu_compliance_scan_duration_seconds_count\{backend="kube-bench"\} 1/)
      expect(text).toContain('ugallu_compliance_scan_backend_errors_total{backend="falco",reason="FalcoTLSHandshakeFailed"} 1')
      expect(text).toContain('ugallu_compliance_scan_security_events_total{type="ComplianceScanStarted",class="Compliance"} 2')
      expect(text).toContain('ugallu_compliance_scan_active_runs{backend="kube-bench"} 0')
    }).pipe(Effect.provide(testCluster)))
})
