import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { stringify as toYaml } from "yaml"
import { runCelTest } from "../../src/backends/cel/CelTestCommand.ts"
import { compileSelector, matchesSelector, selectorQuery } from "../../src/backends/cel/RuleSelector.ts"
import { randomSelectorCases, selectorCases } from "../unit/cel/SelectorCases.ts"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, prepareCluster } from "./harness/ClusterSetup.ts"
import type { Json, KubeHttp } from "./harness/KubeHttp.ts"
import { runPath } from "./harness/Scans.ts"

/**
 * The CEL rule checks against the real things: selectors against apimachinery itself (a
 * small Go program built from the Kubernetes module, test/cluster/selector-oracle), and
 * `cel test`'s unknown-field message against the real API server's strict field validation.
 */
const cluster = inject("cluster")
const workDir = mkdtempSync(join(tmpdir(), "cel-rule-validation-"))
let oracle: string
let admin: KubeHttp
let namespace: string

beforeAll(async () => {
  oracle = join(workDir, "selector-oracle")
  execFileSync("go", ["build", "-o", oracle, "."], { cwd: join(import.meta.dirname, "selector-oracle"), stdio: "pipe", timeout: 540_000 })
  admin = connectAdmin(cluster)
  await prepareCluster(cluster, admin)
  namespace = await createNamespace(admin, "cel-rule-validation")
})

afterAll(async () => {
  await deleteNamespace(admin, namespace)
  admin.close()
  rmSync(workDir, { recursive: true, force: true })
})

interface OracleVerdict {
  readonly error?: string
  readonly matches?: ReadonlyArray<boolean>
  readonly queryError?: string
  readonly queryMatches?: ReadonlyArray<boolean>
}

describe("CEL rule selectors and fields against the real implementations", () => {
  it("gives apimachinery's verdict on every selector: valid or not, and which label sets match, also through the query sent to the API server", () => {
    const cases = [...selectorCases, ...randomSelectorCases(400)]
    const ours = cases.map(({ selector, labels }) => {
      const compiled = compileSelector(selector)
      if (compiled._tag === "Invalid") return { valid: false, matches: undefined, query: undefined }
      return { valid: true, matches: labels.map((set) => matchesSelector(compiled.requirements, set)), query: selectorQuery(compiled.requirements) }
    })
    const input = cases.map(({ selector, labels }, index) => ({ selector: selector ?? null, labels, ...(ours[index]!.query === undefined ? {} : { query: ours[index]!.query }) }))
    const theirs = JSON.parse(execFileSync(oracle, [], { input: JSON.stringify(input), encoding: "utf8" })) as ReadonlyArray<OracleVerdict>

    const disagreements: Array<string> = []
    cases.forEach(({ name, selector }, index) => {
      const [mine, go] = [ours[index]!, theirs[index]!]
      const what = `${name} ${JSON.stringify(selector)}`
      if (mine.valid !== (go.error === undefined)) disagreements.push(`${what}: ours ${mine.valid ? "valid" : "invalid"}, apimachinery ${go.error ?? "valid"}`)
      else if (mine.valid && JSON.stringify(mine.matches) !== JSON.stringify(go.matches)) disagreements.push(`${what}: ours ${mine.matches}, apimachinery ${go.matches}`)
      if (mine.query !== undefined && (go.queryError !== undefined || JSON.stringify(go.queryMatches) !== JSON.stringify(mine.matches))) {
        disagreements.push(`${what}: query ${JSON.stringify(mine.query)} parses to ${go.queryError ?? go.queryMatches}, ours ${mine.matches}`)
      }
    })
    expect(disagreements).toEqual([])
    // Both kinds of verdict were exercised.
    expect(ours.filter((verdict) => !verdict.valid).length).toBeGreaterThan(50)
    expect(ours.filter((verdict) => verdict.valid && verdict.query !== undefined).length).toBeGreaterThan(50)
  })

  it("refuses a run with unknown rule fields with the API server's own strict field validation message", async () => {
    const run: Json = {
      apiVersion: "security.ugallu.io/v1alpha1",
      kind: "ComplianceScanRun",
      metadata: { name: "typo", namespace },
      spec: {
        backend: "cel",
        profle: "default",
        cel: { rules: [{ id: "x", severity: "high", match: { namespaceSelectr: { matchLabels: { team: "a" } } }, expression: "true" }] }
      }
    }
    const response = await admin.raw("POST", `${runPath(namespace)}?fieldValidation=Strict&dryRun=All`, JSON.stringify(run))
    expect(response.status).toBe(400)
    const serverMessage = String((JSON.parse(response.body) as Json).message)

    const rulesFile = join(workDir, "typo-run.yaml")
    writeFileSync(rulesFile, toYaml(run))
    const podsFile = join(workDir, "none.yaml")
    writeFileSync(podsFile, "")
    const failure = await Effect.runPromise(
      Effect.flip(runCelTest({ rulesFile, objectFiles: [podsFile], profile: undefined, output: "yaml" })).pipe(Effect.provide(NodeServices.layer))
    )
    expect(failure.message).toBe(`invalid rules in ${rulesFile}: ${serverMessage}`)
  })
})
