import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, describe, expect, inject, it } from "vitest"
import { parse, stringify } from "yaml"
import "../toolsSetup.ts"
import { chartDir, findManifest, parseManifests, readManifests, repoRoot } from "./DeployFiles.ts"

/**
 * The shipped alert rules through the real promtool (built by scripts/control-plane/build.sh
 * --tools, test/unit/toolsSetup.ts): `promtool check rules` and the `promtool test rules` cases
 * of test/monitoring, on the plain rules file, on the kustomize PrometheusRule's spec and on
 * the one the chart renders. A missing promtool fails the run.
 */
const { promtool, helm, kubernetesVersion } = inject("tools")
const run = promisify(execFile)
const scratch = mkdtempSync(join(tmpdir(), "alert-rules-test-"))
const rulesTests = join(repoRoot, "test", "monitoring", "compliance-scan.rules.test.yaml")

afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const runTool = async (tool: string, args: ReadonlyArray<string>) => {
  try {
    const { stdout, stderr } = await run(tool, [...args], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 })
    return { code: 0, output: stdout + stderr }
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string }
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` }
  }
}

/** The rule groups of every form the project ships, each written to a plain rules file. */
const ruleSources = async (): Promise<Array<{ readonly name: string; readonly file: string }>> => {
  // --kube-version: see helmCommand in Deploy.test.ts (a helm built from source defaults to v1.20).
  const rendered = await runTool(helm, ["template", "alerts", chartDir, "--namespace", "ugallu-system", "--kube-version", kubernetesVersion, "--set", "prometheusRule.enabled=true"])
  expect(rendered.code, rendered.output).toBe(0)
  const forms = {
    "deploy/monitoring/compliance-scan.rules.yaml": parse(readFileSync(join(repoRoot, "deploy/monitoring/compliance-scan.rules.yaml"), "utf8")),
    "deploy/monitoring/prometheus-rule.yaml (spec)": readManifests(join(repoRoot, "deploy/monitoring/prometheus-rule.yaml"))[0]!.spec,
    "the chart's PrometheusRule (spec)": findManifest(parseManifests(rendered.output), "PrometheusRule").spec
  }
  return Object.entries(forms).map(([name, groups], index) => {
    const directory = join(scratch, `source-${index}`)
    mkdirSync(directory, { recursive: true })
    const file = join(directory, "rules.yaml")
    writeFileSync(file, stringify(groups))
    return { name, file }
  })
}

let testFiles = 0
/** test/monitoring's cases, pointed at one rules file. */
const testsFor = (rulesFile: string): string => {
  const tests = parse(readFileSync(rulesTests, "utf8"))
  const file = join(scratch, `tests-${++testFiles}.yaml`)
  writeFileSync(file, stringify({ ...tests, rule_files: [rulesFile] }))
  return file
}

describe("alert rules (promtool)", () => {
  it("promtool is the pinned build", async () => {
    const version = await runTool(promtool, ["--version"])
    expect(version.code, version.output).toBe(0)
    expect(version.output).toMatch(/promtool, version 3\.\d+\.\d+/u)
  })

  it("every shipped form passes `promtool check rules` and holds the same eight alerts", async () => {
    for (const source of await ruleSources()) {
      const checked = await runTool(promtool, ["check", "rules", source.file])
      expect(checked.code, `${source.name}: ${checked.output}`).toBe(0)
      expect(checked.output, source.name).toContain("SUCCESS: 8 rules found")
    }
  })

  // promtool evaluates every case for each of the three forms: minutes on a loaded 2-core machine.
  it("every shipped form passes the unit tests of test/monitoring (each alert firing and not, after a restart, the operator gone)", { timeout: 240_000 }, async () => {
    const cases = parse(readFileSync(rulesTests, "utf8")).tests as ReadonlyArray<{ alert_rule_test: ReadonlyArray<{ alertname: string }> }>
    const tested = new Set(cases.flatMap((entry) => entry.alert_rule_test.map((test) => test.alertname)))
    expect([...tested].sort()).toEqual([
      "ComplianceExceptionsExpired", "ComplianceExceptionsExpiring", "ComplianceExceptionsUnused",
      "ComplianceScanHighSeverityFindings", "ComplianceScanNoLeader", "ComplianceScanNoSuccessfulRun", "ComplianceScanRunsFailing", "ComplianceScanStale"
    ])
    for (const source of await ruleSources()) {
      const result = await runTool(promtool, ["test", "rules", testsFor(source.file)])
      expect(result.code, `${source.name}: ${result.output}`).toBe(0)
      expect(result.output, source.name).toContain("SUCCESS")
    }
  })

  it("the cases can fail: with the expressions as shipped before (test/monitoring/rules-before-issue-13.yaml), each alert's cases fail", { timeout: 120_000 }, async () => {
    // Today's rules with the old expressions only, so that only the logic differs (not the annotations).
    const current = parse(readFileSync(join(repoRoot, "deploy/monitoring/compliance-scan.rules.yaml"), "utf8"))
    const before = parse(readFileSync(join(repoRoot, "test/monitoring/rules-before-issue-13.yaml"), "utf8"))
    const oldExpression = new Map<string, string>(before.groups[0].rules.map((rule: { alert: string; expr: string }) => [rule.alert, rule.expr]))
    // The alerts issue 13 did not touch keep today's expressions.
    for (const rule of current.groups[0].rules) rule.expr = oldExpression.get(rule.alert) ?? rule.expr
    const file = join(scratch, "before.rules.yaml")
    writeFileSync(file, stringify(current))
    const result = await runTool(promtool, ["test", "rules", testsFor(file)])
    expect(result.code).not.toBe(0)
    for (const alert of ["ComplianceScanRunsFailing", "ComplianceScanNoSuccessfulRun", "ComplianceScanHighSeverityFindings", "ComplianceScanNoLeader"]) {
      expect(result.output, alert).toContain(`alertname: ${alert}`)
    }
  })
})
