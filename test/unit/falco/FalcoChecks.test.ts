import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { falcoPriorities, type FalcoPriority } from "../../../src/api/ComplianceScanRun.ts"
import { checkIDOfRule, checksFromEvents, matchesFilter, maxSubjectsPerCheck } from "../../../src/backends/falco/FalcoChecks.ts"
import { dedupeEvents, type FalcoEvent, severityOfPriority } from "../../../src/backends/falco/FalcoEvent.ts"
import { decodeAlerts } from "../../../src/backends/falco/FalcoPayload.ts"
import { frameworksFromTags } from "../../../src/backends/falco/FalcoTags.ts"

let sequence = 0
const alert = (overrides: Partial<FalcoEvent> & { readonly pod?: readonly [string, string]; readonly container?: string } = {}): FalcoEvent => {
  sequence++
  const { pod, container, ...rest } = overrides
  return {
    time: `2026-03-01T10:00:00.${String(sequence).padStart(9, "0")}Z`,
    timeMillis: Date.UTC(2026, 2, 1, 10),
    priority: "notice",
    rule: "Terminal shell in container",
    output: `10:00:00.000000000: Notice A shell was spawned in a container (#${sequence})`,
    outputFields: pod === undefined
      ? { "container.id": "host", "k8s.ns.name": "<NA>", "k8s.pod.name": "<NA>" }
      : { "k8s.ns.name": pod[0], "k8s.pod.name": pod[1], "container.name": container ?? "app", "container.id": "abc" },
    hostname: "worker-1",
    tags: ["container", "shell", "mitre_execution", "T1059"],
    source: "syscall",
    ...rest
  }
}

describe("Falco check identity", () => {
  it("slugs rule names: lower case, runs of other characters collapsed to one dash", () => {
    expect(checkIDOfRule("Terminal shell in container")).toBe("falco.terminal-shell-in-container")
    expect(checkIDOfRule("Write below etc")).toBe("falco.write-below-etc")
    expect(checkIDOfRule("  K8s API: contact (from container)!! ")).toBe("falco.k8s-api-contact-from-container")
    expect(checkIDOfRule("Read sensitive file untrusted")).toBe("falco.read-sensitive-file-untrusted")
  })
})

describe("Falco priorities", () => {
  it("map to severities as Falcosidekick does", () => {
    const mapped = Object.fromEntries(falcoPriorities.map((priority) => [priority, severityOfPriority(priority)]))
    expect(mapped).toEqual({
      emergency: "critical",
      alert: "critical",
      critical: "critical",
      error: "high",
      warning: "medium",
      notice: "low",
      informational: "info",
      debug: "info"
    })
  })
})

describe("Falco tags as frameworks", () => {
  it("turns MITRE techniques, PCI DSS and NIST 800-53 tags into framework references and ignores the rest", () => {
    expect(
      frameworksFromTags(["T1059", "T1059.004", "PCI_DSS_11.5.1", "NIST_800-53_AU-10", "mitre_execution", "container", "TA0002", "NIST_800-171_3.3.1"])
    ).toEqual([
      { name: "mitre-attack", controlID: "T1059" },
      { name: "mitre-attack", controlID: "T1059.004" },
      { name: "nist-800-53", controlID: "AU-10" },
      { name: "pci-dss", controlID: "11.5.1" }
    ])
  })
})

describe("checks from Falco alerts", () => {
  it("gives one fail check per rule with the worst severity, pod and host subjects with counts, and a one-line detail", () => {
    const checks = checksFromEvents([
      alert({ pod: ["payments", "checkout-1"], container: "checkout" }),
      alert({ pod: ["payments", "checkout-1"], container: "sidecar" }),
      alert({ pod: ["web", "frontend-1"], priority: "critical", output: "Critical shell\nwith a second line" }),
      alert({ hostname: "control-plane-1" }),
      alert({
        rule: "Write below etc",
        priority: "error",
        tags: ["filesystem", "T1098", "PCI_DSS_11.5.1", "NIST_800-53_SI-7"],
        pod: ["web", "frontend-1"]
      })
    ])
    expect(checks.map((check) => [check.checkID, check.outcome, check.severity])).toEqual([
      ["falco.terminal-shell-in-container", "fail", "critical"],
      ["falco.write-below-etc", "fail", "high"]
    ])
    const shell = checks[0]!
    expect(shell.title).toBe("Terminal shell in container")
    expect(shell.detail).toBe("Critical shell with a second line")
    expect(shell.subjects).toEqual([
      { kind: "Pod", namespace: "payments", name: "checkout-1", outcome: "fail", count: 2, message: "2 event(s) in container(s) checkout, sidecar" },
      { kind: "Host", name: "control-plane-1", outcome: "fail", count: 1 },
      { kind: "Pod", namespace: "web", name: "frontend-1", outcome: "fail", count: 1, message: "1 event(s) in container(s) app" }
    ])
    expect(shell.subjectCounts).toEqual({ pass: 0, fail: 3, warn: 0, skip: 0, error: 0 })
    expect(shell.frameworks).toEqual([{ name: "mitre-attack", controlID: "T1059" }])
    expect(checks[1]!.frameworks).toEqual([
      { name: "mitre-attack", controlID: "T1098" },
      { name: "nist-800-53", controlID: "SI-7" },
      { name: "pci-dss", controlID: "11.5.1" }
    ])
  })

  it("caps the listed subjects but keeps the full count", () => {
    const many = Array.from({ length: maxSubjectsPerCheck + 20 }, (_, index) => alert({ pod: ["ns", `pod-${index}`] }))
    const [check] = checksFromEvents(many)
    expect(check!.subjects).toHaveLength(maxSubjectsPerCheck)
    expect(check!.subjectCounts?.fail).toBe(maxSubjectsPerCheck + 20)
  })
})

describe("spec.falco filters", () => {
  const events = [
    alert({ priority: "debug" }),
    alert({ priority: "warning", rule: "Read sensitive file untrusted", tags: ["filesystem", "T1555"] }),
    alert({ priority: "error", rule: "Write below etc", tags: ["filesystem", "PCI_DSS_11.5.1"] }),
    alert({ priority: "emergency" })
  ]
  const rulesOf = (filter: Parameters<typeof matchesFilter>[0]) => events.filter(matchesFilter(filter)).map((event) => `${event.rule}/${event.priority}`)

  it("minPriority keeps alerts at least that urgent", () => {
    expect(rulesOf({ minPriority: "warning" })).toEqual([
      "Read sensitive file untrusted/warning",
      "Write below etc/error",
      "Terminal shell in container/emergency"
    ])
    const all: ReadonlyArray<FalcoPriority> = falcoPriorities
    expect(rulesOf({ minPriority: all[all.length - 1]! })).toHaveLength(4)
  })

  it("rules match names case-insensitively and tags need one in common", () => {
    expect(rulesOf({ rules: ["write below ETC"] })).toEqual(["Write below etc/error"])
    expect(rulesOf({ tags: ["T1555", "PCI_DSS_11.5.1"] })).toEqual(["Read sensitive file untrusted/warning", "Write below etc/error"])
    expect(rulesOf({ rules: ["Write below etc"], tags: ["T1555"] })).toEqual([])
  })
})

describe("de-duplication", () => {
  it("counts an alert delivered twice (gRPC and the receiver, or a retried webhook) once", () => {
    const first = alert()
    const fromHttp = decodeAlerts({
      time: first.time,
      rule: first.rule,
      priority: "Notice",
      output: first.output,
      hostname: first.hostname,
      source: "syscall",
      uuid: "0b7d3f1e-3c2a-4a55-9d1e-6a0f4f3e2b11"
    })
    expect(Result.isSuccess(fromHttp)).toBe(true)
    const unique = dedupeEvents([first, ...Result.getOrThrow(fromHttp).map((decoded) => decoded.event), alert()])
    expect(unique).toHaveLength(2)
  })
})
