// Writes src/backends/kube-bench/kube-bench-mapping.json from kube-bench's cfg/config.yaml, and
// kube-bench-host-paths.json (benchmark -> the platform folders its cfg/ files name).
//   npx node scripts/generate-kube-bench-mapping.ts [--cfg DIR]
// Default DIR: kube-bench-cfg/ of `scripts/control-plane/build.sh --print-dir` (the pinned kube-bench).
import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { join } from "node:path"
import { renderBenchmarkRoots, shippedHostPathsUrl } from "../src/backends/kube-bench/KubeBenchHostPaths.ts"
import { renderKubeBenchMapping, shippedMappingUrl } from "../src/backends/kube-bench/KubeBenchMapping.ts"

const index = process.argv.indexOf("--cfg")
const cfg = index === -1
  ? join(execFileSync(join(import.meta.dirname, "control-plane/build.sh"), ["--print-dir"], { encoding: "utf8" }).trim(), "kube-bench-cfg")
  : process.argv[index + 1]!
writeFileSync(fileURLToPath(shippedMappingUrl), renderKubeBenchMapping(readFileSync(join(cfg, "config.yaml"), "utf8")))
writeFileSync(fileURLToPath(shippedHostPathsUrl), renderBenchmarkRoots(cfg))
console.log(`written from ${cfg}`)
