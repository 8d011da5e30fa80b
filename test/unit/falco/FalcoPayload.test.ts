import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { EventRingBuffer } from "../../../src/backends/falco/EventRingBuffer.ts"
import type { FalcoEvent } from "../../../src/backends/falco/FalcoEvent.ts"
import { decodeAlerts } from "../../../src/backends/falco/FalcoPayload.ts"
import { simulatedAlerts, toHttpJson } from "../../../sim/falco/SimulatedAlerts.ts"

const falcoJson = {
  hostname: "worker-1",
  output: "10:00:00.123456789: Warning Sensitive file opened for reading by non-trusted program | file=/etc/shadow",
  output_fields: { "evt.time": 1714557600123456789, "fd.name": "/etc/shadow", "k8s.ns.name": "payments", "k8s.pod.name": "checkout-1", "user.uid": 0, "k8s.pod.labels": null },
  priority: "Warning",
  rule: "Read sensitive file untrusted",
  source: "syscall",
  tags: ["T1555", "filesystem"],
  time: "2024-05-01T10:00:00.123456789Z"
}

describe("Falco http_output and Falcosidekick JSON", () => {
  it("decodes Falco's own JSON, keeping nanoseconds and turning typed fields into text", () => {
    const decoded = Result.getOrThrow(decodeAlerts(falcoJson))
    expect(decoded).toHaveLength(1)
    expect(decoded[0]!.format).toBe("falco")
    expect(decoded[0]!.event).toMatchObject({
      time: "2024-05-01T10:00:00.123456789Z",
      timeMillis: Date.UTC(2024, 4, 1, 10, 0, 0, 123),
      priority: "warning",
      rule: "Read sensitive file untrusted",
      hostname: "worker-1",
      tags: ["T1555", "filesystem"],
      outputFields: { "fd.name": "/etc/shadow", "k8s.ns.name": "payments", "user.uid": "0", "k8s.pod.labels": "null" }
    })
  })

  it("decodes Falcosidekick's webhook JSON (with uuid), alone or as a batch, and time zones other than Z", () => {
    const batch = [
      { ...falcoJson, uuid: "2f0b1c4e-7a55-4cc3-8d1c-0b7f6f1f2d11" },
      { ...falcoJson, uuid: "9a1d5e2c-1b44-4a77-9e3f-5c2d1a0b9e88", time: "2024-05-01T12:00:00.5+02:00", priority: "CRITICAL" }
    ]
    const decoded = Result.getOrThrow(decodeAlerts(batch))
    expect(decoded.map((alert) => [alert.format, alert.event.time, alert.event.priority])).toEqual([
      ["falcosidekick", "2024-05-01T10:00:00.123456789Z", "warning"],
      ["falcosidekick", "2024-05-01T10:00:00.500000000Z", "critical"]
    ])
  })

  it("round-trips the simulated alerts through their http_output form", () => {
    const [event] = simulatedAlerts(1, Date.UTC(2026, 0, 1))
    const decoded = Result.getOrThrow(decodeAlerts(toHttpJson(event!)))
    expect(decoded[0]!.event).toEqual(event)
  })

  it("refuses what is not an alert, naming the problem", () => {
    expect(decodeAlerts("just text")).toEqual(Result.fail("an alert must be a JSON object (a batch: an array of them)"))
    const missingRule = decodeAlerts([falcoJson, { ...falcoJson, rule: 42 }])
    expect(Result.isFailure(missingRule) && missingRule.failure).toMatch(/^alert 1: .*rule/u)
    const badPriority = decodeAlerts({ ...falcoJson, priority: "Loud" })
    expect(Result.isFailure(badPriority) && badPriority.failure).toBe("priority \"Loud\" is not a Falco priority")
    const badTime = decodeAlerts({ ...falcoJson, time: "yesterday" })
    expect(Result.isFailure(badTime) && badTime.failure).toBe("time \"yesterday\" is not an RFC 3339 time")
  })
})

describe("the receiver's ring buffer", () => {
  const events = simulatedAlerts(10, Date.UTC(2026, 0, 1))
  const sized = (list: ReadonlyArray<FalcoEvent>, bytes = 100) => list.map((event) => ({ event, bytes }))
  const recorder = () => {
    const dropped: Array<number> = []
    return { dropped, onDrop: (at: number) => void dropped.push(at) }
  }

  it("holds at most its capacity, dropping the oldest and telling when each dropped one arrived", () => {
    const buffer = new EventRingBuffer({ capacity: 4, maxBytes: 1_000_000, maxAgeMillis: 60_000 })
    const { dropped, onDrop } = recorder()
    buffer.push(sized(events.slice(0, 3)), 1_000, onDrop)
    expect(dropped).toEqual([])
    buffer.push(sized(events.slice(3, 10)), 2_000, onDrop)
    expect(dropped).toEqual([1_000, 1_000, 1_000, 2_000, 2_000, 2_000])
    expect(buffer.size).toBe(4)
    expect(buffer.between(0, 10_000)).toEqual(events.slice(6, 10))
  })

  it("holds at most its bytes, evicting the oldest by bytes", () => {
    const buffer = new EventRingBuffer({ capacity: 100, maxBytes: 1_000, maxAgeMillis: 60_000 })
    const { dropped, onDrop } = recorder()
    buffer.push(sized(events.slice(0, 4), 300), 1_000, onDrop)
    expect(buffer.size).toBe(3)
    expect(buffer.bytes).toBe(900)
    buffer.push(sized(events.slice(4, 5), 700), 2_000, onDrop)
    expect(buffer.between(0, 10_000)).toEqual([events[3], events[4]])
    expect(buffer.bytes).toBe(1_000)
    expect(dropped).toEqual([1_000, 1_000, 1_000])
    expect(buffer.oldestReceivedAt).toBe(1_000)
  })

  it("drops alerts older than its age bound and reads a window by arrival time", () => {
    const buffer = new EventRingBuffer({ capacity: 100, maxBytes: 1_000_000, maxAgeMillis: 5_000 })
    const { dropped, onDrop } = recorder()
    buffer.push(sized(events.slice(0, 2)), 1_000, onDrop)
    buffer.push(sized(events.slice(2, 4)), 3_000, onDrop)
    buffer.push(sized(events.slice(4, 6)), 7_000, onDrop)
    expect(buffer.between(2_000, 7_000)).toEqual(events.slice(2, 6))
    buffer.expire(7_500, onDrop)
    expect(dropped).toEqual([1_000, 1_000])
    expect(buffer.between(0, 10_000)).toEqual(events.slice(2, 6))
    expect(buffer.bytes).toBe(400)
  })
})
