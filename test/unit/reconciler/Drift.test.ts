import { describe, expect, it } from "vitest"
import type { Check } from "../../../src/api/Check.ts"
import { driftEntryLimit } from "../../../src/api/Drift.ts"
import { computeDrift } from "../../../src/reconciler/Drift.ts"

const check = (checkID: string, outcome: Check["outcome"], severity: Check["severity"] = "low", subjects?: ReadonlyArray<string>): Check => ({
  checkID,
  title: checkID,
  outcome,
  severity,
  ...(subjects === undefined ? {} : { subjects: subjects.map((name) => ({ kind: "Node", name, outcome })) })
})

describe("computeDrift", () => {
  it("keeps the most severe entries of each list up to the limit and counts them all", () => {
    const previous = Array.from({ length: 120 }, (_, index) => check(`c-${index}`, "pass"))
    const current = Array.from({ length: 120 }, (_, index) => check(`c-${index}`, "fail", index === 7 ? "critical" : "low"))
    const drift = computeDrift({ name: "before", checks: previous }, current)
    expect(drift.counts.regressed).toBe(120)
    expect(drift.regressed).toHaveLength(driftEntryLimit)
    expect(drift.regressed[0]).toEqual({ checkID: "c-7", severity: "critical" })
  })

  it("compares per subject where checks list them: a node that passed and now fails regressed, one gone resolved", () => {
    const drift = computeDrift(
      { name: "before", checks: [check("1.1.1", "fail", "high", ["node-a"]), check("1.1.2", "pass", "high", ["node-a", "node-b"])], truncated: true },
      [check("1.1.1", "pass", "high", ["node-b"]), check("1.1.2", "fail", "high", ["node-b"])]
    )
    expect(drift.resolved).toEqual([{ checkID: "1.1.1", subject: "Node/node-a", severity: "high" }])
    expect(drift.regressed).toEqual([{ checkID: "1.1.2", subject: "Node/node-b", severity: "high" }])
    expect(drift.new).toEqual([])
    expect(drift.partial).toBe(true)
  })

  it("warn, skip and error are neither findings nor passes", () => {
    const drift = computeDrift({ name: "before", checks: [check("w", "warn"), check("e", "error")] }, [check("w", "fail"), check("e", "skip")])
    expect(drift.counts).toEqual({ new: 1, resolved: 0, regressed: 0, improved: 0, unchanged: 1 })
  })
})
