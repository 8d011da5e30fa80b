import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { kubeBenchScript, reportDirectory, splitJobLog } from "../../../src/backends/kube-bench/KubeBenchLog.ts"
import type { Json } from "./KubeHttp.ts"

/** A report of the real kube-bench binary, as the Job's Pod would print it (one JSON line). */
export interface RealReport {
  readonly line: string
  readonly report: Json
}

/**
 * Runs the cached kube-bench on this machine (`kube-bench run --config-dir <cache>/kube-bench-cfg
 * --benchmark <benchmark> --targets <targets> --json`, stderr dropped as the Job does).
 * This machine is no Kubernetes node, so most checks fail or warn: it is still kube-bench's
 * real output.
 */
export const runRealKubeBench = (cacheDir: string, benchmark: string, targets: string): RealReport => {
  const args = ["run", "--config-dir", join(cacheDir, "kube-bench-cfg"), "--benchmark", benchmark, "--targets", targets, "--json"]
  const result = spawnSync(join(cacheDir, "bin", "kube-bench"), args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 120_000 })
  const line = (result.stdout ?? "").trim().split("\n").filter((entry) => entry.startsWith("{")).pop()
  if (line === undefined) throw new Error(`kube-bench ${args.join(" ")} printed no JSON report (exit ${result.status}, ${result.error?.message ?? "no error"})`)
  return { line, report: JSON.parse(line) as Json }
}

/** Every check result of a report. */
export const reportResults = (report: Json): Array<Json> =>
  (report.Controls as Array<Json>).flatMap((controls) => ((controls.tests ?? []) as Array<Json>).flatMap((group) => (group.results ?? []) as Array<Json>))

/**
 * The report's own totals in the Result's terms: PASS -> pass, FAIL -> fail, WARN -> warn,
 * INFO -> skip; api.md counts a FAIL of an unscored check as a warning, so those move over.
 */
export const expectedSummary = (report: Json) => {
  const unscoredFails = reportResults(report).filter((check) => check.status === "FAIL" && check.scored !== true).length
  const totals = report.Totals as { total_pass: number; total_fail: number; total_warn: number; total_info: number }
  return {
    pass: totals.total_pass,
    fail: totals.total_fail - unscoredFails,
    warn: totals.total_warn + unscoredFails,
    skip: totals.total_info,
    error: 0
  }
}

/**
 * What the kube-bench Job's container prints, made here with the real binary: the Job's own
 * shell script (kube-bench's stderr, then the report between markers, kube-bench's exit
 * code) run with `args` as the Job passes them, plus the cache's cfg/. Log lines for writeCriLog.
 */
export const runRealKubeBenchJob = (
  cacheDir: string,
  args: ReadonlyArray<string>
): { readonly lines: Array<string>; readonly exitCode: number | null; readonly report: Json | undefined } => {
  const out = mkdtempSync(join(tmpdir(), "kube-bench-job-"))
  try {
    const cfg = join(cacheDir, "kube-bench-cfg")
    // Both streams into one, in the order they were written, as pods/log serves them.
    const script = `{\n${kubeBenchScript.replaceAll(reportDirectory, out)}\n} 2>&1`
    const result = spawnSync("/bin/sh", ["-c", script, "kube-bench", ...args, "--config-dir", cfg, "--config", join(cfg, "config.yaml")], {
      encoding: "utf8",
      env: { PATH: `${join(cacheDir, "bin")}:/usr/bin:/bin`, HOME: out },
      timeout: 120_000
    })
    const log = result.stdout ?? ""
    const between = splitJobLog(log).report.trim()
    return { lines: log.replace(/\n$/u, "").split("\n"), exitCode: result.status, report: between === "" ? undefined : (JSON.parse(between) as Json) }
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}
