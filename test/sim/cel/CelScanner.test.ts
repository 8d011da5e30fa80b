import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import type { Check } from "../../../src/api/Check.ts"
import type { CelRule, ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { CelScanner, type CelScannerOptions } from "../../../src/backends/cel/CelScanner.ts"
import type { ScanRequest } from "../../../src/backends/Scanner.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { Forbidden, Transient } from "../../../src/services/kube/KubeErrors.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"
import { namespace, restrictedPod, violating } from "../../unit/cel/PodFixtures.ts"
import { expectScenarioFindings, scenarioObjects, scenarioRun } from "./CelScenario.ts"

/** The cel scanner against the simulated API server: listing, matching, findings, failures. */

const run = (spec: Partial<ComplianceScanRun["spec"]> = {}, name = "cel-run"): ComplianceScanRun => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: "ugallu-system", uid: `uid-${name}` },
  spec: { backend: "cel", ...spec }
})

const request = (scanRun: ComplianceScanRun, deadline = Date.now() + 60_000): ScanRequest => ({
  run: scanRun,
  deadline,
  reportProgress: () => Effect.void
})

const rule = (id: string, expression: string, extra: Partial<CelRule> = {}): CelRule => ({ id, severity: "high", expression, ...extra })

const world: ReadonlyArray<KubeObject> = [
  namespace("shop", { team: "payments", env: "prod" }),
  namespace("lab", { team: "research" }),
  restrictedPod("web", "shop"),
  violating("debugger", (pod) => {
    pod.metadata.namespace = "shop"
    pod.spec.containers[0].securityContext.privileged = true
  }),
  violating("agent", (pod) => {
    pod.metadata.namespace = "lab"
    pod.metadata.labels = { app: "agent", tier: "system" }
    pod.spec.volumes.push({ name: "root", hostPath: { path: "/" } })
  })
]

const cluster = (objects: ReadonlyArray<KubeObject> = world, options: Partial<CelScannerOptions> = {}) =>
  CelScanner.layer(options).pipe(Layer.provideMerge(Layer.mergeAll(SimulatedCluster.layer({ objects }), Metrics.layerTest)))

const scan = (scanRun: ComplianceScanRun, deadline?: number) =>
  Effect.gen(function*() {
    const scanner = yield* CelScanner
    return yield* Effect.scoped(scanner.scan(request(scanRun, deadline)))
  })

const failure = (scanRun: ComplianceScanRun, deadline?: number) => Effect.flip(scan(scanRun, deadline))

const byId = (checks: ReadonlyArray<Check>, id: string) => {
  const found = checks.find((check) => check.checkID === id)
  if (found === undefined) throw new Error(`no check ${id} in ${checks.map((check) => check.checkID).join(", ")}`)
  return found
}

const metricValue = (body: string, line: string) => Number(body.split("\n").find((text) => text.startsWith(line))?.slice(line.length + 1) ?? "0")

describe("cel scanner on the simulated cluster", () => {
  it.effect("runs a built-in pack over the cluster's Pods with the expected findings", () =>
    Effect.gen(function*() {
      const report = yield* scan(run({ profile: "pod-security-restricted" }))
      expect(report.checks).toHaveLength(19)
      expect(byId(report.checks, "pss-baseline-privileged")).toEqual({
        checkID: "pss-baseline-privileged",
        title: "Privileged containers are not allowed",
        detail: "3 checked: 2 pass, 1 fail, 0 error",
        remediation: "Remove securityContext.privileged (or set it to false) from every container.",
        outcome: "fail",
        severity: "critical",
        subjects: [{ kind: "Pod", name: "debugger", namespace: "shop", outcome: "fail", message: "privileged containers in pod debugger: app" }],
        subjectCounts: { pass: 2, fail: 1, warn: 0, skip: 0, error: 0 },
        frameworks: [{ name: "cis", controlID: "5.2.2" }]
      })
      expect(byId(report.checks, "pss-baseline-host-path-volumes")).toMatchObject({
        outcome: "fail",
        subjects: [{ name: "agent", namespace: "lab", message: "hostPath volumes in pod agent: root (/)" }]
      })
      expect(byId(report.checks, "pss-restricted-volume-types").outcome).toBe("fail")
      const others = report.checks.filter((check) => !["pss-baseline-privileged", "pss-baseline-host-path-volumes", "pss-restricted-volume-types"].includes(check.checkID))
      expect(others.map((check) => check.outcome)).toEqual(others.map(() => "pass"))
      expect(report.failure).toBeUndefined()
    }).pipe(Effect.provide(cluster())))

  it.effect("ends the shared scenario (also run by the cluster tier) with the expected findings", () =>
    Effect.gen(function*() {
      const report = yield* scan(scenarioRun)
      expectScenarioFindings(report.checks)
    }).pipe(Effect.provide(cluster([...world, ...scenarioObjects]))))

  it.effect("combines a pack with inline rules; an inline rule replaces the pack rule with its id", () =>
    Effect.gen(function*() {
      const report = yield* scan(
        run({
          profile: "pod-security-baseline",
          cel: {
            rules: [
              rule("pss-baseline-privileged", "true", { title: "Privileged allowed here", severity: "low" }),
              rule("has-app-label", "has(object.metadata.labels) && 'app' in object.metadata.labels", { severity: "medium" })
            ]
          }
        })
      )
      expect(report.checks.map((check) => check.checkID)).toHaveLength(14)
      expect(byId(report.checks, "pss-baseline-privileged")).toMatchObject({ title: "Privileged allowed here", severity: "low", outcome: "pass" })
      expect(byId(report.checks, "has-app-label")).toMatchObject({ outcome: "pass", subjectCounts: { pass: 3 } })
    }).pipe(Effect.provide(cluster())))

  it.effect("matches rules by resource, namespaceSelector and labelSelector, with namespaceObject", () =>
    Effect.gen(function*() {
      const report = yield* scan(
        run({
          cel: {
            rules: [
              rule("payments-pods", "object.metadata.namespace == 'shop'", { match: { namespaceSelector: { matchLabels: { team: "payments" } } } }),
              rule("system-tier", "false", {
                match: { labelSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["system"] }] } },
                messageExpression: "'tier ' + object.metadata.labels.tier + ' pod ' + object.metadata.name + ' in team ' + namespaceObject.metadata.labels.team"
              }),
              rule("namespaces-have-team", "has(object.metadata.labels) && 'team' in object.metadata.labels", { match: { resources: ["namespaces"] } }),
              rule("prod-namespaces", "object.metadata.labels.env == 'prod'", {
                match: { resources: ["namespaces"], namespaceSelector: { matchLabels: { env: "prod" } } }
              }),
              rule("nothing-matches", "true", { match: { namespaceSelector: { matchLabels: { team: "nobody" } } } })
            ]
          }
        })
      )
      expect(byId(report.checks, "payments-pods")).toMatchObject({ outcome: "pass", subjectCounts: { pass: 2, fail: 0 } })
      expect(byId(report.checks, "system-tier")).toMatchObject({
        outcome: "fail",
        subjects: [{ name: "agent", message: "tier system pod agent in team research" }],
        subjectCounts: { fail: 1, pass: 0 }
      })
      expect(byId(report.checks, "namespaces-have-team")).toMatchObject({ outcome: "pass", subjectCounts: { pass: 2 } })
      expect(byId(report.checks, "prod-namespaces")).toMatchObject({ outcome: "pass", subjectCounts: { pass: 1 } })
      expect(byId(report.checks, "nothing-matches")).toMatchObject({ outcome: "skip", detail: "no matching objects" })
    }).pipe(Effect.provide(cluster())))

  it.effect("lists in pages and caps subjects per check while keeping full counts", () =>
    Effect.gen(function*() {
      const pods = Array.from({ length: 1_234 }, (_, index) =>
        violating(`pod-${String(index).padStart(4, "0")}`, (pod) => {
          pod.metadata.namespace = "lab"
          pod.spec.hostPID = true
        }))
      const control = yield* SimulatedCluster
      yield* control.apply(pods)
      yield* control.resetRequestCounts
      const report = yield* scan(run({ cel: { rules: [rule("no-host-pid", "!(has(object.spec.hostPID) && object.spec.hostPID)")] } }))
      const found = byId(report.checks, "no-host-pid")
      expect(found.subjectCounts).toEqual({ pass: 3, fail: 1_234, warn: 0, skip: 0, error: 0 })
      expect(found.subjects).toHaveLength(100)
      expect(found.subjects![0]).toMatchObject({ name: "pod-0000", outcome: "fail", message: "failed expression: !(has(object.spec.hostPID) && object.spec.hostPID)" })
      // 1,237 pods in pages of 500, and one page of namespaces.
      expect((yield* control.requestCounts).list).toBe(4)
    }).pipe(Effect.provide(cluster(world, { pageSize: 500 }))))

  it.effect("makes an object a rule cannot evaluate an error subject; the run still succeeds", () =>
    Effect.gen(function*() {
      yield* (yield* SimulatedCluster).apply([
        violating("bare", (pod) => {
          pod.metadata.namespace = "lab"
          delete pod.spec.containers[0].securityContext.capabilities
        })
      ])
      const report = yield* scan(run({ cel: { rules: [rule("drops", "object.spec.containers.all(c, c.securityContext.capabilities.drop.size() > 0)")] } }))
      expect(byId(report.checks, "drops")).toMatchObject({
        outcome: "error",
        subjects: [{ name: "bare", namespace: "lab", outcome: "error", message: "expression failed: No such key: capabilities" }],
        subjectCounts: { pass: 3, fail: 0, error: 1 }
      })
    }).pipe(Effect.provide(cluster())))

  it.effect("fails the run with CELCompileError naming the rule and the position", () =>
    Effect.gen(function*() {
      const error = yield* failure(run({ cel: { rules: [rule("ok", "true"), rule("typo", "object.metadata.name.startsWith('a') &&\n  object.spec.containers.all(c, c.image.endsWith('x') ||)")] } }))
      expect(error.reason).toBe("CELCompileError")
      expect(error.message).toBe('rule "typo": expression does not compile at line 2, column 57: Unexpected token: RPAREN')
      const message = yield* failure(run({ cel: { rules: [rule("msg", "false", { messageExpression: "object.spec.containers.size()" })] } }))
      expect(message.message).toBe('rule "msg": messageExpression does not compile at line 1, column 1: the expression must evaluate to string, but its type is int')
    }).pipe(Effect.provide(cluster())))

  it.effect("refuses an unknown profile, a run without rules, and duplicate rule ids", () =>
    Effect.gen(function*() {
      expect(yield* failure(run({ profile: "pod-security-strict" }))).toMatchObject({
        reason: "UnknownProfile",
        message: 'unknown CEL profile "pod-security-strict"; known profiles: default, network, pod-security-baseline, pod-security-restricted, rbac, workload-hardening'
      })
      expect((yield* failure(run())).reason).toBe("NoRules")
      expect((yield* failure(run({ cel: { rules: [] } }))).reason).toBe("NoRules")
      expect(yield* failure(run({ cel: { rules: [rule("a", "true"), rule("a", "false")] } }))).toMatchObject({
        reason: "DuplicateRuleID",
        message: 'two rules have the id "a"'
      })
      expect((yield* CelScanner).profiles).toEqual(["default", "network", "pod-security-baseline", "pod-security-restricted", "rbac", "workload-hardening"])
    }).pipe(Effect.provide(cluster())))

  it.effect("fails with CELCostExceeded or CELTimeout naming the rule", () =>
    Effect.gen(function*() {
      const cubic = "object.spec.containers.all(a, [" + Array.from({ length: 200 }, (_, index) => index).join(",") + "].all(b, [" + Array.from({ length: 200 }, (_, index) => index).join(",") + "].all(c, b != c || b == c)))"
      expect(yield* failure(run({ cel: { rules: [rule("cubic", cubic)] } }))).toMatchObject({
        reason: "CELCostExceeded",
        message: 'rule "cubic" exceeded the cost limit of 10000 units for one evaluation'
      })
      // A run whose deadline has passed stops at the first look at the clock.
      const now = yield* Clock.currentTimeMillis
      expect(yield* failure(run({ cel: { rules: [rule("late", "true")] } }), now - 1)).toMatchObject({
        reason: "CELTimeout",
        message: `the run exceeded its CEL time bound (60 s of evaluation per 10,000 objects, or the run's timeout) while evaluating rule "late"`
      })
    }).pipe(Effect.provide(cluster(world, { costLimits: { perEvaluation: 10_000, perRun: 1_000_000 } }))))

  it.live("retries Transient list errors; Namespaces that cannot be listed fail the run with KubernetesAPIError", () =>
    Effect.gen(function*() {
      const control = yield* SimulatedCluster
      yield* control.failNext("list", new Transient({ message: "etcd leader changed" }))
      const report = yield* scan(run({ cel: { rules: [rule("any", "true")] } }))
      expect(byId(report.checks, "any").subjectCounts?.pass).toBe(3)
      // Namespaces are listed first; a kind other than Namespaces that is refused is only its rules' error (EveryKind.test.ts).
      yield* control.failNext("list", new Forbidden({ message: 'namespaces is forbidden: User "system:serviceaccount:ugallu-system:operator" cannot list resource "namespaces"' }))
      const error = yield* failure(run({ cel: { rules: [rule("any", "true")] } }))
      expect(error.reason).toBe("KubernetesAPIError")
      expect(error.message).toMatch(/^cannot list namespaces: Forbidden: namespaces is forbidden/)
    }).pipe(Effect.provide(cluster())))

  it.effect("an API server down for 40 s (every list failing) is waited out until the run's deadline", () =>
    Effect.gen(function*() {
      const control = yield* SimulatedCluster
      yield* control.setFaults({ errorRate: 1 })
      const deadline = (yield* Clock.currentTimeMillis) + 10 * 60_000
      const scanning = yield* Effect.forkChild(scan(run({ cel: { rules: [rule("any", "true")] } }), deadline))
      yield* TestClock.adjust("40 seconds")
      expect(scanning.pollUnsafe()).toBeUndefined()
      yield* control.setFaults({ errorRate: 0 })
      yield* TestClock.adjust("10 seconds")
      const report = yield* Fiber.join(scanning)
      expect(byId(report.checks, "any").subjectCounts?.pass).toBe(3)
      // Past the deadline the error stands.
      yield* control.setFaults({ errorRate: 1 })
      const late = yield* Effect.forkChild(failure(run({ cel: { rules: [rule("any", "true")] } }), (yield* Clock.currentTimeMillis) + 5_000))
      yield* TestClock.adjust("20 seconds")
      expect((yield* Fiber.join(late)).reason).toBe("KubernetesAPIError")
    }).pipe(Effect.provide(cluster())))

  it.effect("keeps compiled programs across runs and counts evaluations in the metrics", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const before = (yield* metrics.render).body
      yield* scan(run({ profile: "pod-security-baseline" }))
      yield* scan(run({ profile: "pod-security-baseline" }))
      const after = (yield* metrics.render).body
      const hits = 'ugallu_compliance_scan_cel_program_cache_requests_total{result="hit"}'
      const misses = 'ugallu_compliance_scan_cel_program_cache_requests_total{result="miss"}'
      // The packs were compiled at start-up: both runs find every program in the cache.
      expect(metricValue(after, hits) - metricValue(before, hits)).toBe(2 * 13 * 2)
      expect(metricValue(after, misses) - metricValue(before, misses)).toBe(0)
      expect(metricValue(after, "ugallu_compliance_scan_cel_evaluations_total")).toBe(2 * 13 * 3)
    }).pipe(Effect.provide(cluster())))

  it.effect("refuses to start with a broken built-in pack", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(join(tmpdir(), "cel-packs-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      writeFileSync(join(directory, "broken.yaml"), "name: broken\nrules:\n  - id: bad\n    severity: high\n    expression: \"object.(\"\n")
      const exit = yield* Effect.exit(
        Layer.build(cluster(world, { packsDirectory: directory }))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      expect(String(defect)).toMatch(/built-in CEL rule pack "broken" is broken: rule "bad": expression does not compile at line 1, column \d+/)
    }).pipe(Effect.scoped))
})
