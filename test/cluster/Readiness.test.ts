import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import type { KubeHttp } from "./harness/KubeHttp.ts"
import { type OperatorProcess, startOperatorProcess } from "./harness/OperatorProcess.ts"

/** /readyz of a real operator process whose token the real API server does not accept. */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string
const operators: Array<OperatorProcess> = []

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "readiness")
})

afterAll(async () => {
  await Promise.all(operators.map((operator) => operator.stop()))
  await deleteNamespace(admin, namespace)
  admin.close()
})

const readyz = async (operator: OperatorProcess) =>
  (await fetch(`http://127.0.0.1:${operator.probePort}/readyz`, { signal: AbortSignal.timeout(2_000) })).status

describe("readiness", () => {
  it("a token the API server answers with 401: /readyz is not ready and an error line is logged; a good token is ready", async () => {
    const badKubeconfig = `${identity.kubeconfig}.bad-token`
    writeFileSync(badKubeconfig, readFileSync(identity.kubeconfig, "utf8").replace(/token: .*/u, "token: not-a-valid-token"), { mode: 0o600 })
    const bad = await startOperatorProcess({
      kubeconfig: badKubeconfig,
      logDir: join(cluster.dir, "logs"),
      name: "readiness-bad-token",
      flags: [`--watch-namespace=${namespace}`],
      waitUntilReady: false
    })
    operators.push(bad)
    const line = await eventually(
      () => bad.process.tail(200).split("\n").find((entry) => /ERROR/u.test(entry) && /credentials/u.test(entry)),
      { what: "an error line about the refused credentials", timeoutMillis: 30_000 }
    )
    expect(line).toMatch(/Unauthorized/u)
    expect(await readyz(bad)).toBe(503)
    expect(await readyz(bad)).toBe(503)
    // /healthz stays ok: the process is alive, restarting it would not fix a token.
    expect((await fetch(`http://127.0.0.1:${bad.probePort}/healthz`)).status).toBe(200)

    const good = await startOperatorProcess({
      kubeconfig: identity.kubeconfig,
      logDir: join(cluster.dir, "logs"),
      name: "readiness-good-token",
      flags: [`--watch-namespace=${namespace}`]
    })
    operators.push(good)
    expect(await readyz(good)).toBe(200)
  })
})
