// Writes crds/*.yaml from the Schemas in src/api (`npm run generate:crds`).
// `--check` writes nothing and exits 1 when crds/ differs from what the Schemas say.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { renderCrdFiles } from "../src/api/CrdFiles.ts"

const directory = join(import.meta.dirname, "..", "crds")
const check = process.argv.includes("--check")
let stale = 0
mkdirSync(directory, { recursive: true })
for (const [file, text] of renderCrdFiles()) {
  const path = join(directory, file)
  let current: string | undefined
  try {
    current = readFileSync(path, "utf8")
  } catch {
    current = undefined
  }
  if (current === text) continue
  stale++
  if (check) console.error(`crds/${file} is stale: run npm run generate:crds`)
  else writeFileSync(path, text)
}
if (check && stale > 0) process.exit(1)
console.log(check ? "crds/ is up to date" : `crds/: ${stale} file(s) written`)
