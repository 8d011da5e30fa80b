import { describe, expect, it } from "vitest"
import { CostExhaustedSignal, CostMeter, objectsPerAllowance } from "../../../src/backends/cel/CostMeter.ts"

describe("CostMeter (the run's budget and time grow with the objects it covers)", () => {
  it("gives a run over n allowances of objects n times the budget and the time", () => {
    let now = 1_000
    const meter = new CostMeter({ perEvaluation: 1_000, perRun: 10_000 }, { start: now, millis: 60_000 }, () => now)
    expect(meter.runBudget).toBe(10_000)
    expect(meter.deadline).toBe(61_000)
    // Up to one allowance of objects: the bounds as configured.
    for (let index = 0; index < objectsPerAllowance; index++) meter.admitObject()
    expect(meter.runBudget).toBe(10_000)
    expect(meter.deadline).toBe(61_000)
    for (let index = 0; index < 2 * objectsPerAllowance; index++) meter.admitObject()
    expect(meter.runBudget).toBe(30_000)
    expect(meter.deadline).toBe(181_000)

    // 25,000 units pass under the grown budget; the clock at 100 s is within 180 s.
    now = 101_000
    for (let index = 0; index < 25; index++) {
      meter.startEvaluation()
      meter.charge(999)
    }
    expect(meter.exhaustion).toBeUndefined()
    expect(meter.checkClock()).toBe(true)
    now = 181_001
    expect(meter.checkClock()).toBe(false)
    expect(meter.exhaustion).toBe("wall-clock")
  })

  it("still stops a run at its budget for the objects admitted so far", () => {
    const meter = new CostMeter({ perEvaluation: 1_000, perRun: 10_000 }, { start: 0, millis: Number.MAX_SAFE_INTEGER }, () => 0)
    for (let index = 0; index < objectsPerAllowance * 1.5; index++) meter.admitObject()
    expect(() => {
      for (let index = 0; index < 20; index++) {
        meter.startEvaluation()
        meter.charge(999)
      }
    }).toThrow(CostExhaustedSignal)
    expect(meter.exhaustion).toBe("run-cost")
    expect(meter.used).toBeGreaterThan(15_000)
    expect(meter.used).toBeLessThanOrEqual(15_000 + 1_000)
  })
})
