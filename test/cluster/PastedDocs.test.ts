import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { kustomizeResources, repoRoot } from "../unit/deploy/DeployFiles.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin } from "./harness/ClusterSetup.ts"
import { KubeApiError, type KubeHttp } from "./harness/KubeHttp.ts"
import { objectPath } from "./harness/ResourcePaths.ts"
import { runPath } from "./harness/Scans.ts"

/**
 * What a platform engineer pastes, pasted: every shell block of docs/operations.md marked
 * `<!-- runnable -->` and the example in the chart's NOTES (as `helm install` prints them) run
 * in bash with `set -euo pipefail`, with the real kubectl and helm of the control-plane
 * cache on PATH, against the cluster tier's API server (kwok nodes run the Pods). In the
 * order an install goes: kustomize, server-side apply over it, the move to Helm, a fresh
 * Helm install with `helm test`, the NOTES' first scan.
 */
const cluster = inject("cluster")
const run = promisify(execFile)
const scratch = mkdtempSync(join(tmpdir(), "pasted-docs-test-"))
const release = { name: "compliance-scan", namespace: "ugallu-system" }
let admin: KubeHttp

const environment = {
  ...process.env,
  PATH: `${join(cluster.cacheDir, "bin")}:${process.env.PATH ?? ""}`,
  KUBECONFIG: cluster.adminKubeconfig,
  HELM_CACHE_HOME: join(scratch, "helm-cache"),
  HELM_CONFIG_HOME: join(scratch, "helm-config"),
  HELM_DATA_HOME: join(scratch, "helm-data")
}

/** bash -euo pipefail over a pasted block, from the repository root as the docs assume. */
const paste = async (script: string) => {
  try {
    const { stdout, stderr } = await run("bash", ["-euo", "pipefail", "-c", script], {
      cwd: repoRoot,
      env: environment,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 480_000
    })
    return { code: 0, output: stdout + stderr }
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof failed.code === "number" ? failed.code : 1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` }
  }
}

const operationsDoc = readFileSync(join(repoRoot, "docs", "operations.md"), "utf8")
/** The runnable blocks, by the heading they are under. */
const runnableBlocks = new Map(
  [...operationsDoc.matchAll(/<!-- runnable[^>]*-->\n```sh\n([\s\S]*?)```/gu)].map((match) => {
    const heading = operationsDoc.slice(0, match.index).match(/^#+ .*$/gmu)!.at(-1)!
    return [heading, match[1]!] as const
  })
)
const block = (heading: string) => {
  const text = runnableBlocks.get(heading)
  if (text === undefined) throw new Error(`docs/operations.md has no runnable block under "${heading}"`)
  return text
}

const exists = async (path: string) =>
  admin.get(path).then(() => true, (error: unknown) => {
    if (error instanceof KubeApiError && error.status === 404) return false
    throw error
  })

beforeAll(() => {
  admin = connectAdmin(cluster)
})

afterAll(async () => {
  // Leave the cluster as the other files expect it: no Helm release, no sample runs (the CRDs stay).
  await paste(`helm uninstall ${release.name} -n ${release.namespace} --wait --ignore-not-found || true`)
  for (const name of ["cis-control-plane", "cis-control-plane-kubeadm"]) await admin.remove(runPath(release.namespace, name)).catch(() => undefined)
  admin.close()
  rmSync(scratch, { recursive: true, force: true })
})

describe("docs/operations.md, pasted", () => {
  it("marks the kubectl install, the Helm install and the move to Helm runnable", () => {
    expect([...runnableBlocks.keys()]).toEqual(["### With kubectl", "### With Helm", "### From a kustomize install to Helm"])
  })

  it("installs with kubectl: the operator rolls out and the sample run is created", async () => {
    // A first install: other files applied deploy/'s namespaced objects under field managers
    // of their own, which a user's cluster does not have.
    for (const object of kustomizeResources().filter((candidate) => candidate.metadata.namespace !== undefined || candidate.kind.startsWith("ValidatingAdmissionPolicy"))) {
      await admin.remove(objectPath(object)).catch(() => undefined)
    }
    const result = await paste(block("### With kubectl"))
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('deployment "compliance-scan" successfully rolled out')
    expect(result.output).toContain("compliancescanrun.security.ugallu.io/cis-control-plane-kubeadm")
    const sample = await admin.get(runPath(release.namespace, "cis-control-plane-kubeadm"))
    expect(sample.spec.targetNodeSelector).toEqual({ "node-role.kubernetes.io/control-plane": "" })
  })

  it("`kubectl apply --server-side -k deploy/` after the client-side apply has no conflicts", async () => {
    const result = await paste("kubectl apply --server-side -k deploy/")
    expect(result.code, result.output).toBe(0)
    expect(result.output).not.toContain("conflict")
    expect(result.output).toContain("deployment.apps/compliance-scan serverside-applied")
    expect(result.output).toContain("validatingadmissionpolicy.admissionregistration.k8s.io/ugallu-compliance-scan-timeout serverside-applied")
  })

  it("moves the kustomize install to Helm, keeping the CRDs and the runs", async () => {
    const result = await paste(block("### From a kustomize install to Helm"))
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain("STATUS: deployed")
    expect(await exists("/apis/apps/v1/namespaces/ugallu-system/deployments/compliance-scan")).toBe(true)
    expect(await exists(runPath(release.namespace, "cis-control-plane-kubeadm"))).toBe(true)
    const deployment = await admin.get("/apis/apps/v1/namespaces/ugallu-system/deployments/compliance-scan")
    expect(deployment.metadata.labels["app.kubernetes.io/managed-by"]).toBe("Helm")
    const uninstalled = await paste(`helm uninstall ${release.name} -n ${release.namespace} --wait`)
    expect(uninstalled.code, uninstalled.output).toBe(0)
  })

  it("installs with Helm, and `helm test` passes", async () => {
    const result = await paste(block("### With Helm"))
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain("STATUS: deployed")
    expect(result.output).toMatch(/TEST SUITE:\s+compliance-scan-test-metrics[\s\S]*Phase:\s+Succeeded/u)
  })
})

describe("the chart's NOTES, pasted", () => {
  it("the first-scan example creates its run; the follow-up commands parse", async () => {
    const notes = await paste(`helm get notes ${release.name} -n ${release.namespace}`)
    expect(notes.code, notes.output).toBe(0)
    const start = notes.output.indexOf("kubectl apply -f - <<'YAML'")
    expect(start, notes.output).toBeGreaterThan(-1)
    const [firstScan, , followUp] = notes.output.slice(start).split(/\n\n/u)
    const result = await paste(firstScan!)
    expect(result.code, `${firstScan}\n---\n${result.output}`).toBe(0)
    expect(result.output).toContain("compliancescanrun.security.ugallu.io/cis-control-plane created")
    const created = await admin.get(runPath(release.namespace, "cis-control-plane"))
    expect(created.spec).toMatchObject({ backend: "kube-bench", benchmark: "cis-1.9", timeout: "5m" })
    expect(created.spec.targetNodeSelector).toEqual({ "node-role.kubernetes.io/control-plane": "" })
    expect(followUp).toContain("kubectl get csres cis-control-plane")
    const parsed = await paste(`bash -n <<'SCRIPT'\n${followUp}\nSCRIPT`)
    expect(parsed.code, parsed.output).toBe(0)
  })
})
