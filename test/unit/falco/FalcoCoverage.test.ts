import { describe, expect, it } from "@effect/vitest"
import { coverageCheck, grpcCoverage, isComplete, receiverCoverage } from "../../../src/backends/falco/FalcoCoverage.ts"
import { DropLedger } from "../../../src/backends/falco/DropLedger.ts"

const t = (iso: string) => Date.parse(iso)
const window = { from: t("2026-01-01T10:00:00Z"), to: t("2026-01-01T10:05:00Z") }

describe("what a run saw of its window", () => {
  it("is complete when the receiver listened the whole window, kept it, and lost nothing in it", () => {
    const receiver = receiverCoverage({
      ...window,
      takingAlertsSince: t("2026-01-01T09:00:00Z"),
      retainedSince: t("2026-01-01T09:05:00Z"),
      oldestRetainedAt: t("2026-01-01T09:30:00Z"),
      drops: {}
    })
    expect(receiver.gaps).toEqual([])
    const check = coverageCheck([receiver])
    expect(check).toMatchObject({ checkID: "falco.coverage", outcome: "pass", severity: "info" })
    expect(check.subjects![0]!.message).toBe(
      "requested 2026-01-01T10:00:00.000Z to 2026-01-01T10:05:00.000Z; seen 2026-01-01T10:00:00.000Z to 2026-01-01T10:05:00.000Z; taking alerts since 2026-01-01T09:00:00.000Z; oldest retained alert arrived 2026-01-01T09:30:00.000Z"
    )
  })

  it("names every gap: a restart inside the window, a window past retention, alerts lost in it", () => {
    const receiver = receiverCoverage({
      ...window,
      takingAlertsSince: t("2026-01-01T10:02:00Z"),
      retainedSince: t("2026-01-01T10:01:00Z"),
      oldestRetainedAt: undefined,
      drops: { capacity: 3, rate_limited: 2 }
    })
    expect(receiver.seen).toEqual({ from: t("2026-01-01T10:02:00Z"), to: window.to })
    expect(receiver.gaps).toEqual([
      "the receiver has taken alerts only since 2026-01-01T10:02:00.000Z (operator start, restart or leader change), after the window began at 2026-01-01T10:00:00.000Z: alerts sent before were not received by this replica",
      "the window reaches past the receiver's retention: alerts that arrived before 2026-01-01T10:01:00.000Z have left the buffer",
      "in the window: 3 dropped from the full buffer (alerts or bytes), 2 requests refused over the rate limit (429)"
    ])
    const grpc = grpcCoverage({ from: window.from, to: window.to, seenTo: window.to, cutShort: undefined })
    expect(isComplete([grpc])).toBe(true)
    expect(isComplete([grpc, receiver])).toBe(false)
    const check = coverageCheck([grpc, receiver])
    expect(check).toMatchObject({ checkID: "falco.coverage-incomplete", outcome: "warn", subjectCounts: { pass: 1, warn: 1 } })
    expect(check.detail).toMatch(/^receiver: the receiver has taken alerts only since .*; receiver: the window reaches .*; receiver: in the window: 3 dropped/u)
  })

  it("counts losses by the second they happened, inside the window only", () => {
    const ledger = new DropLedger(3_600_000)
    ledger.record(window.from - 2_000, "capacity")
    ledger.record(window.from + 10, "capacity", 2)
    ledger.record(window.to, "age")
    ledger.record(window.to + 1_000, "rate_limited")
    expect(ledger.between(window.from, window.to)).toEqual({ capacity: 2, age: 1 })
    ledger.prune(window.to + 3_601_000)
    expect(ledger.between(0, Number.MAX_SAFE_INTEGER)).toEqual({ rate_limited: 1 })
  })
})
