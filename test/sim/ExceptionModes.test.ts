import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Check } from "../../src/api/Check.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import { eventsOf, runManifest, startOperator, testCluster, waitForPhase } from "../support/TestOperator.ts"
import { instantScanner } from "../support/TestScanners.ts"

/**
 * Both modes end to end in the simulated cluster: what the run's Completed SecurityEvent,
 * status and the findings metric say when the only critical finding is excepted.
 */
const privileged: Check = {
  checkID: "pss-baseline-privileged",
  title: "Privileged containers are not allowed",
  outcome: "fail",
  severity: "critical",
  subjects: [{ kind: "Pod", name: "cilium-x1", namespace: "kube-system", outcome: "fail" }]
}
const hostPorts: Check = {
  checkID: "pss-baseline-host-ports",
  title: "Host ports are not allowed",
  outcome: "fail",
  severity: "medium",
  subjects: [{ kind: "Pod", name: "web", namespace: "payments", outcome: "fail" }]
}

const exceptionFor = (mode: "waive" | "alertOnly") => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceException",
  metadata: { name: `cni-${mode.toLowerCase()}`, namespace: "ugallu-system" },
  spec: {
    mode,
    match: { checks: ["pss-baseline-privileged"], subjects: { names: ["cilium-*"] } },
    justification: "The CNI must be privileged.",
    approvedBy: "security-team",
    expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString()
  }
})

const scenario = (mode: "waive" | "alertOnly" | undefined) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    yield* kube.create(Resources.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name: "ugallu-system" } })
    if (mode !== undefined) yield* kube.create(Resources.ComplianceException, exceptionFor(mode))
    const operator = yield* startOperator({ kube, scanners: [instantScanner("cel", [privileged, hostPorts])] })
    yield* kube.create(Resources.ComplianceScanRun, runManifest("nightly", { backend: "cel", alertOn: "high" }))
    const run = yield* waitForPhase("nightly", ["Succeeded"])
    const completed = (yield* eventsOf(run)).find((event) => event.spec.type === "ComplianceScanCompleted")!
    const { body } = yield* operator.metrics.render
    const critical = body.split("\n").find((line) => line.startsWith('ugallu_compliance_scan_findings_total{benchmark="cel",severity="critical"}'))
    return { run, completed, critical }
  }).pipe(Effect.provide(testCluster))

describe("exception modes: events, status and metrics", () => {
  it.live("without an exception the critical finding makes the Completed event a Detection", () =>
    Effect.gen(function*() {
      const { run, completed, critical } = yield* scenario(undefined)
      expect(run.status?.worstSeverity).toBe("critical")
      expect([completed.spec.class, completed.spec.severity]).toEqual(["Detection", "critical"])
      expect(critical).toBe('ugallu_compliance_scan_findings_total{benchmark="cel",severity="critical"} 1')
    }))

  it.live("waive: the run's worst severity is the next finding, the event stays Compliance, the metric does not count it", () =>
    Effect.gen(function*() {
      const { run, completed, critical } = yield* scenario("waive")
      expect(run.status?.worstSeverity).toBe("medium")
      expect(run.status?.summary).toEqual({ pass: 0, fail: 1, warn: 0, skip: 1, error: 0, excepted: 1 })
      expect([completed.spec.class, completed.spec.severity, completed.spec.signals?.excepted]).toEqual(["Compliance", "medium", "1"])
      expect(critical).toBe('ugallu_compliance_scan_findings_total{benchmark="cel",severity="critical"} 0')
      expect(run.status?.exceptions).toEqual([expect.objectContaining({ name: "cni-waive", namespace: "ugallu-system", mode: "waive", matched: 1 })])
    }))

  it.live("alertOnly: the finding stays fail (summary fail 2) but neither the event class nor the metric sees it", () =>
    Effect.gen(function*() {
      const { run, completed, critical } = yield* scenario("alertOnly")
      expect(run.status?.worstSeverity).toBe("medium")
      expect(run.status?.summary).toEqual({ pass: 0, fail: 2, warn: 0, skip: 0, error: 0, excepted: 1 })
      expect([completed.spec.class, completed.spec.severity]).toEqual(["Compliance", "medium"])
      expect(critical).toBe('ugallu_compliance_scan_findings_total{benchmark="cel",severity="critical"} 0')
    }))
})
