import { execFileSync } from "node:child_process"
import { resolve } from "node:path"
import type { TestProject } from "vitest/node"
import "./harness/ClusterInfo.ts"
import { startControlPlane } from "./harness/ControlPlane.ts"

const repoRoot = resolve(import.meta.dirname, "../..")

/**
 * Once per `vitest --project cluster` run: builds the control plane on first use (the
 * build script is a no-op when its cache is complete), starts it, hands its connection
 * info to the tests (inject("cluster")), and stops it at the end, whatever the tests did.
 * A failed build or start fails the run: there is no skipping.
 */
export default async function setup(project: TestProject) {
  const script = resolve(repoRoot, "scripts/control-plane/build.sh")
  let output: string
  try {
    // Progress goes to stderr (shown as it happens); the cache dir is the last stdout line.
    output = execFileSync(script, [], { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  } catch (error) {
    throw new Error(`scripts/control-plane/build.sh failed, so the cluster tests cannot run: ${(error as Error).message}`)
  }
  const cacheDir = output.trim().split("\n").pop() ?? ""
  if (cacheDir === "") throw new Error("scripts/control-plane/build.sh printed no cache folder")

  const controlPlane = await startControlPlane({
    cacheDir,
    keepDir: process.env.CLUSTER_TESTS_KEEP === "1",
    log: (line) => console.log(`[control-plane] ${line}`)
  })
  console.log(`[control-plane] up in ${controlPlane.info.timings.total?.toFixed(1)} s at ${controlPlane.info.server} (logs: ${controlPlane.info.dir}/logs)`)
  project.provide("cluster", controlPlane.info)

  return async () => {
    await controlPlane.stop()
  }
}
