import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { dockerfileStages, imageEnvironment, imageNodeFlags, repoRoot } from "./DeployFiles.ts"

const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8")
const stages = dockerfileStages()
const final = stages.at(-1)!
const packageJson = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"))
const dockerignore = readFileSync(join(repoRoot, ".dockerignore"), "utf8").split("\n").filter((line) => line !== "" && !line.startsWith("#"))

describe("Dockerfile", () => {
  it("builds in two stages on the Node version the project runs on, its base image pinned by digest", () => {
    expect(stages.length).toBe(2)
    const image = /ARG NODE_IMAGE=(\S+)/u.exec(dockerfile)?.[1]
    expect(image).toMatch(new RegExp(`^docker\\.io/library/node:${packageJson.devDependencies.node}-bookworm-slim@sha256:[0-9a-f]{64}$`, "u"))
    expect(stages.map((stage) => stage[0]!.args.split(" ")[0])).toEqual(["${NODE_IMAGE}", "${NODE_IMAGE}"])
  })

  it("installs production dependencies only and copies the bundle of scripts/build-dist.ts", () => {
    const build = stages[0]!.map((instruction) => `${instruction.keyword} ${instruction.args}`)
    expect(build).toContain("RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund")
    expect(build).toContain("RUN node scripts/build-dist.ts --out /app")
    expect(packageJson.scripts.build).toBe("node scripts/build-dist.ts")
    expect(final.filter((instruction) => instruction.keyword === "COPY").map((instruction) => instruction.args)).toEqual(["--from=build /app /app"])
  })

  it("runs `node bin/compliance-scan.js run` as a numeric non-root user", () => {
    const user = final.find((instruction) => instruction.keyword === "USER")!.args
    expect(user).toMatch(/^[1-9][0-9]*:[1-9][0-9]*$/u)
    expect(final.find((instruction) => instruction.keyword === "ENTRYPOINT")!.args).toBe('["node", "--max-semi-space-size=2", "/app/bin/compliance-scan.js"]')
    expect(imageNodeFlags()).toEqual(["--max-semi-space-size=2"])
    expect(final.find((instruction) => instruction.keyword === "CMD")!.args).toBe('["run"]')
  })

  it("fixes glibc's mmap threshold, so the pages of a scan's lists go back to the system once freed", () => {
    // As the cluster tier and the benches read it to start the operator (OperatorProcess).
    expect(imageEnvironment()).toEqual({ NODE_ENV: "production", HOME: "/tmp", MALLOC_MMAP_THRESHOLD_: "131072" })
  })

  it("every file it copies from the build context passes .dockerignore", () => {
    expect(dockerignore[0]).toBe("*")
    const allowed = dockerignore.filter((line) => line.startsWith("!")).map((line) => line.slice(1))
    const copied = stages[0]!
      .filter((instruction) => instruction.keyword === "COPY" && !instruction.args.startsWith("--from"))
      .flatMap((instruction) => instruction.args.split(" ").slice(0, -1))
    expect(copied.length).toBeGreaterThan(3)
    for (const source of copied) expect(allowed, source).toContain(source)
  })
})
