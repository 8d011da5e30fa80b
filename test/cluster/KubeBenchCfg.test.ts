import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, inject, it } from "vitest"
import { parse as parseYaml } from "yaml"
import { renderKubeBenchMapping, shippedMappingUrl } from "../../src/backends/kube-bench/KubeBenchMapping.ts"
import "./harness/ClusterInfo.ts"
import { repoRoot } from "./harness/Manifests.ts"

/**
 * What the project carries from kube-bench's cfg/ is still what the built kube-bench (the
 * control-plane cache's kube-bench-cfg/) says: the benchmark mapping the operator decides
 * with, and the set of real reports the fast tier tests the parser and severities on.
 */
const cluster = inject("cluster")
const cfg = join(cluster.cacheDir, "kube-bench-cfg")
const configText = readFileSync(join(cfg, "config.yaml"), "utf8")

describe("kube-bench's built cfg/", () => {
  it("the shipped mapping copy is not stale (regenerate: npx node scripts/generate-kube-bench-mapping.ts)", () => {
    expect(readFileSync(shippedMappingUrl, "utf8")).toBe(renderKubeBenchMapping(configText))
  })

  it("test/fixtures/kube-bench/reports has a report of every benchmark, run with every target it defines (regenerate: gen.ts)", () => {
    const config = parseYaml(configText) as { target_mapping: Record<string, Array<string>> }
    const benchmarks = readdirSync(cfg).filter((entry) => statSync(join(cfg, entry)).isDirectory()).sort()
    const index = JSON.parse(readFileSync(join(repoRoot, "test/fixtures/kube-bench/reports/index.json"), "utf8")) as {
      benchmarks: Record<string, { targets: Array<string> }>
    }
    expect(Object.keys(index.benchmarks).sort()).toEqual(benchmarks)
    for (const benchmark of benchmarks) expect(index.benchmarks[benchmark]!.targets, benchmark).toEqual(config.target_mapping[benchmark])
  })
})
