import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
import {
  celFailureReasons,
  commonFailureReasons,
  falcoFailureReasons,
  kubeBenchFailureReasons,
  RunReason,
  runReasons,
  scanCompleted
} from "../../../src/api/RunReason.ts"
import { ComplianceScanRunStatus } from "../../../src/api/ComplianceScanRun.ts"
import { ScanFailed } from "../../../src/backends/Scanner.ts"

const root = join(import.meta.dirname, "..", "..", "..")

/** The codes docs/api.md lists under "Reason codes", by the list item's label. */
const documentedReasons = (): ReadonlyMap<string, ReadonlyArray<string>> => {
  const api = readFileSync(join(root, "docs", "api.md"), "utf8")
  const section = api.split("#### Reason codes")[1]?.split(/\n#{2,4} /u)[0] ?? ""
  return new Map(
    [...section.matchAll(/^- ([a-z -]+): (.+)$/gmu)].map((match) => [
      match[1]!,
      [...match[2]!.matchAll(/`([A-Za-z]+)`/gu)].map((code) => code[1]!).filter((code) => !code.includes("."))
    ])
  )
}

describe("RunReason: one list of status.reason codes", () => {
  it("docs/api.md lists exactly these codes, grouped as in src/api/RunReason.ts", () => {
    const documented = documentedReasons()
    expect([...documented.keys()]).toEqual(["succeeded", "any backend", "kube-bench", "cel", "falco"])
    expect(documented.get("succeeded")).toEqual([scanCompleted])
    expect(documented.get("any backend")).toEqual([...commonFailureReasons])
    expect(documented.get("kube-bench")).toEqual([...kubeBenchFailureReasons])
    expect(documented.get("cel")).toEqual([...celFailureReasons])
    expect(documented.get("falco")).toEqual([...falcoFailureReasons])
    expect([...documented.values()].flat().sort()).toEqual([...runReasons].sort())
    expect(new Set(runReasons).size).toBe(runReasons.length)
  })

  it("the run CRD's status.reason is an enum of exactly these codes", () => {
    const crd = parse(readFileSync(join(root, "crds", "compliancescanruns.security.ugallu.io.yaml"), "utf8"))
    const reason = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties.reason
    expect(reason.enum).toEqual([...runReasons])
  })

  it("the status schema and ScanFailed refuse a code outside the list", () => {
    expect(Schema.is(RunReason)("ScanCompleted")).toBe(true)
    expect(Schema.decodeUnknownExit(ComplianceScanRunStatus)({ reason: "ImagePullFailed" })._tag).toBe("Success")
    expect(Schema.decodeUnknownExit(ComplianceScanRunStatus)({ reason: "SomethingElse" })._tag).toBe("Failure")
    expect(Schema.decodeUnknownExit(ScanFailed)({ _tag: "ScanFailed", reason: "ScanCompleted", message: "x" })._tag).toBe("Failure")
    expect(Schema.decodeUnknownExit(ScanFailed)({ _tag: "ScanFailed", reason: "JobFailed", message: "x" })._tag).toBe("Success")
  })
})
