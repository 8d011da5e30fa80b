import { describe, expect, it } from "@effect/vitest"
import { checksFromEvents } from "../../../src/backends/falco/FalcoChecks.ts"
import type { FalcoEvent } from "../../../src/backends/falco/FalcoEvent.ts"
import { escapedText, visibleText } from "../../../src/backends/falco/SafeText.ts"

/** Anything a terminal or a bidi-aware viewer would act on. */
const unsafeCharacter = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u

const hostile = (pod: string, namespace: string): FalcoEvent => ({
  time: "2026-03-01T10:00:00.000000001Z",
  timeMillis: Date.UTC(2026, 2, 1, 10),
  priority: "critical",
  rule: "Shell\u001b]0;owned\u0007 in \u202eniatnoc",
  output: "10:00:00: Critical shell\u0000 \u001b[2J\u001b[31mall clear\u001b[0m \u2066isolated\u2069 \u0085next",
  outputFields: { "k8s.ns.name": namespace, "k8s.pod.name": pod, "container.name": "app\u001b[8m", "container.id": "abc" },
  hostname: "node\u0000-1",
  tags: ["PCI_DSS_10.2\u001b[1m", "T1059"],
  source: "syscall"
})

describe("alert text stored in a Result", () => {
  it("shows control characters, ANSI escapes, NUL and bidi overrides as visible escapes", () => {
    expect(visibleText("a\u001b[31mb\u0000c\u202ed\u0085e\ud800f😀")).toBe("a\\x1b[31mb\\x00c\\u202ed\\x85e\\ud800f😀")
    expect(visibleText("plain text: /etc/shadow (uid=0)")).toBe("plain text: /etc/shadow (uid=0)")
  })

  it("keeps no unsafe character in any field of a check built from a hostile alert", () => {
    const [check] = checksFromEvents([hostile("web\u202e1", "pay\u001bments")])
    const strings = JSON.stringify(check)
    // JSON.stringify escapes C0 itself: look at the parsed values.
    const values: Array<string> = []
    JSON.parse(strings, (_key, value: unknown) => {
      if (typeof value === "string") values.push(value)
      return value
    })
    for (const value of values) expect(value, value).not.toMatch(unsafeCharacter)
    expect(check!.title).toBe("Shell\\x1b]0;owned\\x07 in \\u202eniatnoc")
    expect(check!.detail).toBe("10:00:00: Critical shell\\x00 \\x1b[2J\\x1b[31mall clear\\x1b[0m \\u2066isolated\\u2069 \\x85next")
    expect(check!.subjects![0]).toMatchObject({
      name: "web\\u202e1",
      namespace: "pay\\x1bments",
      rawName: "web\\u202e1",
      rawNamespace: "pay\\x1bments",
      message: "1 event(s) in container(s) app\\x1b[8m"
    })
    expect(check!.frameworks).toContainEqual({ name: "pci-dss", controlID: "10.2\\x1b[1m" })
  })

  it("never merges two subjects whose names look alike once made visible", () => {
    const [check] = checksFromEvents([hostile("web\u202e1", "payments"), { ...hostile("web\\u202e1", "payments"), time: "2026-03-01T10:00:00.000000002Z" }])
    expect(check!.subjectCounts?.fail).toBe(2)
    const [first, second] = check!.subjects!
    expect(first!.name).toBe(second!.name)
    expect(new Set([first!.rawName, second!.rawName])).toEqual(new Set(["web\\u202e1", undefined]))
    expect(escapedText("web\u202e1")).not.toBe(escapedText("web\\u202e1"))
  })
})
