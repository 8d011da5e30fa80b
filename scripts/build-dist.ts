// `npm run build`: stages the production bundle that the container image copies, in
// dist/compliance-scan/ (or `--out <dir>`): package.json, package-lock.json, bin/, src/ and
// the production node_modules (the lockfile's non-dev packages; no devDependencies).
//
// Not a single-file bundle, on purpose: Node 24 runs the TypeScript sources directly (type
// stripping), and src/ reads data files that sit next to its modules through
// import.meta.dirname / import.meta.url (CEL rule packs, the CIS severity table, Falco's
// .proto files, the demo's reports); a bundle would move those modules away from their
// data. Run the result with `node <out>/bin/compliance-scan.js run`.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs"
import { join, resolve } from "node:path"

interface LockedPackage {
  readonly dev?: boolean
  readonly devOptional?: boolean
  readonly link?: boolean
}

const root = join(import.meta.dirname, "..")
const outFlag = process.argv.indexOf("--out")
const out = resolve(outFlag === -1 ? join(root, "dist", "compliance-scan") : process.argv[outFlag + 1] ?? "")
if (out === root || !out.startsWith("/") || outFlag !== -1 && process.argv[outFlag + 1] === undefined) {
  console.error("usage: node scripts/build-dist.ts [--out <directory>]")
  process.exit(2)
}

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
for (const entry of ["package.json", "package-lock.json", "bin", "src"]) {
  cpSync(join(root, entry), join(out, entry), { recursive: true })
}

// Each production package without its nested node_modules: the nested packages that are
// production dependencies have lockfile entries of their own.
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
  readonly packages: Readonly<Record<string, LockedPackage>>
}
// Type declarations and source maps are never loaded at run time.
const typesOrSourceMap = /\.(d\.[cm]?ts|map)$/u
let copied = 0
for (const [path, entry] of Object.entries(lock.packages)) {
  if (path === "" || entry.dev === true || entry.devOptional === true || entry.link === true) continue
  const from = join(root, path)
  // Optional packages for other platforms are in the lockfile but not installed.
  if (!existsSync(from)) continue
  const nested = join(from, "node_modules")
  cpSync(from, join(out, path), { recursive: true, filter: (source) => source !== nested && !typesOrSourceMap.test(source) })
  copied++
}
console.log(`${out}: bin/, src/ and ${copied} production packages`)
