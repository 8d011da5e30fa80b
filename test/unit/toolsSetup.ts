import { execFileSync } from "node:child_process"
import { join, resolve } from "node:path"
import type { TestProject } from "vitest/node"

const repoRoot = resolve(import.meta.dirname, "../..")

/** The real command-line tools the fast tier runs: promtool on the alert rules, helm on the chart. */
export interface Tools {
  readonly promtool: string
  readonly helm: string
  /** The Kubernetes version of the control plane build, for `helm template --kube-version`. */
  readonly kubernetesVersion: string
}

declare module "vitest" {
  export interface ProvidedContext {
    tools: Tools
  }
}

/**
 * Once per fast-tier run: builds helm and promtool from their Go modules when the cache lacks
 * them (scripts/control-plane/build.sh --tools; a no-op once cached) and hands their paths to
 * the tests (inject("tools")). A failed build fails the run: there is no skipping.
 */
export default function setup(project: TestProject) {
  const script = resolve(repoRoot, "scripts/control-plane/build.sh")
  let output: string
  try {
    output = execFileSync(script, ["--tools"], { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  } catch (error) {
    throw new Error(`scripts/control-plane/build.sh --tools failed, so promtool and helm are missing: ${(error as Error).message}`)
  }
  const cacheDir = output.trim().split("\n").pop() ?? ""
  if (cacheDir === "") throw new Error("scripts/control-plane/build.sh --tools printed no cache folder")
  const kubernetesVersion = execFileSync(script, ["--print-kubernetes-version"], { cwd: repoRoot, encoding: "utf8" }).trim()
  project.provide("tools", { promtool: join(cacheDir, "bin", "promtool"), helm: join(cacheDir, "bin", "helm"), kubernetesVersion })
}
