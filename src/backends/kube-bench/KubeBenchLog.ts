/**
 * The kube-bench container's log: kube-bench's own stderr as it happened, then the JSON
 * report (written with --outputfile into an emptyDir) between two marker lines, and the end
 * marker carries kube-bench's exit code. Keeping stderr is what lets a failing kube-bench
 * say why ("No targets configured for cis-9.99"); the markers keep the report findable
 * whatever stderr printed.
 */
export const reportBeginMarker = "===== compliance-scan: kube-bench report begin ====="
export const reportEndMarker = "===== compliance-scan: kube-bench report end ====="

/** Where kube-bench writes its report inside the container (an emptyDir). */
export const reportDirectory = "/var/run/kube-bench-report"

/**
 * The container's shell script: arguments arrive as "$@" (never interpolated), the exit code
 * is kube-bench's own.
 */
export const kubeBenchScript = [
  `kube-bench "$@" --outputfile ${reportDirectory}/report.json`,
  "status=$?",
  `printf '\\n%s\\n' '${reportBeginMarker}'`,
  `cat ${reportDirectory}/report.json 2>/dev/null`,
  `printf '\\n%s exit=%s\\n' '${reportEndMarker}' "$status"`,
  `exit "$status"`
].join("\n")

export interface JobLog {
  /** What kube-bench printed before its report (stderr, and stdout noise). */
  readonly stderr: string
  /** The text between the markers; the whole log when there are no markers (an older Job, the demo). */
  readonly report: string
  /** kube-bench's exit code from the end marker; undefined without markers. */
  readonly exitCode: number | undefined
}

export const splitJobLog = (log: string): JobLog => {
  const begin = log.lastIndexOf(`\n${reportBeginMarker}\n`)
  const beginAtStart = log.startsWith(`${reportBeginMarker}\n`)
  if (begin === -1 && !beginAtStart) return { stderr: "", report: log, exitCode: undefined }
  const start = begin === -1 ? 0 : begin + 1
  const bodyStart = start + reportBeginMarker.length + 1
  const end = log.indexOf(`${reportEndMarker} exit=`, bodyStart)
  const exit = end === -1 ? undefined : /^exit=(\d+)/u.exec(log.slice(end + reportEndMarker.length + 1, end + reportEndMarker.length + 16))
  return {
    // Without the newline the script prints before the marker.
    stderr: log.slice(0, begin === -1 ? 0 : begin),
    report: log.slice(bodyStart, end === -1 ? log.length : end),
    exitCode: exit === undefined || exit === null ? undefined : Number(exit[1])
  }
}

/** Bounds of what a failure message quotes from stderr. */
export const stderrTailLimits = { lines: 8, lineLength: 300, total: 1200 } as const

/**
 * The last lines of kube-bench's stderr, bounded and printable: control characters and ANSI
 * colours removed, long lines cut, at most `stderrTailLimits` in all; "" when it said nothing.
 */
export const stderrTail = (stderr: string): string => {
  const lines = stderr
    .replace(/\u001b\[[0-9;?]*[A-Za-z]/gu, "")
    .split(/\r?\n/u)
    .map((line) => line.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/gu, "").trimEnd())
    .filter((line) => line.trim() !== "")
    .slice(-stderrTailLimits.lines)
    .map((line) => (line.length > stderrTailLimits.lineLength ? `${line.slice(0, stderrTailLimits.lineLength)}...` : line))
  const text = lines.join(" | ")
  return text.length > stderrTailLimits.total ? `...${text.slice(-stderrTailLimits.total)}` : text
}
