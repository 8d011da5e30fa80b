import { Effect } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { parse } from "yaml"
import { parseDurationMillis } from "../../../src/api/Duration.ts"
import { decodeComplianceScanRun, withDefaults } from "../../../src/api/ComplianceScanRun.ts"
import { ComplianceScanSchedule } from "../../../src/api/ComplianceScanSchedule.ts"
import { parseCronSchedule } from "../../../src/schedules/CronSchedule.ts"
import { Result, Schema } from "effect"
import { deployDir, readManifests, repoRoot } from "./DeployFiles.ts"

const samplesDir = join(deployDir, "samples")
const sampleFiles = readdirSync(samplesDir).filter((file) => file.endsWith(".yaml")).sort()

describe("deploy/samples", () => {
  it("includes the reference example of the API contract, unchanged", () => {
    const contract = readFileSync(join(repoRoot, "docs", "api.md"), "utf8")
    const section = contract.slice(contract.indexOf("## The reference example"))
    const example = parse(/```yaml\n([\s\S]*?)```/u.exec(section)![1]!)
    expect(readManifests(join(samplesDir, "cis-control-plane.yaml"))).toEqual([example])
  })

  it.effect("every sample is a valid run the timeout policy admits", () =>
    Effect.gen(function*() {
      expect(sampleFiles.length).toBeGreaterThanOrEqual(4)
      for (const file of sampleFiles) {
        for (const manifest of readManifests(join(samplesDir, file)).filter((object) => object.kind === "ComplianceScanRun")) {
          const run = yield* decodeComplianceScanRun(manifest)
          expect(parseDurationMillis(withDefaults(run.spec).timeout)!, file).toBeLessThanOrEqual(30 * 60_000)
        }
      }
    }))

  it("covers every backend, and the earlier Go implementation's cel-custom", () => {
    const backends = sampleFiles.flatMap((file) =>
      readManifests(join(samplesDir, file)).filter((object) => object.kind === "ComplianceScanRun").map((run) => run.spec.backend)
    )
    expect(new Set(backends)).toEqual(new Set(["kube-bench", "cel", "cel-custom", "falco"]))
  })

  it("has a daily CIS and an hourly Pod Security schedule: valid schedules the operator can follow, within the timeout cap", () => {
    const schedules = sampleFiles.flatMap((file) => readManifests(join(samplesDir, file))).filter((object) => object.kind === "ComplianceScanSchedule")
    expect(schedules.map((schedule) => [schedule.spec.schedule, schedule.spec.runTemplate.backend])).toEqual([
      ["30 2 * * *", "kube-bench"],
      ["@hourly", "cel"]
    ])
    for (const manifest of schedules) {
      const schedule = Schema.decodeUnknownSync(ComplianceScanSchedule)(manifest)
      expect(Result.isSuccess(parseCronSchedule(schedule.spec.schedule, schedule.spec.timeZone)), manifest.metadata.name).toBe(true)
      expect(parseDurationMillis(withDefaults(schedule.spec.runTemplate).timeout)!).toBeLessThanOrEqual(30 * 60_000)
    }
  })
})
