import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import { KubeApiError, type KubeHttp } from "./harness/KubeHttp.ts"
import { createRun, runPath } from "./harness/Scans.ts"

/** The CRD's immutability rule and the admission policy's timeout cap, on the real API server. */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
let namespace: string

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "admission")
})

afterAll(async () => {
  await deleteNamespace(admin, namespace)
  admin.close()
})

const rejection = async (attempt: Promise<unknown>): Promise<KubeApiError> => {
  const error = await attempt.then(() => undefined, (caught: unknown) => caught)
  if (!(error instanceof KubeApiError)) throw new Error(`expected the API server to reject it, got ${String(error)}`)
  return error
}

describe("spec immutability (CRD rule self == oldSelf)", () => {
  it("rejects any change of a run's spec with \"spec is immutable\", and allows metadata changes", async () => {
    const created = await createRun(admin, namespace, "immutable", { backend: "cel", profile: "pod-security-baseline" })

    const patched = await rejection(admin.mergePatch(runPath(namespace, "immutable"), { spec: { alertOn: "low" } }))
    expect(patched.status).toBe(422)
    expect(patched.message).toContain("spec is immutable")

    const replaced = await rejection(admin.put(runPath(namespace, "immutable"), { ...created, spec: { ...created.spec, timeout: "5m" } }))
    expect(replaced.message).toContain("spec is immutable")

    const labelled = await admin.mergePatch(runPath(namespace, "immutable"), { metadata: { labels: { team: "payments" } } })
    expect(labelled.metadata.labels.team).toBe("payments")
    expect(labelled.spec).toEqual(created.spec)
  })
})

describe("timeout cap (ValidatingAdmissionPolicy)", () => {
  it("rejects spec.timeout 31m with a message naming the limit, and accepts 30m", async () => {
    // A new policy takes a moment to be loaded by the API server's admission plugin.
    const denied = await eventually(
      async () => {
        const attempt = await createRun(admin, namespace, "too-long", { backend: "cel", profile: "pod-security-baseline", timeout: "31m" }).then(
          async () => {
            await admin.remove(runPath(namespace, "too-long"))
            return undefined
          },
          (error: unknown) => error
        )
        return attempt instanceof KubeApiError ? attempt : undefined
      },
      { what: "the admission policy to reject timeout 31m", timeoutMillis: 30_000, intervalMillis: 500 }
    )
    expect(denied.status).toBe(422)
    expect(denied.message).toMatch(/ValidatingAdmissionPolicy '[^']+' with binding '[^']+' denied request/u)
    expect(denied.message).toContain("31m")
    expect(denied.message).toContain("30m")
    expect(identity.policySource).toBeTruthy()

    const hour = await rejection(createRun(admin, namespace, "an-hour", { backend: "cel", profile: "pod-security-baseline", timeout: "1h" }))
    expect(hour.message).toContain("30m")

    const accepted = await createRun(admin, namespace, "thirty", { backend: "cel", profile: "pod-security-baseline", timeout: "30m" })
    expect(accepted.spec.timeout).toBe("30m")
    const inSeconds = await createRun(admin, namespace, "in-seconds", { backend: "cel", profile: "pod-security-baseline", timeout: "1800s" })
    expect(inSeconds.spec.timeout).toBe("1800s")
  })

  it("rejects a timeout below 10s through the CRD's rule, and accepts 10s", async () => {
    const error = await rejection(createRun(admin, namespace, "hasty", { backend: "cel", profile: "pod-security-baseline", timeout: "9s" }))
    expect(error.status).toBe(422)
    expect(error.message).toContain("spec.timeout must be at least 10s")
    const accepted = await createRun(admin, namespace, "ten-seconds", { backend: "cel", profile: "pod-security-baseline", timeout: "10s" })
    expect(accepted.spec.timeout).toBe("10s")
  })

  it("rejects a malformed timeout through the CRD's own format check", async () => {
    const error = await rejection(createRun(admin, namespace, "malformed", { backend: "cel", timeout: "ten minutes" }))
    expect(error.status).toBe(422)
    expect(error.message).toContain("spec.timeout")
  })
})

describe("size bounds (CRD maxItems / maxLength)", () => {
  it("oversized control mappings and CEL rules are a 422 at admission naming the field, not a 500 from etcd", async () => {
    const frameworks = (count: number) => Array.from({ length: count }, (_, i) => ({ name: "custom", controlID: `control-${i}` }))
    const tooManyFrameworks = await rejection(createRun(admin, namespace, "wide-mapping", {
      backend: "cel",
      profile: "pod-security-baseline",
      controlMappings: [{ checkID: "baseline.host-namespaces", frameworks: frameworks(15_000) }]
    }))
    expect(tooManyFrameworks.status).toBe(422)
    expect(tooManyFrameworks.message).toMatch(/spec.controlMappings\[0\].frameworks: Too many: 15000: must have at most 20 items/u)

    const tooManyMappings = await rejection(createRun(admin, namespace, "many-mappings", {
      backend: "cel",
      profile: "pod-security-baseline",
      controlMappings: Array.from({ length: 201 }, (_, i) => ({ checkID: `check-${i}`, frameworks: frameworks(1) }))
    }))
    expect(tooManyMappings.status).toBe(422)
    expect(tooManyMappings.message).toContain("spec.controlMappings: Too many: 201: must have at most 200 items")

    const hugeExpression = await rejection(createRun(admin, namespace, "huge-expression", {
      backend: "cel",
      cel: { rules: [{ id: "huge", severity: "low", expression: `true${" && true".repeat(150_000)}` }] }
    }))
    expect(hugeExpression.status).toBe(422)
    expect(hugeExpression.message).toMatch(/spec.cel.rules\[0\].expression: Too long: .*8192/u)

    const withinBounds = await createRun(admin, namespace, "bounded", {
      backend: "cel",
      profile: "pod-security-baseline",
      controlMappings: Array.from({ length: 200 }, (_, i) => ({ checkID: `check-${i}`, frameworks: frameworks(20) }))
    })
    expect(withinBounds.spec.controlMappings).toHaveLength(200)
  })
})
