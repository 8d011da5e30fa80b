// Copies the files that deploy/ and the Helm chart must carry verbatim from their single
// source (`npm run sync:deploy`):
//   crds/*.yaml                       -> deploy/crds/ (kustomize loads nothing outside deploy/)
//   crds/*.yaml                       -> deploy/helm/compliance-scan/files/crds/
//   deploy/monitoring/<rules, dashboard> -> deploy/helm/compliance-scan/files/monitoring/
// The chart renders its CRDs from files/crds (a template, not Helm's crds/ folder, so that
// they can be skipped, kept on uninstall and upgraded). `--check` writes nothing and exits 1
// when a copy differs; test/unit/deploy checks the same.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const chart = join(root, "deploy", "helm", "compliance-scan")
const check = process.argv.includes("--check")

const crdFiles = readdirSync(join(root, "crds")).filter((file) => file.endsWith(".yaml")).sort()
const monitoringFiles = ["compliance-scan.rules.yaml", "grafana-dashboard.json"]

const copies: Array<{ readonly from: string; readonly to: string }> = [
  ...crdFiles.map((file) => ({ from: join(root, "crds", file), to: join(root, "deploy", "crds", file) })),
  ...crdFiles.map((file) => ({ from: join(root, "crds", file), to: join(chart, "files", "crds", file) })),
  ...monitoringFiles.map((file) => ({
    from: join(root, "deploy", "monitoring", file),
    to: join(chart, "files", "monitoring", file)
  }))
]

const read = (path: string) => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

let stale = 0
for (const { from, to } of copies) {
  const text = readFileSync(from, "utf8")
  if (read(to) === text) continue
  stale++
  if (check) console.error(`${to.slice(root.length + 1)} differs from ${from.slice(root.length + 1)}: run npm run sync:deploy`)
  else {
    mkdirSync(join(to, ".."), { recursive: true })
    writeFileSync(to, text)
  }
}

// A CRD removed from crds/ must not linger in the copies.
for (const directory of [join(root, "deploy", "crds"), join(chart, "files", "crds")]) {
  for (const file of readdirSync(directory)) {
    if (crdFiles.includes(file)) continue
    stale++
    if (check) console.error(`${join(directory, file).slice(root.length + 1)} is not in crds/: run npm run sync:deploy`)
    else rmSync(join(directory, file))
  }
}

if (check && stale > 0) process.exit(1)
console.log(check ? "deploy/ copies are up to date" : `deploy/ copies: ${stale} file(s) written or removed`)
