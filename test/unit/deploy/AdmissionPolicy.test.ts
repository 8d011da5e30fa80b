import { evaluate } from "@marcbachmann/cel-js"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { findManifest, kustomizeResources, repoRoot } from "./DeployFiles.ts"

// The API server's CEL is the real judge (test/cluster/Deploy.test.ts); here the same
// expressions run on cel-js, which has the standard duration() too, to catch mistakes early.
const objects = kustomizeResources()
const policy = findManifest(objects, "ValidatingAdmissionPolicy")
const binding = findManifest(objects, "ValidatingAdmissionPolicyBinding")
const [validation] = policy.spec.validations

const admits = (spec: Record<string, unknown>) => evaluate(validation.expression, { object: { spec } }) === true
const denial = (timeout: string) => evaluate(validation.messageExpression, { object: { spec: { timeout } } })

describe("the timeout ValidatingAdmissionPolicy of deploy/", () => {
  it("admits timeouts up to 30m, in any spelling the CRD accepts", () => {
    for (const timeout of ["30s", "5m", "10m", "29m59s", "30m", "1800s", "0.5h"]) expect(admits({ timeout }), timeout).toBe(true)
  })

  it("rejects timeouts above 30m with a message naming the value and the limit", () => {
    for (const timeout of ["31m", "30m1s", "1h", "1800.5s", "2h30m"]) expect(admits({ timeout }), timeout).toBe(false)
    expect(denial("31m")).toBe(
      "spec.timeout 31m is above the maximum of 30m: use a timeout of 30m or less (split a long scan into several runs)"
    )
    expect(validation.message).toBe("spec.timeout must be at most 30m")
  })

  it("admits a run without a timeout (the CRD defaults it to 10m before admission anyway)", () => {
    expect(admits({ backend: "cel" })).toBe(true)
    const crd = parse(readFileSync(join(repoRoot, "crds", "compliancescanruns.security.ugallu.io.yaml"), "utf8"))
    expect(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.timeout.default).toBe("10m")
  })

  it("applies to every created ComplianceScanRun and denies, failing closed", () => {
    expect(policy.spec.failurePolicy).toBe("Fail")
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ["security.ugallu.io"], apiVersions: ["*"], operations: ["CREATE"], resources: ["compliancescanruns"] }
    ])
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ["Deny"] })
  })
})
