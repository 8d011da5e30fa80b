import { randomBytes } from "node:crypto"
import { join } from "node:path"
import type { ClusterInfo } from "./ClusterInfo.ts"
import { eventually } from "./Eventually.ts"
import { type Json, type KubeHttp, makeKubeHttp } from "./KubeHttp.ts"
import { writeKubeconfig } from "./Kubeconfig.ts"
import { admissionPolicyManifests, crdManifests, operatorRbacManifests } from "./Manifests.ts"
import { objectPath, resourcePath } from "./ResourcePaths.ts"

/** The namespaces api.md names: the operator's own and the kube-bench Jobs'. */
export const operatorNamespace = "ugallu-system"
export const jobNamespace = "ugallu-system-privileged"

export const connectAdmin = (info: ClusterInfo): KubeHttp =>
  makeKubeHttp({ server: info.server, token: info.adminToken, ca: info.caPem })

/** Server-side applies objects in order (Namespaces first, so namespaced objects find theirs). */
export const applyAll = async (admin: KubeHttp, objects: ReadonlyArray<Json>): Promise<Array<Json>> => {
  const ordered = [...objects].sort((a, b) => Number(b.kind === "Namespace") - Number(a.kind === "Namespace"))
  const applied: Array<Json> = []
  for (const object of ordered) applied.push(await admin.apply(objectPath(object), object))
  return applied
}

const condition = (object: Json, type: string) =>
  (object.status?.conditions ?? []).find((entry: { type: string }) => entry.type === type) as
    | { status: string; reason?: string; message?: string }
    | undefined

/** Applies crds/ and waits until every CRD is Established (and its names accepted); returns them. */
export const installCrds = async (admin: KubeHttp): Promise<Array<Json>> => {
  const crds = crdManifests()
  await applyAll(admin, crds)
  return eventually(
    async () => {
      const current = await Promise.all(crds.map((crd) => admin.get(objectPath(crd))))
      const pending = current.filter((crd) => condition(crd, "Established")?.status !== "True" || condition(crd, "NamesAccepted")?.status !== "True")
      if (pending.length > 0) throw new Error(`not Established yet: ${pending.map((crd) => crd.metadata.name).join(", ")}`)
      return current
    },
    { what: "the CRDs of crds/ to become Established", timeoutMillis: 60_000 }
  )
}

export interface OperatorIdentity {
  /** kubeconfig with a token of the operator's ServiceAccount (never admin). */
  readonly kubeconfig: string
  readonly serviceAccount: { readonly namespace: string; readonly name: string }
  /** Where the RBAC and the admission policy came from (deploy/ or a test fixture). */
  readonly rbacSource: string
  readonly policySource: string
}

/** The ServiceAccount a ClusterRoleBinding of the RBAC grants to: the operator's identity. */
const serviceAccountOf = (objects: ReadonlyArray<Json>) => {
  for (const binding of objects.filter((object) => object.kind === "ClusterRoleBinding")) {
    const subject = (binding.subjects ?? []).find((entry: Json) => entry.kind === "ServiceAccount")
    if (subject !== undefined) return { namespace: String(subject.namespace), name: String(subject.name) }
  }
  throw new Error("the operator's RBAC has no ClusterRoleBinding to a ServiceAccount")
}

/**
 * Everything the operator needs before it starts, as an installation provides it: the
 * CRDs, the namespaces, the operator's ServiceAccount with its RBAC (deploy/'s, or api.md's
 * fixture), the admission policy, and a kubeconfig with a TokenRequest token for that
 * ServiceAccount, so a permission the RBAC lacks fails the tests. Idempotent.
 */
export const prepareCluster = async (info: ClusterInfo, admin: KubeHttp): Promise<OperatorIdentity> => {
  await installCrds(admin)
  for (const name of [operatorNamespace, jobNamespace]) {
    await admin.apply(resourcePath("v1", "Namespace", undefined, name), { apiVersion: "v1", kind: "Namespace", metadata: { name } }, "cluster-tests-namespaces")
  }
  const rbac = operatorRbacManifests()
  await applyAll(admin, rbac.objects)
  const policy = admissionPolicyManifests()
  await applyAll(admin, policy.objects)

  const serviceAccount = serviceAccountOf(rbac.objects)
  const review = await admin.create(
    `${resourcePath("v1", "ServiceAccount", serviceAccount.namespace, serviceAccount.name)}/token`,
    { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 24 * 3600 } }
  )
  const kubeconfig = writeKubeconfig(join(info.dir, `operator-${randomBytes(4).toString("hex")}.kubeconfig`), {
    server: info.server,
    caPem: info.caPem,
    token: String(review.status.token),
    user: `${serviceAccount.namespace}-${serviceAccount.name}`
  })
  return { kubeconfig, serviceAccount, rbacSource: rbac.source, policySource: policy.source }
}

/** A fresh namespace for one test (random suffix); delete it with deleteNamespace. */
export const createNamespace = async (admin: KubeHttp, prefix: string): Promise<string> => {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`
  await admin.create(resourcePath("v1", "Namespace"), { apiVersion: "v1", kind: "Namespace", metadata: { name } })
  return name
}

export const deleteNamespace = (admin: KubeHttp, name: string) => admin.remove(resourcePath("v1", "Namespace", undefined, name))

/**
 * deploy/'s leader-election Role and RoleBinding (Leases), copied into `namespace`: what an
 * installation with `--leader-election-namespace=<namespace>` needs. Tests keep each Lease
 * in their own namespace.
 */
export const grantLeaderElection = async (admin: KubeHttp, namespace: string): Promise<void> => {
  const objects = operatorRbacManifests().objects
  const role = objects.find((object) =>
    object.kind === "Role" && (object.rules ?? []).some((rule: Json) => (rule.resources ?? []).includes("leases"))
  )
  if (role === undefined) throw new Error("deploy/ ships no Role for leader election's Lease")
  const binding = objects.find((object) => object.kind === "RoleBinding" && object.roleRef?.name === role.metadata.name)
  if (binding === undefined) throw new Error(`deploy/ ships no RoleBinding for Role ${role.metadata.name}`)
  for (const object of [role, binding]) await admin.apply(objectPath({ ...object, metadata: { ...object.metadata, namespace } }), { ...object, metadata: { ...object.metadata, namespace } })
}
