import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { envName } from "../../../src/cli/OperatorFlags.ts"
import { chartValueOfFlag, repoRoot } from "./DeployFiles.ts"

const doc = readFileSync(join(repoRoot, "docs", "operations.md"), "utf8")
const configurationRows = doc
  .slice(doc.indexOf("## Configuration"), doc.indexOf("## Upgrading"))
  .split("\n")
  .filter((line) => line.startsWith("| `--"))

describe("docs/operations.md", () => {
  it("the configuration reference has a row for every flag: its variable and its Helm value", () => {
    expect(configurationRows.length).toBe(Object.keys(chartValueOfFlag).length)
    for (const [flag, value] of Object.entries(chartValueOfFlag)) {
      const row = configurationRows.find((line) => line.startsWith(`| \`--${flag}\` `))
      expect(row, `--${flag}`).toBeDefined()
      expect(row).toContain(`\`${envName(flag)}\``)
      expect(row).toContain(`\`${value}\``)
    }
  })

  it("installs with both kubectl and Helm, and covers upgrading, uninstalling, troubleshooting and security", () => {
    for (const heading of ["### With kubectl", "### With Helm", "## Upgrading", "## Uninstall", "## Troubleshooting", "## Security notes"]) {
      expect(doc).toContain(heading)
    }
    expect(doc).toContain("kubectl apply -k deploy/")
    expect(doc).toContain("helm install compliance-scan deploy/helm/compliance-scan")
  })
})
