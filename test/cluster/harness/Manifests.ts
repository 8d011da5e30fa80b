import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { parseAllDocuments } from "yaml"
import type { Json } from "./KubeHttp.ts"

export const repoRoot = resolve(import.meta.dirname, "../../..")

/** Every object of a multi-document YAML file (empty documents dropped). */
export const readManifests = (file: string): Array<Json> =>
  parseAllDocuments(readFileSync(file, "utf8"))
    .map((document) => document.toJS() as Json | null)
    .filter((object): object is Json => object !== null && typeof object === "object" && typeof object.kind === "string")

/** The generated CRDs of crds/. */
export const crdManifests = (): Array<Json> => {
  const dir = join(repoRoot, "crds")
  return readdirSync(dir)
    .filter((file) => file.endsWith(".yaml"))
    .sort()
    .flatMap((file) => readManifests(join(dir, file)))
}

/** The objects `kubectl apply -k deploy/` installs (the kustomization's plain resources). */
const deployObjects = (): Array<Json> => {
  const kustomization = join(repoRoot, "deploy", "kustomization.yaml")
  const resources = (readManifests(kustomization)[0]?.resources ?? []) as Array<string>
  return resources
    .map((entry) => join(dirname(kustomization), entry))
    .filter((file) => /\.ya?ml$/u.test(file) && existsSync(file))
    .flatMap(readManifests)
}

export interface Sourced {
  readonly objects: Array<Json>
  /** "deploy/" or the fixture file it fell back to. */
  readonly source: string
}

const rbacKinds = new Set(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"])
const policyKinds = new Set(["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"])

/** The operator's namespaces, ServiceAccount and RBAC exactly as deploy/ ships them. */
export const operatorRbacManifests = (): Sourced => {
  const objects = deployObjects().filter((object) => rbacKinds.has(object.kind))
  if (!objects.some((object) => object.kind === "ClusterRole")) throw new Error("deploy/ ships no ClusterRole for the operator")
  return { objects, source: "deploy/" }
}

/** The ValidatingAdmissionPolicy capping spec.timeout, as deploy/ ships it. */
export const admissionPolicyManifests = (): Sourced => {
  const objects = deployObjects().filter((object) => policyKinds.has(object.kind))
  if (!objects.some((object) => object.kind === "ValidatingAdmissionPolicy")) {
    throw new Error("deploy/ ships no ValidatingAdmissionPolicy")
  }
  return { objects, source: "deploy/" }
}
