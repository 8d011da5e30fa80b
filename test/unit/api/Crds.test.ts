import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
import { ComplianceScanRun, decodeComplianceScanRun, withDefaults } from "../../../src/api/ComplianceScanRun.ts"
import { renderCrdFiles } from "../../../src/api/CrdFiles.ts"

const root = join(import.meta.dirname, "..", "..", "..")
const manifest = (file: string) => parse(readFileSync(join(root, "test/fixtures/manifests", file), "utf8"))

describe("CRDs generated from the Schemas", () => {
  it("crds/ matches the Schemas (run `npm run generate:crds` after changing src/api)", () => {
    for (const [file, text] of renderCrdFiles()) {
      expect(readFileSync(join(root, "crds", file), "utf8"), `crds/${file} is stale`).toBe(text)
    }
  })

  it("the run CRD carries the contract: short names, categories, status, immutability, defaults, duration format", () => {
    const crd = parse(renderCrdFiles().get("compliancescanruns.security.ugallu.io.yaml")!)
    expect(crd.spec.names.shortNames).toEqual(["csrun", "csscan"])
    expect(crd.spec.names.categories).toEqual(["ugallu", "compliance"])
    const version = crd.spec.versions[0]
    expect(version.subresources).toEqual({ status: {} })
    expect(version.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual([
      "Backend", "Profile", "Phase", "Worst", "Reason", "Age"
    ])
    const spec = version.schema.openAPIV3Schema.properties.spec
    expect(spec["x-kubernetes-validations"]).toEqual([{ rule: "self == oldSelf", message: "spec is immutable" }])
    expect(spec.required).toEqual(["backend"])
    expect(spec.properties.alertOn.default).toBe("high")
    expect(spec.properties.timeout.default).toBe("10m")
    const pattern = new RegExp(spec.properties.timeout.pattern)
    expect(["30s", "5m", "1h", "1h30m"].every((d) => pattern.test(d))).toBe(true)
    expect(["5 minutes", "", "10"].some((d) => pattern.test(d))).toBe(false)
  })

  it("the schedule CRD: printer columns, defaults, an editable runTemplate with the run's validations", () => {
    const crd = parse(renderCrdFiles().get("compliancescanschedules.security.ugallu.io.yaml")!)
    expect(crd.spec.scope).toBe("Namespaced")
    expect(crd.spec.names.shortNames).toEqual(["cssched"])
    const version = crd.spec.versions[0]
    expect(version.subresources).toEqual({ status: {} })
    expect(version.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual([
      "Schedule", "Suspend", "Last run", "Last phase", "Worst", "Next", "Age"
    ])
    const spec = version.schema.openAPIV3Schema.properties.spec
    expect(spec.required).toEqual(["schedule", "runTemplate"])
    expect(spec.properties.concurrencyPolicy).toMatchObject({ enum: ["Forbid", "Replace", "Allow"], default: "Forbid" })
    expect(spec.properties.successfulRunsHistoryLimit.default).toBe(3)
    expect(spec.properties.failedRunsHistoryLimit.default).toBe(1)
    const schedule = new RegExp(spec.properties.schedule.pattern)
    expect(["* * * * *", "30 2 * * MON-FRI", "@hourly", "@daily", "@weekly"].every((text) => schedule.test(text))).toBe(true)
    expect(["* * * *", "@every 5m", "daily"].some((text) => schedule.test(text))).toBe(false)
    const template = spec.properties.runTemplate
    const runSpec = parse(renderCrdFiles().get("compliancescanruns.security.ugallu.io.yaml")!).spec.versions[0].schema.openAPIV3Schema.properties.spec
    expect(template["x-kubernetes-validations"]).toBeUndefined()
    expect(template.properties).toEqual(runSpec.properties)
    expect(template.required).toEqual(runSpec.required)
  })

  it("SecurityEvent is cluster scoped with short name se; Result has short name csres", () => {
    const files = renderCrdFiles()
    const event = parse(files.get("securityevents.security.ugallu.io.yaml")!)
    expect(event.spec.scope).toBe("Cluster")
    expect(event.spec.names.shortNames).toEqual(["se"])
    expect(parse(files.get("compliancescanresults.security.ugallu.io.yaml")!).spec.names.shortNames).toEqual(["csres"])
  })
})

describe("ComplianceScanRun schema", () => {
  it.effect("decodes the reference example of the contract", () =>
    Effect.gen(function*() {
      const run = yield* decodeComplianceScanRun(manifest("reference-example.yaml"))
      expect(run.spec.backend).toBe("kube-bench")
      expect(run.spec.targetNodeSelector).toEqual({ "kubernetes.io/role": "master" })
      expect(withDefaults(run.spec).timeout).toBe("5m")
    }))

  it.effect("accepts manifests of the earlier Go implementation (profile, cel-custom) and fills defaults", () =>
    Effect.gen(function*() {
      const run = yield* decodeComplianceScanRun(manifest("legacy-cel-custom.yaml"))
      expect(run.spec.profile).toBe("pod-security-baseline")
      expect(withDefaults(run.spec)).toMatchObject({ backend: "cel-custom", alertOn: "medium", timeout: "10m" })
    }))

  it("rejects an unknown backend, a bad severity and a malformed timeout with readable messages", () => {
    const decode = Schema.decodeUnknownExit(ComplianceScanRun)
    const base = manifest("reference-example.yaml")
    for (const [field, value] of [["backend", "trivy"], ["alertOn", "severe"], ["timeout", "5 minutes"]] as const) {
      const exit = decode({ ...base, spec: { ...base.spec, [field]: value } })
      expect(exit._tag, field).toBe("Failure")
      expect(String(exit), field).toContain(field)
    }
  })
})
