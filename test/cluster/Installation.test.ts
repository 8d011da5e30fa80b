import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, installCrds, type OperatorIdentity, operatorNamespace, prepareCluster } from "./harness/ClusterSetup.ts"
import { KubeApiError, type KubeHttp, makeKubeHttp } from "./harness/KubeHttp.ts"
import { readManifests, repoRoot } from "./harness/Manifests.ts"
import { objectPath } from "./harness/ResourcePaths.ts"

/** What `kubectl apply` of the CRDs and of api.md's manifests does on a real API server. */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
})

afterAll(() => admin.close())

const manifest = (name: string) => {
  const [object] = readManifests(join(repoRoot, "test/fixtures/manifests", name))
  if (object === undefined) throw new Error(`${name} has no object`)
  return object
}

describe("CRDs", () => {
  it("apply and become Established, with the names and printer columns of api.md", async () => {
    const crds = await installCrds(admin)
    const byName = new Map(crds.map((crd) => [crd.metadata.name, crd]))
    expect([...byName.keys()].sort()).toEqual([
      "complianceexceptions.security.ugallu.io",
      "compliancescanresults.security.ugallu.io",
      "compliancescanruns.security.ugallu.io",
      "compliancescanschedules.security.ugallu.io",
      "securityevents.security.ugallu.io"
    ])
    const runs = byName.get("compliancescanruns.security.ugallu.io")!
    expect(runs.status.acceptedNames.shortNames).toEqual(expect.arrayContaining(["csrun", "csscan"]))
    expect(runs.status.acceptedNames.shortNames).not.toContain("csr")
    expect(runs.status.acceptedNames.categories).toEqual(expect.arrayContaining(["ugallu", "compliance"]))
    expect(byName.get("compliancescanresults.security.ugallu.io")!.status.acceptedNames.shortNames).toContain("csres")
    expect(byName.get("securityevents.security.ugallu.io")!.spec.scope).toBe("Cluster")
    const exceptions = byName.get("complianceexceptions.security.ugallu.io")!
    expect(exceptions.status.acceptedNames.shortNames).toEqual(["csex"])
    expect(exceptions.spec.versions[0].additionalPrinterColumns.map((column: { name: string }) => column.name)).toEqual(["Mode", "Expires", "Matched", "Age"])
    // The API server serves them: discovery lists the group version with the status subresources.
    const discovery = await admin.get("/apis/security.ugallu.io/v1alpha1")
    const resources = discovery.resources.map((resource: { name: string }) => resource.name)
    expect(resources).toEqual(expect.arrayContaining(["compliancescanruns", "compliancescanruns/status", "compliancescanresults/status", "securityevents", "complianceexceptions", "complianceexceptions/status"]))
  })
})

describe("manifests", () => {
  for (const file of ["reference-example.yaml", "legacy-cel-custom.yaml"]) {
    it(`${file} applies unchanged`, async () => {
      const object = manifest(file)
      expect(object.metadata.namespace).toBe(operatorNamespace)
      try {
        const applied = await admin.apply(objectPath(object), object)
        expect(applied.metadata.uid).toBeTruthy()
        // What was written is what the file says (plus the CRD's defaults).
        expect(applied.spec).toMatchObject(object.spec)
        if (object.spec.timeout === undefined) expect(applied.spec.timeout).toBe("10m")
      } finally {
        await admin.remove(objectPath(object))
      }
    })
  }
})

describe("the operator's identity", () => {
  it("is its ServiceAccount with the shipped RBAC, not an admin", async () => {
    const operator = makeKubeHttp({ server: cluster.server, ca: cluster.caPem, token: tokenOf(identity.kubeconfig) })
    try {
      const review = await operator.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview"
      })
      expect(review.status.userInfo.username).toBe(
        `system:serviceaccount:${identity.serviceAccount.namespace}:${identity.serviceAccount.name}`
      )
      expect(review.status.userInfo.groups).not.toContain("system:masters")
      await operator.list("/apis/security.ugallu.io/v1alpha1/compliancescanruns")
      const denied = await operator.list("/api/v1/secrets").then(() => undefined, (error: unknown) => error)
      expect(denied).toBeInstanceOf(KubeApiError)
      expect((denied as KubeApiError).status).toBe(403)
    } finally {
      operator.close()
    }
  })
})

const tokenOf = (kubeconfig: string): string => {
  const [config] = readManifests(kubeconfig)
  return String(config?.users?.[0]?.user?.token)
}
