import { describe, expect, it } from "@effect/vitest"
import { alertBudget, alertBytes, boundAlert, cutText, maxAlertBytes } from "../../../src/backends/falco/AlertBudget.ts"
import { EventCompactor } from "../../../src/backends/falco/EventCompactor.ts"
import { simulatedAlert } from "../../../sim/falco/SimulatedAlerts.ts"

const huge = (char: string, length: number) => char.repeat(length)

describe("the per-alert budget", () => {
  it("leaves alerts within the budget as they are", () => {
    const alert = simulatedAlert(1, Date.UTC(2026, 0, 1))
    const bounded = boundAlert(alert)
    expect(bounded.output).toBe(alert.output)
    expect(bounded.rule).toBe(alert.rule)
    expect(alertBytes(bounded)).toBeLessThan(4_096)
  })

  it("cuts the output, every kept field, names and tags, marking each cut with the length and a digest", () => {
    const alert = simulatedAlert(1, Date.UTC(2026, 0, 1))
    const bounded = boundAlert({
      ...alert,
      rule: huge("r", 10_000),
      output: huge("o", 1_000_000),
      hostname: huge("h", 5_000),
      source: huge("s", 5_000),
      tags: Array.from({ length: 500 }, (_, index) => `${index}${huge("t", 1_000)}`),
      outputFields: { ...alert.outputFields, "k8s.pod.name": huge("p", 100_000), "proc.cmdline": huge("c", 100_000) }
    })
    expect(bounded.output).toMatch(/^o{4096} … \[cut: 1000000 characters, sha1 [A-Za-z0-9+/]{12}\]$/u)
    expect(bounded.rule.startsWith(huge("r", alertBudget.nameChars))).toBe(true)
    expect(bounded.rule).toMatch(/\[cut: 10000 characters/u)
    expect(bounded.outputFields["k8s.pod.name"]).toMatch(/^p{256} … \[cut: 100000/u)
    expect(bounded.outputFields["proc.cmdline"]).toBeUndefined()
    expect(bounded.tags).toHaveLength(alertBudget.tags)
    expect(alertBytes(bounded)).toBeLessThanOrEqual(maxAlertBytes)
    expect(maxAlertBytes).toBeLessThan(40_000)
  })

  it("keeps two different long outputs with the same beginning apart", () => {
    expect(cutText(`${huge("a", 5_000)}x`, 100)).not.toBe(cutText(`${huge("a", 5_000)}y`, 100))
  })

  it("never splits a surrogate pair", () => {
    const cut = cutText(`${huge("a", 99)}😀${huge("b", 200)}`, 100)
    expect(cut.startsWith(`${huge("a", 99)} …`)).toBe(true)
  })

  it("is applied by the compactor before an alert is buffered", () => {
    const alert = { ...simulatedAlert(1, Date.UTC(2026, 0, 1)), output: huge("o", 50_000) }
    expect(new EventCompactor().compact(alert).output.length).toBeLessThan(alertBudget.outputChars + 80)
  })
})
