import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import { parse as parseYaml, stringify as toYaml } from "yaml"
import { celCommand, type CelTestOptions, runCelTest } from "../../../src/backends/cel/CelTestCommand.ts"
import { repoRoot } from "../deploy/DeployFiles.ts"
import { namespace, restrictedPod, violating } from "./PodFixtures.ts"

const directory = mkdtempSync(join(tmpdir(), "cel-test-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const file = (name: string, text: string) => {
  const path = join(directory, name)
  writeFileSync(path, text)
  return path
}

const privileged = violating("debugger", (pod) => (pod.spec.containers[0].securityContext.privileged = true))

const rulesFile = file(
  "rules.yaml",
  toYaml([
    { id: "no-privileged", severity: "critical", expression: "object.spec.containers.all(c, !c.?securityContext.?privileged.orValue(false))", messageExpression: "'privileged: ' + object.metadata.name" },
    { id: "namespace-team", severity: "low", match: { resources: ["namespaces"] }, expression: "has(object.metadata.labels.team)" }
  ])
)
// Pods as a multi-document YAML file and as a JSON List.
const podsYaml = file("pods.yaml", [restrictedPod("web"), privileged].map((pod) => toYaml(pod)).join("---\n"))
const moreJson = file(
  "more.json",
  JSON.stringify({ apiVersion: "v1", kind: "List", items: [namespace("default", { team: "web" }), { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" } }] })
)

const options = (overrides: Partial<CelTestOptions>): CelTestOptions => ({ rulesFile: rulesFile, objectFiles: [podsYaml, moreJson], profile: undefined, output: "yaml", ...overrides })

const test = (overrides: Partial<CelTestOptions>) => runCelTest(options(overrides)).pipe(Effect.provide(NodeServices.layer))

/** Runs the command as `main cel test ...` would, capturing what it prints. */
const command = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const err: Array<string> = []
    const console = { ...globalThis.console, log: (...parts: Array<unknown>) => out.push(parts.join(" ")), error: (...parts: Array<unknown>) => err.push(parts.join(" ")) }
    const exit = yield* Effect.exit(
      Command.runWith(celCommand, { version: "test" })(args).pipe(Effect.provideService(Console.Console, console), Effect.provide(NodeServices.layer))
    )
    return { exit, stdout: out.join("\n"), stderr: err.join("\n") }
  })

describe("cel test", () => {
  it.effect("checks the pack it runs, not the others: a broken pack fails only a test that runs it", () =>
    Effect.gen(function*() {
      const packs = mkdtempSync(join(directory, "packs-"))
      writeFileSync(join(packs, "good.yaml"), toYaml({ name: "good", rules: [{ id: "named", severity: "low", expression: "object.metadata.name != ''" }] }))
      writeFileSync(join(packs, "broken.yaml"), toYaml({ name: "broken", rules: [{ id: "bad", severity: "low", expression: "object.(" }] }))
      const good = yield* test({ rulesFile: undefined, profile: "good", packsDirectory: packs })
      expect(good.summary).toEqual({ pass: 1, fail: 0, warn: 0, skip: 0, error: 0 })
      const broken = yield* Effect.flip(test({ rulesFile: undefined, profile: "broken", packsDirectory: packs }))
      expect(broken.message).toMatch(/^built-in pack "broken" is broken: /u)
    }))

  it.effect("evaluates rules against YAML and JSON manifests and prints the checks", () =>
    Effect.gen(function*() {
      const result = yield* test({})
      expect(result.summary).toEqual({ pass: 1, fail: 1, warn: 0, skip: 0, error: 0 })
      expect(result.warnings).toEqual([`${moreJson}: ConfigMap settings skipped (no rule matches its kind)`])
      const printed = parseYaml(result.output)
      expect(printed.summary).toEqual(result.summary)
      expect(printed.checks).toEqual([
        {
          checkID: "no-privileged",
          title: "no-privileged",
          detail: "2 checked: 1 pass, 1 fail, 0 error",
          outcome: "fail",
          severity: "critical",
          subjects: [{ kind: "Pod", name: "debugger", namespace: "default", outcome: "fail", message: "privileged: debugger" }],
          subjectCounts: { pass: 1, fail: 1, warn: 0, skip: 0, error: 0 }
        },
        {
          checkID: "namespace-team",
          title: "namespace-team",
          detail: "1 checked: 1 pass, 0 fail, 0 error",
          outcome: "pass",
          severity: "low",
          subjectCounts: { pass: 1, fail: 0, warn: 0, skip: 0, error: 0 }
        }
      ])
    }))

  it.effect("takes the rules and profile of a ComplianceScanRun manifest, and prints JSON on request", () =>
    Effect.gen(function*() {
      const manifest = file(
        "run.yaml",
        toYaml({
          apiVersion: "security.ugallu.io/v1alpha1",
          kind: "ComplianceScanRun",
          metadata: { name: "pods", namespace: "ugallu-system" },
          spec: { backend: "cel", profile: "pod-security-baseline", cel: { rules: [{ id: "labelled", severity: "low", expression: "has(object.metadata.labels)" }] } }
        })
      )
      const result = yield* test({ rulesFile: manifest, output: "json" })
      const printed = JSON.parse(result.output)
      expect(printed.checks).toHaveLength(14)
      expect(printed.checks.find((check: { checkID: string }) => check.checkID === "pss-baseline-privileged")).toMatchObject({ outcome: "fail", subjects: [{ name: "debugger" }] })
      // --profile replaces the manifest's profile.
      expect((yield* test({ rulesFile: manifest, profile: "pod-security-restricted" })).checks).toHaveLength(20)
      // A profile alone needs no rules file.
      expect((yield* test({ rulesFile: undefined, profile: "pod-security-baseline" })).checks).toHaveLength(13)
    }))

  it.effect("fails with a clear message when a rule does not compile or a file cannot be read or parsed", () =>
    Effect.gen(function*() {
      const broken = file("broken-rules.yaml", "- id: bad\n  severity: high\n  expression: \"object.metadata.name.matches('(?<=x)')\"\n")
      expect((yield* Effect.flip(test({ rulesFile: broken }))).message).toMatch(
        /^CELCompileError: rule "bad": expression does not compile at line 1, column 30: invalid RE2 regular expression/
      )
      expect((yield* Effect.flip(test({ objectFiles: [file("bad.yaml", "kind: Pod\nmetadata: {name: [\n")] }))).message).toMatch(/^cannot parse .*bad\.yaml: /)
      expect((yield* Effect.flip(test({ objectFiles: [join(directory, "missing.yaml")] }))).message).toMatch(/^cannot read .*missing\.yaml/)
      expect((yield* Effect.flip(test({ rulesFile: file("shape.yaml", "just: text\n") }))).message).toMatch(/is neither a list of CEL rules nor a ComplianceScanRun/)
      expect((yield* Effect.flip(test({ rulesFile: file("invalid.yaml", "- id: x\n  severity: urgent\n  expression: 'true'\n") }))).message).toMatch(/^invalid rules in/)
      expect((yield* Effect.flip(test({ rulesFile: undefined, profile: "nope" }))).message).toMatch(/^UnknownProfile: unknown CEL profile "nope"/)
    }))

  it.effect("refuses unknown rule fields with the API server's strict field validation message, whatever the file's shape", () =>
    Effect.gen(function*() {
      const typo = { id: "x", severity: "high", match: { namespaceSelectr: { matchLabels: { team: "a" } } }, expression: "true" }
      const failure = (name: string, document: unknown) => Effect.flip(test({ rulesFile: file(name, toYaml(document)) })).pipe(Effect.map((error) => error.message))
      const run = { apiVersion: "security.ugallu.io/v1alpha1", kind: "ComplianceScanRun", metadata: { name: "r" }, spec: { backend: "cel", profle: "default", cel: { rules: [typo] } } }
      expect(yield* failure("typo-run.yaml", run)).toBe(
        `invalid rules in ${join(directory, "typo-run.yaml")}: ComplianceScanRun in version "v1alpha1" cannot be handled as a ComplianceScanRun: ` +
          'strict decoding error: unknown field "spec.cel.rules[0].match.namespaceSelectr", unknown field "spec.profle"'
      )
      expect(yield* failure("typo-list.yaml", [typo])).toBe(`invalid rules in ${join(directory, "typo-list.yaml")}: strict decoding error: unknown field "[0].match.namespaceSelectr"`)
      expect(yield* failure("typo-rules.yaml", { rules: [typo] })).toBe(`invalid rules in ${join(directory, "typo-rules.yaml")}: strict decoding error: unknown field "rules[0].match.namespaceSelectr"`)
      expect(yield* failure("typo-rule.yaml", { ...typo, match: { labelSelector: { matchLabel: {} } } })).toBe(
        `invalid rules in ${join(directory, "typo-rule.yaml")}: strict decoding error: unknown field "match.labelSelector.matchLabel"`
      )
      // Map keys (matchLabels) are data, not fields.
      expect((yield* test({ rulesFile: file("labels-ok.yaml", toYaml([{ ...typo, match: { labelSelector: { matchLabels: { anything: "x" } } } }])) })).checks).toHaveLength(1)
    }))

  it.effect("refuses an invalid selector as a CELCompileError naming the rule and the field", () =>
    Effect.gen(function*() {
      const rules = (selector: unknown) => file("selector.yaml", toYaml([{ id: "sel", severity: "high", match: { namespaceSelector: selector }, expression: "true" }]))
      const message = (selector: unknown) => Effect.flip(test({ rulesFile: rules(selector) })).pipe(Effect.map((error) => error.message))
      expect(yield* message({ matchExpressions: [{ key: "owner", operator: "In" }] })).toBe(
        'CELCompileError: rule "sel": invalid selector: match.namespaceSelector.matchExpressions[0].values: must be non-empty when operator is In'
      )
      expect(yield* message({ matchExpressions: [{ key: "owner", operator: "Exists", values: ["a"] }] })).toBe(
        'CELCompileError: rule "sel": invalid selector: match.namespaceSelector.matchExpressions[0].values: must be empty when operator is Exists'
      )
      expect(yield* message({ matchLabels: { tier: "a,b" } })).toMatch(
        /^CELCompileError: rule "sel": invalid selector: match.namespaceSelector.matchLabels\["tier"\]: invalid label value "a,b": a valid label must be an empty string or consist of/
      )
    }))

  it.effect("runs as `cel test` with flags, printing checks on stdout and problems on stderr", () =>
    Effect.gen(function*() {
      const ok = yield* command(["test", "--rules", rulesFile, "--objects", podsYaml, moreJson, "-o", "json"])
      expect(ok.exit._tag).toBe("Success")
      expect(JSON.parse(ok.stdout).summary).toEqual({ pass: 1, fail: 1, warn: 0, skip: 0, error: 0 })
      expect(ok.stderr).toContain("ConfigMap settings skipped")

      const broken = file("broken-cli.yaml", "- id: bad\n  severity: high\n  expression: \"1 + \"\n")
      const failed = yield* command(["test", "--rules", broken, "--objects", podsYaml])
      expect(failed.exit._tag).toBe("Failure")
      expect(failed.stdout).toBe("")
      expect(failed.stderr).toMatch(/cel test: CELCompileError: rule "bad": expression does not compile at line 1, column 5/)
    }))

  it("reads the real standard input and non-ASCII text the same as a file (the CLI as a user runs it)", () => {
    // An annotation outside ASCII, which the rule's message prints: decoded as UTF-8 on both paths.
    const annotated = violating("caf\u00e9", (pod) => (pod.metadata.annotations = { owner: "\u00e9quipe \u2615 \u{1F680}" }))
    const manifest = JSON.stringify({ apiVersion: "v1", kind: "List", items: [annotated] }, null, 2)
    const rules = file(
      "owner.yaml",
      toYaml([{ id: "owner", severity: "low", expression: "false", messageExpression: "object.metadata.name + ' of ' + object.metadata.annotations.owner" }])
    )
    const cli = (objects: string, input?: string) => {
      // Executed as the package's bin is (`npx compliance-scan`): its shebang starts the project's Node with its flags.
      const result = spawnSync(join(repoRoot, "bin", "compliance-scan.js"), ["cel", "test", "--rules", rules, "--objects", objects, "-o", "json"], {
        input: input ?? "",
        encoding: "utf8",
        env: { PATH: `${join(repoRoot, "node_modules", ".bin")}${delimiter}${process.env.PATH ?? ""}` },
        timeout: 60_000
      })
      expect(result.stderr).toBe("")
      return JSON.parse(result.stdout) as { checks: Array<{ subjects: Array<{ message: string }> }> }
    }
    const fromStdin = cli("-", manifest)
    expect(fromStdin.checks[0]!.subjects[0]!.message).toBe("caf\u00e9 of \u00e9quipe \u2615 \u{1F680}")
    expect(cli(file("annotated.json", manifest))).toEqual(fromStdin)
  }, 120_000)

  it.effect("reads `kubectl get -o json` output from standard input (-) and YAML with empty documents, comments and YAML 1.2 scalars", () =>
    Effect.gen(function*() {
      // As kubectl prints it: a List whose items carry apiVersion and kind, indented, with list metadata.
      const kubectlJson = JSON.stringify({ apiVersion: "v1", kind: "List", metadata: { resourceVersion: "" }, items: [restrictedPod("web"), privileged] }, null, 4)
      const fromStdin = yield* test({ objectFiles: ["-", moreJson], readStdin: Effect.succeed(`\n${kubectlJson}\n`) })
      expect(fromStdin.summary).toEqual({ pass: 1, fail: 1, warn: 0, skip: 0, error: 0 })
      expect(fromStdin.checks.find((check) => check.checkID === "no-privileged")?.subjects).toEqual([
        { kind: "Pod", name: "debugger", namespace: "default", outcome: "fail", message: "privileged: debugger" }
      ])
      expect(yield* Effect.flip(test({ objectFiles: ["-", "-"], readStdin: Effect.succeed(kubectlJson) }))).toMatchObject({
        message: "standard input (-) can be given only once"
      })

      // `yes` stays a string and 0x10 an int in YAML 1.2 (the API server's reading); `---` with nothing after is no object.
      const rules = file(
        "scalars.yaml",
        toYaml([{ id: "scalars", severity: "low", match: { resources: ["deployments"] }, expression: "object.metadata.labels.flag == 'yes' && object.spec.replicas == 16" }])
      )
      const yaml = file(
        "scalars-objects.yaml",
        "# a comment first\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels: {flag: yes}\nspec:\n  replicas: 0x10\n---\n---\n# only a comment\n"
      )
      const scalars = yield* test({ rulesFile: rules, objectFiles: [yaml] })
      expect(scalars.summary).toEqual({ pass: 1, fail: 0, warn: 0, skip: 0, error: 0 })
      expect(scalars.warnings).toEqual([])
    }))
})
