import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Console, Effect, Result } from "effect"
import { Command } from "effect/cli"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parse as parseYaml } from "yaml"
import { kubeBenchCommand } from "../../../src/backends/kube-bench/KubeBenchCommand.ts"

const fixtures = join(import.meta.dirname, "..", "..", "fixtures", "kube-bench")
const sample = join(fixtures, "sample-cis-1.10-v0.15.json")
const upstream = join(fixtures, "upstream-cmd-testdata-result.json")

/** Runs `compliance-scan kube-bench <args>` in-process, capturing stdout and stderr. */
const runCli = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const console: Console.Console = {
      ...globalThis.console,
      log: (...parts: ReadonlyArray<unknown>) => void stdout.push(parts.join(" ")),
      error: (...parts: ReadonlyArray<unknown>) => void stderr.push(parts.join(" "))
    }
    const exit = yield* Command.runWith(kubeBenchCommand, { version: "test" })(args).pipe(
      Effect.provideService(Console.Console, console),
      Effect.result
    )
    return { ok: Result.isSuccess(exit), error: Result.isFailure(exit) ? exit.failure : undefined, stdout: stdout.join("\n"), stderr: stderr.join("\n") }
  }).pipe(Effect.provide(NodeServices.layer))

const scratch = mkdtempSync(join(tmpdir(), "kube-bench-parse-"))
const write = (name: string, text: string) => {
  const path = join(scratch, name)
  writeFileSync(path, text)
  return path
}

describe("compliance-scan kube-bench parse", () => {
  it.effect("prints the checks and summary the operator would write, as YAML, named after the file", () =>
    Effect.gen(function*() {
      const run = yield* runCli(["parse", sample])
      expect(run.ok).toBe(true)
      const document = parseYaml(run.stdout)
      expect(document.benchmarks).toEqual(["cis-1.10"])
      expect(document.nodes).toEqual(["sample-cis-1.10-v0.15"])
      expect(document.summary).toEqual({ pass: 3, fail: 4, warn: 1, skip: 1, error: 0 })
      expect(document.checks).toHaveLength(9)
      expect(document.checks[2]).toMatchObject({ checkID: "cis.1.2.1", outcome: "warn", severity: "critical", scored: false })
    }))

  it.effect("merges several nodes' files, named with --node, as JSON", () =>
    Effect.gen(function*() {
      const run = yield* runCli(["parse", sample, upstream, "--node", "cp-1", "--node", "cp-2", "--output", "json"])
      expect(run.ok).toBe(true)
      const document = JSON.parse(run.stdout)
      expect(document.nodes).toEqual(["cp-1", "cp-2"])
      const first = document.checks.find((check: { checkID: string }) => check.checkID === "cis.1.1.1")
      expect(first.subjects.map((subject: { name: string }) => subject.name)).toEqual(["cp-1", "cp-2"])
      expect(document.checks.map((check: { checkID: string }) => check.checkID)).toContain("cis.3.1.1")
    }))

  it.effect("accepts a saved Pod log with glog noise around the report", () =>
    Effect.gen(function*() {
      const log = write("pod.log", `I0101 12:00:00 noise\n${JSON.stringify(JSON.parse(readFileSync(sample, "utf8")))}\n`)
      const run = yield* runCli(["parse", log, "-o", "json", "--node", "worker-7"])
      expect(run.ok).toBe(true)
      expect(JSON.parse(run.stdout).checks[0].subjects[0].name).toBe("worker-7")
    }))

  it.effect("fails with a clear message on stderr, naming each unparsable file and why", () =>
    Effect.gen(function*() {
      const truncated = write("truncated.json", JSON.stringify(JSON.parse(readFileSync(sample, "utf8"))).slice(0, 1000))
      const empty = write("empty.json", "")
      const run = yield* runCli(["parse", sample, truncated, empty])
      expect(run.ok).toBe(false)
      expect(run.error).toMatchObject({ _tag: "KubeBenchParseFailed" })
      expect(run.stdout).toBe("")
      expect(run.stderr).toContain(`${truncated}: line 1: the JSON is truncated`)
      expect(run.stderr).toContain(`${empty}: the output is empty`)
    }))

  it.effect("fails on a missing file and on a --node count that does not match the files", () =>
    Effect.gen(function*() {
      const missing = yield* runCli(["parse", join(scratch, "nope.json")])
      expect(missing.ok).toBe(false)
      expect(missing.stderr).toMatch(/Cannot read .*nope\.json/)
      const mismatched = yield* runCli(["parse", sample, upstream, "--node", "only-one"])
      expect(mismatched.ok).toBe(false)
      expect(mismatched.stderr).toContain("Give one --node per FILE")
    }))
})
