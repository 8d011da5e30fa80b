/**
 * `compliance-scan cel test` on a large manifest, as a user runs it (a separate process):
 *
 *   npx node bench/cel-test.ts [pods]        (default 10000)
 *
 * Writes the Pods of bench/BenchPods.ts (plus their Namespaces) once as multi-document YAML
 * and once as the List `kubectl get pods -A -o json` prints, then runs
 * `bin/compliance-scan.js cel test --profile pod-security-restricted --objects FILE -o json` (as the
 * package's bin, with its shebang's Node flags) on
 * each (and reading the JSON from stdin with `-`), five times, printing the medians of the
 * wall time, the CPU time and the peak RSS of the process (GNU time's %e, %U + %S and %M).
 * Targets (issue 15): under 2 s and under 300 MiB at 10,000 Pods.
 */
import { execFileSync } from "node:child_process"
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { stringify } from "yaml"
import { projectNode } from "../test/cluster/harness/OperatorProcess.ts"
import { repoRoot } from "../test/cluster/harness/Manifests.ts"
import { benchPod } from "./BenchPods.ts"

const podCount = Number(process.argv[2] ?? 10_000)
const namespaceCount = 25

const namespaces = Array.from({ length: namespaceCount }, (_, index) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name: `team-${index}`, labels: { "kubernetes.io/metadata.name": `team-${index}` } }
}))
const pods = Array.from({ length: podCount }, (_, index) => benchPod(index, `team-${index % namespaceCount}`))

const dir = mkdtempSync(join(tmpdir(), "cel-test-bench-"))
try {
  const yamlFile = join(dir, "objects.yaml")
  writeFileSync(yamlFile, [...namespaces, ...pods].map((object) => `---\n${stringify(object)}`).join(""))
  const jsonFile = join(dir, "objects.json")
  // What kubectl prints: one List, items without apiVersion/kind repeated is also accepted; kubectl keeps them.
  writeFileSync(jsonFile, JSON.stringify({ apiVersion: "v1", kind: "List", items: [...namespaces, ...pods], metadata: { resourceVersion: "" } }, null, 4))

  // Run as `npx compliance-scan` runs it: the bin file itself, its shebang's `node` (with the
  // Node flags the shebang gives) the project's Node 24.
  const bin = join(repoRoot, "bin/compliance-scan.js")
  const binEnv = { ...process.env, PATH: `${dirname(projectNode())}${delimiter}${process.env.PATH ?? ""}` }
  const measure = (label: string, file: string, stdinFile?: string) => {
    const input = stdinFile === undefined ? "ignore" : openSync(stdinFile, "r")
    try {
      const started = performance.now()
      const output = execFileSync(
        "/usr/bin/time",
        ["-f", "%e %M", bin, "cel", "test", "--profile", "pod-security-restricted", "--objects", file, "-o", "json"],
        { encoding: "utf8", stdio: [input, "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024, env: binEnv }
      )
      const wall = (performance.now() - started) / 1000
      const report = JSON.parse(output) as { summary: Record<string, number> }
      return { label, wall, report }
    } finally {
      if (typeof input === "number") closeSync(input)
    }
  }
  const runs = 5
  const median = (values: ReadonlyArray<number>) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!
  /** GNU time's wall, user + system CPU and peak RSS of one run (its line is on stderr). */
  const timeOnce = (file: string, stdinFile?: string) => {
    const input = stdinFile === undefined ? "ignore" : openSync(stdinFile, "r")
    try {
      const result = execFileSync(
        "sh",
        ["-c", `/usr/bin/time -f "%e %U %S %M" "$@" 2>&1 >/dev/null | tail -1`, "sh", bin, "cel", "test", "--profile", "pod-security-restricted", "--objects", file, "-o", "json"],
        { encoding: "utf8", stdio: [input, "pipe", "inherit"], env: binEnv }
      ).trim()
      const [wall, user, system, kib] = result.split(" ").map(Number)
      return { wall: wall!, cpu: user! + system!, mib: kib! / 1024 }
    } finally {
      if (typeof input === "number") closeSync(input)
    }
  }
  // Medians of several runs: a shared machine's wall times vary by seconds from one run to the next.
  const timed = (label: string, file: string, stdinFile?: string) => {
    const samples = Array.from({ length: runs }, () => timeOnce(file, stdinFile))
    console.log(
      `${label}: ${median(samples.map((sample) => sample.wall)).toFixed(2)} s wall, ${median(samples.map((sample) => sample.cpu)).toFixed(2)} s CPU, ` +
        `peak RSS ${median(samples.map((sample) => sample.mib)).toFixed(0)} MiB (medians of ${runs} runs; walls ${samples.map((sample) => sample.wall.toFixed(2)).join(" ")})`
    )
  }

  const checked = measure("check", jsonFile)
  console.log(`cel test bench: ${podCount.toLocaleString("en-US")} Pods + ${namespaceCount} Namespaces x pod-security-restricted (19 rules); summary ${JSON.stringify(checked.report.summary)}`)
  timed("YAML (multi-document) file", yamlFile)
  timed("JSON (kubectl List) file  ", jsonFile)
  timed("JSON from stdin (-)       ", "-", jsonFile)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
