import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, inject, it } from "vitest"
import { parse as parseYaml } from "yaml"
import {
  benchmarkCfgText,
  coveringMount,
  loadBenchmarkRoots,
  mountsFor,
  pathsNamedIn,
  renderBenchmarkRoots,
  shippedHostPathsUrl,
  whyNotApplicable
} from "../../src/backends/kube-bench/KubeBenchHostPaths.ts"
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

describe("kube-bench's host paths against the built cfg/", () => {
  const roots = loadBenchmarkRoots()
  const benchmarks = readdirSync(cfg).filter((entry) => statSync(join(cfg, entry)).isDirectory()).sort()

  it("the shipped benchmark -> folders copy is not stale (regenerate: npx node scripts/generate-kube-bench-mapping.ts)", () => {
    expect(readFileSync(shippedHostPathsUrl, "utf8")).toBe(renderBenchmarkRoots(cfg))
  })

  it("every path each benchmark's cfg/ files name is under one of that benchmark's mounts, or listed as not applicable", () => {
    const uncovered = benchmarks.flatMap((benchmark) => {
      const mounts = mountsFor(benchmark, roots)
      return pathsNamedIn(benchmarkCfgText(cfg, benchmark))
        .filter((path) => coveringMount(path, mounts) === undefined && whyNotApplicable(path) === undefined)
        .map((path) => `${benchmark}: ${path}`)
    })
    expect(uncovered).toEqual([])
    // The walk saw real paths: k3s's, OpenShift's, TKGI's.
    expect(pathsNamedIn(benchmarkCfgText(cfg, "k3s-cis-1.9")).some((path) => path.startsWith("/var/lib/rancher/k3s/"))).toBe(true)
    expect(pathsNamedIn(benchmarkCfgText(cfg, "tkgi-1.2.53")).some((path) => path.startsWith("/var/vcap/"))).toBe(true)
  })
})
