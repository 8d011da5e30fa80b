import { randomBytes } from "node:crypto"
import { networkInterfaces } from "node:os"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { simulatedAlert, toHttpJson } from "../../sim/falco/SimulatedAlerts.ts"
import { generateTestCertificates, type TestCertificates } from "../../sim/falco/TestCertificates.ts"
import { post } from "../sim/falco/FalcoFixtures.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, operatorNamespace, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import { freePort } from "./harness/FreePort.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { apiVersions, resourcePath } from "./harness/ResourcePaths.ts"
import { createRun, resultPath, waitForRun } from "./harness/Scans.ts"
import { shortLease, startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * Leader-only routing of the Falco receiver on the real API server, with two operator
 * processes under deploy/'s RBAC: the receiver Service has no selector and the leader
 * points its EndpointSlice at itself; after the leader dies the new one repoints it. Both
 * replicas run on this machine, so they share its non-loopback address as POD_IP (the API
 * server refuses loopback endpoints) and differ by receiver port: the slice's port tells
 * which replica it names.
 */
const cluster = inject("cluster")
const hostIP = Object.values(networkInterfaces()).flat().find((entry) => entry?.family === "IPv4" && !entry.internal)?.address
if (hostIP === undefined) throw new Error("this machine has no non-loopback IPv4 address to stand for a Pod IP")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
let certificates: TestCertificates
const certificateScope = Effect.runSync(Scope.make())
const operators: Array<OperatorProcess> = []
const ports = new Set<number>()
const service = `falco-route-${randomBytes(3).toString("hex")}`
const slicePath = resourcePath("discovery.k8s.io/v1", "EndpointSlice", operatorNamespace, `${service}-leader`)

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "falco-routing")
  certificates = await Effect.runPromise(generateTestCertificates({ serverIpAddresses: [hostIP] }).pipe(Effect.provideService(Scope.Scope, certificateScope)))
  // The receiver Service as deploy/ ships it: no selector, a port named https.
  await admin.create(resourcePath("v1", "Service", operatorNamespace), {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: service, namespace: operatorNamespace },
    spec: { type: "ClusterIP", ports: [{ name: "https", port: 8443, targetPort: 8443, protocol: "TCP" }] }
  })
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await admin.remove(slicePath).catch(() => undefined)
  await admin.remove(resourcePath("v1", "Service", operatorNamespace, service)).catch(() => undefined)
  await deleteNamespace(admin, namespace)
  admin.close()
  await Effect.runPromise(Scope.close(certificateScope, Exit.void))
})

const lease = () => admin.get(resourcePath(apiVersions.Lease, "Lease", namespace, "ugallu-compliance-scan-leader"))

const startReplica = async (name: string) => {
  const port = await freePort(ports)
  const operator = await startTestOperator(cluster, identity, {
    name,
    namespace,
    flags: [
      `--falco-receiver-bind-address=${hostIP}:${port}`,
      `--falco-receiver-cert-file=${certificates.server.certFile}`,
      `--falco-receiver-key-file=${certificates.server.keyFile}`,
      `--falco-receiver-client-ca-file=${certificates.ca.certFile}`,
      `--falco-receiver-service=${service}`
    ],
    // The slice lives with the Service in the operator's namespace (where deploy/'s Role allows it).
    env: { POD_IP: hostIP, POD_NAMESPACE: operatorNamespace }
  })
  operators.push(operator)
  return { name, operator, port }
}

/** The address the EndpointSlice names, once it exists. */
const sliceAddress = async (): Promise<{ slice: Json; address: string; port: number } | undefined> => {
  const slice = await admin.find(slicePath)
  if (slice === undefined) return undefined
  return { slice, address: String(slice.endpoints?.[0]?.addresses?.[0]), port: Number(slice.ports?.[0]?.port) }
}

const waitForSliceAt = (replica: { name: string; port: number }, timeoutMillis: number) =>
  eventually(async () => {
    const current = await sliceAddress()
    return current?.port === replica.port ? current : undefined
  }, { what: `the EndpointSlice to name ${replica.name} (port ${replica.port})`, timeoutMillis, intervalMillis: 50 })

/** POSTs alerts one by one to the address, as Falco's http_output would; their HTTP statuses. */
const sendAll = async (address: { address: string; port: number }, indices: ReadonlyArray<number>) => {
  const statuses: Array<number> = []
  for (const index of indices) {
    const answer = await Effect.runPromise(post({
      host: address.address,
      port: address.port,
      ca: certificates.ca.cert,
      client: certificates.client,
      body: JSON.stringify(toHttpJson(simulatedAlert(index, Date.now())))
    }))
    statuses.push(answer.status)
  }
  return statuses
}

/** Alert indices whose rules (Write below etc, Read sensitive file, Drop and execute, Clear Log) make fail checks. */
const failingIndices = (from: number) => [1, 2, 3, 5, 7, 8, 9, 11].map((offset) => from + offset)

/** The scan's alerts: the event counts of every fail check's subjects (each check lists every subject here). */
const scannedAlerts = async (name: string) => {
  await createRun(admin, namespace, name, { backend: "falco", falco: { window: "2m" } })
  const run = await waitForRun(admin, namespace, name)
  expect(run.status.phase).toBe("Succeeded")
  const checks = (await admin.get(resultPath(namespace, name))).spec.checks as Array<Json>
  const failing = checks.filter((check) => check.outcome === "fail")
  return {
    checkIDs: failing.map((check) => String(check.checkID)).sort(),
    alerts: failing.flatMap((check) => check.subjects as Array<Json>).reduce((sum, subject) => sum + Number(subject.count), 0)
  }
}

describe("Falco receiver: leader-only routing through the EndpointSlice", () => {
  it("the slice names the leader, alerts sent there reach its scan, and a takeover repoints it within the lease", async () => {
    const a = await startReplica("route-a")
    await withOperatorLogs(operators, async () => {
      const first = await waitForSliceAt(a, 30_000)
      expect(first.slice.metadata.labels).toMatchObject({
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": "compliance-scan.security.ugallu.io"
      })
      expect(first.slice.addressType).toBe("IPv4")
      expect(first.address).toBe(hostIP)
      expect(first.slice.ports).toEqual([{ name: "https", port: a.port, protocol: "TCP" }])
      expect(first.slice.endpoints[0].targetRef).toMatchObject({ kind: "Pod", name: "route-a", namespace: operatorNamespace })
      expect(String((await lease()).spec.holderIdentity)).toMatch(/^route-a_/u)

      const b = await startReplica("route-b")
      await eventually(async () => ((await b.operator.metricSum("ugallu_compliance_scan_falco_receiver_limit")) > 0 ? true : undefined), {
        what: "route-b's receiver to start",
        timeoutMillis: 30_000
      })
      expect(await b.operator.metricSum("ugallu_compliance_scan_falco_receiver_serving")).toBe(0)

      // Everything sent where the slice points is taken and lands in the leader's scan.
      const before = failingIndices(0)
      expect(await sendAll(first, before)).toEqual(before.map(() => 200))
      const leaderScan = await scannedAlerts("through-slice-a")
      expect(leaderScan.alerts).toBe(before.length)
      expect(leaderScan.checkIDs).toEqual([
        "falco.clear-log-activities",
        "falco.drop-and-execute-new-binary-in-container",
        "falco.read-sensitive-file-untrusted",
        "falco.write-below-etc"
      ])
      // The standby, running all this time, never wrote the slice.
      expect((await sliceAddress())?.slice.metadata.resourceVersion).toBe(first.slice.metadata.resourceVersion)

      const killedAt = Date.now()
      await a.operator.kill()
      const second = await waitForSliceAt(b, 4 * shortLease.leaseDurationMillis)
      const repointedAt = Date.now()
      const acquiredAt = Date.parse(String((await lease()).spec.acquireTime))
      expect(String((await lease()).spec.holderIdentity)).toMatch(/^route-b_/u)
      console.info(
        `EndpointSlice repointed ${repointedAt - killedAt} ms after the leader was killed, ${repointedAt - acquiredAt} ms after route-b took the Lease (lease ${shortLease.leaseDurationMillis} ms, retry ${shortLease.retryPeriodMillis} ms)`
      )
      // The takeover itself waits for the Lease to expire; the slice follows within one lease of it.
      expect(repointedAt - acquiredAt).toBeLessThan(shortLease.leaseDurationMillis)
      expect(repointedAt - killedAt).toBeLessThan(2 * shortLease.leaseDurationMillis + shortLease.retryPeriodMillis)
      expect(second.slice.endpoints[0].targetRef).toMatchObject({ kind: "Pod", name: "route-b" })

      // Sent to the repointed address right away: all taken (never a standby's 503) and all scanned.
      const after = failingIndices(12)
      expect(await sendAll(second, after)).toEqual(after.map(() => 200))
      const newLeaderScan = await scannedAlerts("through-slice-b")
      expect(newLeaderScan.alerts).toBe(after.length)
    })
  })
})
