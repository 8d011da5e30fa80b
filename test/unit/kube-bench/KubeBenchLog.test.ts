import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { kubeBenchScript, reportDirectory, splitJobLog, stderrTail } from "../../../src/backends/kube-bench/KubeBenchLog.ts"

/**
 * Runs the container's script with /bin/sh, a stand-in `kube-bench` on PATH and the report
 * directory moved into a temp folder: the log is what the container would print.
 */
const runScript = (fake: string, args: ReadonlyArray<string>) => {
  const dir = mkdtempSync(join(tmpdir(), "kube-bench-script-"))
  try {
    const bin = join(dir, "bin")
    spawnSync("mkdir", ["-p", bin, join(dir, "out")])
    writeFileSync(join(bin, "kube-bench"), `#!/bin/sh\n${fake}\n`)
    chmodSync(join(bin, "kube-bench"), 0o755)
    const script = kubeBenchScript.replaceAll(reportDirectory, join(dir, "out"))
    const result = spawnSync("/bin/sh", ["-c", `${script}`, "kube-bench", ...args], {
      encoding: "utf8",
      env: { PATH: `${bin}:/usr/bin:/bin` }
    })
    // pods/log interleaves both streams; stderr first is how it reads when kube-bench ends before the report is printed.
    return { log: `${result.stderr}${result.stdout}`, status: result.status }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe("the kube-bench container's log", () => {
  it("keeps stderr, then the report between markers, and kube-bench's own exit code", () => {
    const ok = runScript(
      `echo "W1205 warning on stderr" >&2; for a in "$@"; do [ "$prev" = --outputfile ] && echo '{"Controls":[]}' > "$a"; prev=$a; done; exit 0`,
      ["run", "--json", "--benchmark", "x; rm -rf /"]
    )
    expect(ok.status).toBe(0)
    expect(splitJobLog(ok.log)).toEqual({ stderr: "W1205 warning on stderr\n", report: '{"Controls":[]}\n\n', exitCode: 0 })

    const failed = runScript(`echo "No targets configured for cis-9.99" >&2; exit 1`, ["run", "--benchmark", "cis-9.99"])
    expect(failed.status).toBe(1)
    const split = splitJobLog(failed.log)
    expect(split.exitCode).toBe(1)
    expect(split.report.trim()).toBe("")
    expect(stderrTail(split.stderr)).toBe("No targets configured for cis-9.99")
  })

  it("a log without markers (an older Job, the demo) is all report", () => {
    expect(splitJobLog('{"Controls":[]}')).toEqual({ stderr: "", report: '{"Controls":[]}', exitCode: undefined })
  })

  it("the stderr tail is bounded and printable", () => {
    const noisy = `${Array.from({ length: 50 }, (_, index) => `line ${index}`).join("\n")}\n\u001b[31mred\u001b[0m \u0007bell\n${"x".repeat(5000)}\n`
    const tail = stderrTail(noisy)
    expect(tail).toMatch(/^line 44 \| line 45 .* \| red bell \| x{300}\.\.\.$/u)
    expect(tail.length).toBeLessThanOrEqual(1203)
    expect(stderrTail("\n \n")).toBe("")
  })
})
