import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import type { FalcoEvent } from "../../src/backends/falco/FalcoEvent.ts"
import { simulatedAlert, toHttpJson } from "../../sim/falco/SimulatedAlerts.ts"
import { generateTestCertificates, type TestCertificates } from "../../sim/falco/TestCertificates.ts"
import { post } from "../sim/falco/FalcoFixtures.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually, sleep } from "./harness/Eventually.ts"
import { freePort } from "./harness/FreePort.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { apiVersions, resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, resultPath, waitForRun } from "./harness/Scans.ts"
import { shortLease, startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * Two operator processes with the Falco receiver and leader election on the real API
 * server: only the Lease holder takes alerts (the standby answers 503), the leader's scan
 * has them, and after the leader dies the new leader's Result says what it could not see.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let certificates: TestCertificates
const certificateScope = Effect.runSync(Scope.make())
const operators: Array<OperatorProcess> = []
const ports = new Set<number>()

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "falco-replicas")
  certificates = await Effect.runPromise(generateTestCertificates().pipe(Effect.provideService(Scope.Scope, certificateScope)))
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await deleteNamespace(admin, namespace)
  admin.close()
  await Effect.runPromise(Scope.close(certificateScope, Exit.void))
})

const holder = async () =>
  String((await admin.get(resourcePath(apiVersions.Lease, "Lease", namespace, "ugallu-compliance-scan-leader"))).spec.holderIdentity ?? "")

const startReplica = async (name: string) => {
  const port = await freePort(ports)
  const operator = await startTestOperator(cluster, identity, {
    name,
    namespace,
    flags: [
      `--falco-receiver-bind-address=127.0.0.1:${port}`,
      `--falco-receiver-cert-file=${certificates.server.certFile}`,
      `--falco-receiver-key-file=${certificates.server.keyFile}`,
      `--falco-receiver-client-ca-file=${certificates.ca.certFile}`
    ]
  })
  operators.push(operator)
  return { operator, port }
}

/** POSTs one alert as Falco's http_output would; the HTTP status. */
const send = async (port: number, alert: FalcoEvent): Promise<number> => {
  const answer = await Effect.runPromise(post({
    port,
    ca: certificates.ca.cert,
    client: certificates.client,
    body: JSON.stringify(toHttpJson(alert))
  }))
  return answer.status
}

const serving = (operator: OperatorProcess) => operator.metricSum("ugallu_compliance_scan_falco_receiver_serving")

const scan = async (name: string, window: string): Promise<{ run: Json; checks: Array<Json> }> => {
  await createRun(admin, namespace, name, { backend: "falco", falco: { window } })
  const run = await waitForRun(admin, namespace, name)
  const result = await admin.get(resultPath(namespace, name))
  return { run, checks: result.spec.checks as Array<Json> }
}

/** Alerts of the simulated catalogue: 1 = Write below etc, 2 = Read sensitive file untrusted, 3 = Drop and execute new binary. */
const alert = (index: number) => simulatedAlert(index, Date.now())

describe("Falco receiver with two replicas", () => {
  it("only the leader takes alerts, its scan has them, and a leader change is reported as a coverage gap", async () => {
    const a = await startReplica("falco-a")
    await withOperatorLogs(operators, async () => {
      await eventually(async () => ((await holder()).startsWith("falco-a_") && (await serving(a.operator)) === 1 ? true : undefined), {
        what: "falco-a to lead and take alerts",
        timeoutMillis: 30_000
      })
      const b = await startReplica("falco-b")
      await eventually(async () => ((await b.operator.metricSum("ugallu_compliance_scan_falco_receiver_limit")) > 0 ? true : undefined), {
        what: "falco-b's receiver to start",
        timeoutMillis: 30_000
      })
      expect(await serving(b.operator)).toBe(0)

      // The standby refuses (so nothing it could never scan is accepted); the leader takes it.
      expect(await send(b.port, alert(1))).toBe(503)
      expect(await b.operator.metricSum("ugallu_compliance_scan_falco_receiver_rejected_requests_total", { reason: "standby" })).toBe(1)
      // The leader has been taking alerts for longer than the 5s window: complete coverage.
      await sleep(6_000)
      expect(await send(a.port, alert(1))).toBe(200)
      const before = await scan("before-failover", "5s")
      expect(before.run.status.phase).toBe("Succeeded")
      expect(before.checks.map((check) => [check.checkID, check.outcome])).toEqual([
        ["falco.write-below-etc", "fail"],
        ["falco.coverage", "pass"]
      ])

      // Accepted by the leader, which then dies before any scan read it.
      expect(await send(a.port, alert(3))).toBe(200)
      await a.operator.kill()
      await eventually(async () => ((await holder()).startsWith("falco-b_") && (await serving(b.operator)) === 1 ? true : undefined), {
        what: "falco-b to take over and take alerts",
        timeoutMillis: 4 * shortLease.leaseDurationMillis
      })
      expect(await send(b.port, alert(2))).toBe(200)
      const after = await scan("after-failover", "1m")
      expect(after.run.status.phase).toBe("Succeeded")
      // The new leader has what it was sent; the dead leader's alert is not silently missing:
      // the Result says the replica took alerts only since it became the leader.
      expect(after.checks.map((check) => [check.checkID, check.outcome])).toEqual([
        ["falco.read-sensitive-file-untrusted", "fail"],
        ["falco.coverage-incomplete", "warn"]
      ])
      expect(after.checks[1]!.detail).toMatch(/^receiver: the receiver has taken alerts only since \S+ \(operator start, restart or leader change\), after the window began/u)
    })
  })

  it("after an operator restart, alerts posted before it are reported as a coverage gap, never as a no-events pass", async () => {
    // A namespace (and Lease) of its own: the replicas of the test above are gone or standing by.
    const restartNamespace = await createNamespace(admin, "falco-restart")
    const port = await freePort(ports)
    const start = (name: string) =>
      startTestOperator(cluster, identity, {
        name,
        namespace: restartNamespace,
        flags: [
          `--falco-receiver-bind-address=127.0.0.1:${port}`,
          `--falco-receiver-cert-file=${certificates.server.certFile}`,
          `--falco-receiver-key-file=${certificates.server.keyFile}`,
          `--falco-receiver-client-ca-file=${certificates.ca.certFile}`
        ]
      })
    const first = await start("falco-restart-1")
    operators.push(first)
    try {
      await withOperatorLogs(operators, async () => {
        await eventually(async () => ((await serving(first)) === 1 ? true : undefined), { what: "the operator to take alerts", timeoutMillis: 30_000 })
        expect(await send(port, alert(1))).toBe(200)
        await first.kill()
        const second = await start("falco-restart-2")
        operators.push(second)
        await eventually(async () => ((await serving(second)) === 1 ? true : undefined), {
          what: "the restarted operator to take alerts",
          timeoutMillis: 4 * shortLease.leaseDurationMillis + 30_000
        })
        await createRun(admin, restartNamespace, "after-restart", { backend: "falco", falco: { window: "1m" } })
        const run = await waitForRun(admin, restartNamespace, "after-restart")
        expect(run.status.phase).toBe("Succeeded")
        const checks = (await admin.get(resultPath(restartNamespace, "after-restart"))).spec.checks as Array<Json>
        expect(checks.map((check) => [check.checkID, check.outcome])).toEqual([
          ["falco.no-events", "skip"],
          ["falco.coverage-incomplete", "warn"]
        ])
        expect(checks[1]!.detail).toMatch(/^receiver: the receiver has taken alerts only since \S+ \(operator start, restart or leader change\)/u)
      })
    } finally {
      await deleteNamespace(admin, restartNamespace)
    }
  })
})
