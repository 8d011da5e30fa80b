import { Result, Schema } from "effect"

/**
 * The JSON that `kube-bench run --json` prints, in both key sets: the current one
 * (v0.6+: `AuditEnv`, `IsMultiple`, group `type`, `detected_version`) and the old one
 * (without them). Unknown keys are ignored; Go's nil slices arrive as `null`.
 */
export const kubeBenchStatuses = ["PASS", "FAIL", "WARN", "INFO"] as const
export const KubeBenchStatus = Schema.Literals(kubeBenchStatuses)
export type KubeBenchStatus = typeof KubeBenchStatus.Type

const optionalString = Schema.optionalKey(Schema.String)
const optionalCount = Schema.optionalKey(Schema.Number)

export const KubeBenchCheck = Schema.Struct({
  test_number: Schema.String,
  test_desc: Schema.String,
  audit: optionalString,
  AuditEnv: optionalString,
  AuditConfig: optionalString,
  /** "", "manual" or "skip". */
  type: optionalString,
  remediation: optionalString,
  test_info: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
  status: KubeBenchStatus,
  actual_value: optionalString,
  scored: Schema.optionalKey(Schema.Boolean),
  IsMultiple: Schema.optionalKey(Schema.Boolean),
  expected_result: optionalString,
  /** Set when kube-bench forced the status ("Test marked as a manual test", `failed to run: ...`). */
  reason: optionalString
})
export type KubeBenchCheck = typeof KubeBenchCheck.Type

export const KubeBenchGroup = Schema.Struct({
  section: Schema.String,
  type: optionalString,
  desc: optionalString,
  pass: optionalCount,
  fail: optionalCount,
  warn: optionalCount,
  info: optionalCount,
  results: Schema.optionalKey(Schema.NullOr(Schema.Array(KubeBenchCheck)))
})
export type KubeBenchGroup = typeof KubeBenchGroup.Type

export const KubeBenchControls = Schema.Struct({
  /** "1" master, "2" etcd, "3" controlplane, "4" node, "5" policies (managed benchmarks renumber). */
  id: Schema.String,
  /** The benchmark: `cis-1.10` (old outputs: `1.5`). */
  version: optionalString,
  detected_version: optionalString,
  text: optionalString,
  node_type: optionalString,
  tests: Schema.optionalKey(Schema.NullOr(Schema.Array(KubeBenchGroup))),
  total_pass: optionalCount,
  total_fail: optionalCount,
  total_warn: optionalCount,
  total_info: optionalCount
})
export type KubeBenchControls = typeof KubeBenchControls.Type

export const KubeBenchTotals = Schema.Struct({
  total_pass: Schema.Number,
  total_fail: Schema.Number,
  total_warn: Schema.Number,
  total_info: Schema.Number
})
export type KubeBenchTotals = typeof KubeBenchTotals.Type

/** `{Controls, Totals}` (the default) or the bare array (`--nototals`). */
export const KubeBenchOutput = Schema.Union([
  Schema.Struct({
    Controls: Schema.NullOr(Schema.Array(KubeBenchControls)),
    Totals: Schema.optionalKey(KubeBenchTotals)
  }),
  Schema.Array(KubeBenchControls)
])
export type KubeBenchOutput = typeof KubeBenchOutput.Type

/** One parsed report, whichever shape it came in. */
export interface KubeBenchReport {
  readonly controls: ReadonlyArray<KubeBenchControls>
  /** kube-bench's own totals (absent with `--nototals`); never recomputed here. */
  readonly totals: KubeBenchTotals | undefined
}

/** Why a log or file is not a usable kube-bench report; `message` says where and what. */
export class ReportParseError extends Schema.TaggedError<ReportParseError>()("ReportParseError", {
  message: Schema.String
}) {}

/**
 * Bounds that keep parsing hostile input cheap. Real reports are 100 KB - 2 MB and about
 * 7 levels deep; the byte limit matches the Pod log read limit of the scanner.
 */
export const parseLimits = {
  maxReportBytes: 20 * 1024 * 1024,
  maxDepth: 64,
  /** Candidate lines tried, from the end of the log backwards. */
  maxCandidates: 10,
  /** Characters scanned over all candidates, so many long candidates cannot add up. */
  maxScannedChars: 48 * 1024 * 1024
} as const

const decodeOutput = Schema.decodeUnknownResult(KubeBenchOutput)

/** A short, printable excerpt of untrusted text for error messages. */
export const preview = (text: string, max = 80): string => {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text
  // Control characters and lone surrogates (binary input) are shown escaped.
  return JSON.stringify(cut.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/gu, "\uFFFD"))
}

const lineNumberAt = (text: string, index: number): number => {
  let line = 1
  for (let at = text.indexOf("\n"); at !== -1 && at < index; at = text.indexOf("\n", at + 1)) line++
  return line
}

/**
 * Start offsets of lines that begin (at column 0) with `{` or `[`, and of the last
 * `{"Controls":` anywhere (stderr noise without a newline before the report, as rh-*
 * benchmarks print `oc: not found`; a `kubectl logs --timestamps` prefix), last first.
 */
const candidateStarts = (text: string): Array<number> => {
  const starts: Array<number> = []
  let lineStart = text.lastIndexOf("\n")
  let end = text.length
  while (starts.length < parseLimits.maxCandidates) {
    const start = lineStart + 1
    const first = text.charCodeAt(start)
    if (start < end && (first === 0x7b || first === 0x5b)) starts.push(start)
    if (lineStart < 0) break
    end = lineStart
    lineStart = lineStart === 0 ? -1 : text.lastIndexOf("\n", lineStart - 1)
  }
  const midLine = lastReportOpening(text)
  if (midLine !== undefined && !starts.includes(midLine)) starts.push(midLine)
  return starts.sort((left, right) => right - left)
}

/** The last `{"Controls":` of the text, at most a few keys tried (bounded on any input). */
const lastReportOpening = (text: string): number | undefined => {
  let key = text.lastIndexOf("\"Controls\"")
  for (let tries = 0; key > 0 && tries < parseLimits.maxCandidates; tries++) {
    const brace = text.lastIndexOf("{", key)
    if (brace !== -1 && key - brace <= 64 && text.slice(brace + 1, key).trim() === "" && /^"Controls"\s*:/u.test(text.slice(key, key + 32))) {
      return brace
    }
    key = text.lastIndexOf("\"Controls\"", key - 1)
  }
  return undefined
}

/** Output that is no JSON report but is recognisably something else: what it is and what to do. */
const recognise = (text: string): string | undefined => {
  const head = text.slice(0, 64 * 1024)
  if (/^\[(?:PASS|FAIL|WARN|INFO)\] \d/mu.test(head) || /^== Summary /mu.test(head)) {
    return "this is kube-bench's text output (\"[PASS] 1.1.1 ...\" lines), not its JSON report: run `kube-bench run --json` (the operator's Jobs do) and save what it prints"
  }
  const lines = head.split("\n").filter((line) => line.trim() !== "").slice(0, 20)
  const stamped = lines.filter((line) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d) /u.test(line))
  if (lines.length > 0 && stamped.length === lines.length) {
    return "every line starts with a timestamp (`kubectl logs --timestamps` output) and no whole report follows one: save the log without --timestamps"
  }
  return undefined
}

type Extent =
  | { readonly _tag: "Complete"; readonly end: number }
  | { readonly _tag: "Rejected"; readonly reason: string; readonly scanned: number }

/**
 * Finds where the JSON value starting at `start` ends, by bracket depth outside strings,
 * without parsing it: truncation, excessive depth and excessive size are reported before
 * JSON.parse ever sees the text.
 */
const jsonExtent = (text: string, start: number, budget: number): Extent => {
  const limit = Math.min(text.length, start + parseLimits.maxReportBytes, start + budget)
  // Open brackets, as their closing character codes; at most maxDepth long.
  const open: Array<number> = []
  let inString = false
  for (let index = start; index < limit; index++) {
    const char = text.charCodeAt(index)
    if (inString) {
      if (char === 0x5c) index++ // backslash: skip the escaped character
      else if (char === 0x22) inString = false
      continue
    }
    if (char === 0x22) inString = true
    else if (char === 0x7b || char === 0x5b) {
      open.push(char === 0x7b ? 0x7d : 0x5d)
      if (open.length > parseLimits.maxDepth) {
        return {
          _tag: "Rejected",
          reason: `the JSON is nested more than ${parseLimits.maxDepth} levels deep (a kube-bench report has about 7)`,
          scanned: index - start
        }
      }
    } else if (char === 0x7d || char === 0x5d) {
      // A mismatched bracket ends the value here too: JSON.parse then says what is wrong.
      if (open.pop() !== char || open.length === 0) return { _tag: "Complete", end: index + 1 }
    }
  }
  const scanned = limit - start
  if (limit < text.length) {
    return {
      _tag: "Rejected",
      reason: scanned >= parseLimits.maxReportBytes
        ? `the JSON value is larger than the ${parseLimits.maxReportBytes / (1024 * 1024)} MiB limit`
        : "too much input to search for a report",
      scanned
    }
  }
  return {
    _tag: "Rejected",
    reason: `the JSON is truncated: the output ends ${scanned} characters into it, ${
      inString ? "inside a string" : `with ${open.length} bracket${open.length === 1 ? "" : "s"} still open`
    }`,
    scanned
  }
}

const looksLikeReport = (text: string, start: number): boolean =>
  /^(?:\{\s*"Controls"|\[\s*(?:\{|\]))/u.test(text.slice(start, start + 32))

const normalize = (output: KubeBenchOutput): KubeBenchReport =>
  Array.isArray(output)
    ? { controls: output as ReadonlyArray<KubeBenchControls>, totals: undefined }
    : {
      controls: (output as { Controls: ReadonlyArray<KubeBenchControls> | null }).Controls ?? [],
      totals: (output as { Totals?: KubeBenchTotals }).Totals
    }

const parseCandidate = (text: string, start: number, end: number): Result.Result<KubeBenchReport, string> => {
  let json: unknown
  try {
    json = JSON.parse(text.slice(start, end))
  } catch (error) {
    return Result.fail(`invalid JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
  return decodeOutput(json).pipe(
    Result.map(normalize),
    Result.mapError((error) => {
      // One line: the message ends up in status.message and in Results.
      const detail = error.message.replace(/\s+/gu, " ")
      return `not a kube-bench report (expected {"Controls": [...], "Totals": {...}} or a bare array of controls): ${
        detail.length > 600 ? `${detail.slice(0, 600)}...` : detail
      }`
    })
  )
}

/**
 * Finds and decodes kube-bench's JSON report in a Pod log or a saved file. The report is
 * the last line starting with `{` or `[` (kube-bench prints it on one line; glog noise on
 * stderr may surround it), a pretty-printed value starting on such a line, or the last
 * `{"Controls": ...` after other text on its line; anything after the value is ignored. Bounded in time and memory on any input (see `parseLimits`).
 */
export const parseKubeBenchReport = (input: string): Result.Result<KubeBenchReport, ReportParseError> => {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input
  if (text.trim().length === 0) {
    return Result.fail(new ReportParseError({ message: "the output is empty: kube-bench printed no report" }))
  }
  const starts = candidateStarts(text)
  const recognised = recognise(text)
  if (starts.length === 0) {
    return Result.fail(
      new ReportParseError({
        message: `no JSON report found: ${recognised ?? `no line starts with "{" or "[" and no {"Controls": ...} follows other output`} (the output begins ${preview(text)})`
      })
    )
  }
  let budget: number = parseLimits.maxScannedChars
  let problem: { readonly message: string; readonly reportLike: boolean } | undefined
  for (const start of starts) {
    const extent = jsonExtent(text, start, budget)
    const outcome: Result.Result<KubeBenchReport, string> = extent._tag === "Complete"
      ? parseCandidate(text, start, extent.end)
      : Result.fail(extent.reason)
    if (Result.isSuccess(outcome)) return Result.succeed(outcome.success)
    // Tell the problem of the candidate nearest the end (kube-bench prints its report
    // last), unless an earlier one looks more like a report than that one does.
    const reportLike = looksLikeReport(text, start)
    if (problem === undefined || (reportLike && !problem.reportLike)) {
      problem = { message: `line ${lineNumberAt(text, start)}: ${outcome.failure}`, reportLike }
    }
    budget -= extent._tag === "Complete" ? extent.end - start : extent.scanned
    if (budget <= 0) break
  }
  if (recognised !== undefined) {
    return Result.fail(new ReportParseError({ message: `no JSON report found: ${recognised} (the output begins ${preview(text)})` }))
  }
  return Result.fail(new ReportParseError({ message: problem?.message ?? "no JSON report found" }))
}

/** Every check of a report, with the control and group it belongs to. */
export const reportChecks = function*(report: KubeBenchReport): Generator<{
  readonly controls: KubeBenchControls
  readonly group: KubeBenchGroup
  readonly check: KubeBenchCheck
}> {
  for (const controls of report.controls) {
    for (const group of controls.tests ?? []) {
      for (const check of group.results ?? []) yield { controls, group, check }
    }
  }
}
