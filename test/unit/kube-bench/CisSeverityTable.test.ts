import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { readFileSync } from "node:fs"
import { severities as allSeverities } from "../../../src/api/Severity.ts"
import {
  loadCisSeverityTable,
  parseCisSeverityTable,
  severityOf,
  shippedTableUrl
} from "../../../src/backends/kube-bench/CisSeverityTable.ts"

const table = Effect.runSync(loadCisSeverityTable)

describe("the shipped CIS severity table", () => {
  it("rates unauthenticated access to the API server, kubelet and etcd critical", () => {
    expect(severityOf(table, "1.2.1")).toBe("critical") // API server --anonymous-auth
    expect(severityOf(table, "1.2.6")).toBe("critical") // --authorization-mode not AlwaysAllow
    expect(severityOf(table, "4.2.1")).toBe("critical") // kubelet anonymous auth
    expect(severityOf(table, "4.2.2")).toBe("critical") // kubelet AlwaysAllow
    expect(severityOf(table, "2.1")).toBe("critical") // etcd TLS
    expect(severityOf(table, "2.2")).toBe("critical") // etcd client certificates
    expect(severityOf(table, "1.2.14")).toBe("high") // NodeRestriction
    expect(severityOf(table, "4.2.4")).toBe("high") // kubelet read-only port
  })

  it("rates file permissions medium and manual policy reviews low or medium", () => {
    for (const id of ["1.1.1", "1.1.12", "4.1.1", "4.1.10"]) expect(severityOf(table, id), id).toBe("medium")
    expect(severityOf(table, "5.2.5")).toBe("medium")
    expect(severityOf(table, "5.4.1")).toBe("low")
    expect(severityOf(table, "5.7.4")).toBe("low")
    expect(severityOf(table, "1.2.15")).toBe("low") // profiling
  })

  it("matches whole dotted prefixes only: 1.2.10 is not 1.2.1", () => {
    expect(severityOf(table, "1.2.10")).toBe("high") // AlwaysAdmit
    expect(severityOf(table, "1.2.99")).toBe("medium") // falls back to "1.2"
    expect(severityOf(table, "2.99")).toBe("high") // falls back to "2" (etcd)
  })

  it("uses a benchmark's own numbering where it differs (cis-1.8 numbers profiling 1.2.16)", () => {
    expect(severityOf(table, "1.2.16", "cis-1.8")).toBe("low")
    expect(severityOf(table, "1.2.16", "cis-1.10")).toBe("medium")
    expect(severityOf(table, "1.2.1", "cis-1.8")).toBe("critical")
  })

  it("gives unknown ids the documented default, medium", () => {
    expect(table.default).toBe("medium")
    expect(readFileSync(shippedTableUrl, "utf8")).toMatch(/^default: medium$/m)
    expect(severityOf(table, "9.9.9")).toBe("medium")
    expect(severityOf(table, "not-a-cis-id", "eks-1.8.0")).toBe("medium")
  })

  it("only uses the project's severities", () => {
    const used = [table.default, ...table.ids.values(), ...[...table.benchmarks.values()].flatMap((ids) => [...ids.values()])]
    expect(used.every((severity) => allSeverities.includes(severity))).toBe(true)
  })
})

describe("parseCisSeverityTable", () => {
  it("rejects an unknown severity with a message naming the entry", () => {
    const result = parseCisSeverityTable("default: medium\nids:\n  \"1.2.1\": severe\n")
    expect(Result.isFailure(result) && result.failure.message).toMatch(/1\.2\.1/)
  })

  it("rejects a table without a default", () => {
    const result = parseCisSeverityTable("ids: {}\n")
    expect(Result.isFailure(result) && result.failure.message).toMatch(/default/)
  })

  it("rejects YAML that does not parse", () => {
    const result = parseCisSeverityTable("default: [medium\n")
    expect(Result.isFailure(result) && result.failure.message).toMatch(/invalid YAML/)
  })
})
