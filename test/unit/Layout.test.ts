import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"

const root = join(import.meta.dirname, "..", "..")

const sources = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith(".ts") ? [path] : []
  })

/** Relative module specifiers of a file: static and dynamic imports and re-exports. */
const relativeSpecifiers = (file: string) =>
  [...readFileSync(file, "utf8").matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/gu)].map((match) => match[1]!)

describe("layout: the product (src/) apart from its simulations (sim/)", () => {
  it("no module under src/ imports anything outside src/ (so nothing from sim/)", () => {
    const product = sources(join(root, "src"))
    expect(product.length).toBeGreaterThan(100)
    const escaping = product.flatMap((file) =>
      relativeSpecifiers(file)
        .map((specifier) => relative(root, resolve(dirname(file), specifier)))
        .filter((target) => !target.startsWith("src/"))
        .map((target) => `${relative(root, file)} -> ${target}`)
    )
    expect(escaping).toEqual([])
  })

  it("the simulations do import the product (the check above looks at real imports)", () => {
    const simulated = sources(join(root, "sim"))
    const intoProduct = simulated.filter((file) =>
      relativeSpecifiers(file).some((specifier) => relative(root, resolve(dirname(file), specifier)).startsWith("src/"))
    )
    expect(intoProduct.map((file) => relative(root, file))).toContain("sim/cluster/SimulatedCluster.ts")
  })

  it("neither the product nor the simulations draw from Math.random (the simulations use one seeded generator)", () => {
    const users = [...sources(join(root, "src")), ...sources(join(root, "sim"))]
      .filter((file) => /\bMath\.random\b/u.test(readFileSync(file, "utf8")))
      .map((file) => relative(root, file))
    expect(users).toEqual([])
  })

  it("the production bundle and the image copy src/ and never sim/", () => {
    const build = readFileSync(join(root, "scripts", "build-dist.ts"), "utf8")
    expect(build).toMatch(/\["package\.json", "package-lock\.json", "bin", "src"\]/u)
    const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8")
    expect(dockerfile).toMatch(/^COPY src\/ src\/$/mu)
    expect(dockerfile).not.toMatch(/^COPY .*sim/mu)
  })
})
