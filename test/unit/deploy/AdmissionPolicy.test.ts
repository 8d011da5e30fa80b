import { evaluate } from "@marcbachmann/cel-js"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { findManifest, kustomizeResources, repoRoot } from "./DeployFiles.ts"

// The API server's CEL is the real judge (test/cluster/Deploy.test.ts); here the same
// expressions run on cel-js, which has the standard duration() too, to catch mistakes early.
const objects = kustomizeResources()
const policy = findManifest(objects, "ValidatingAdmissionPolicy", "ugallu-compliance-scan-timeout")
const binding = findManifest(objects, "ValidatingAdmissionPolicyBinding", "ugallu-compliance-scan-timeout")
const [validation] = policy.spec.validations

/** The policy's variables, each evaluated as the API server does: lazily, an error only if read. */
const context = (spec: Record<string, unknown>) => {
  const variables: Record<string, unknown> = {}
  for (const variable of policy.spec.variables as ReadonlyArray<{ name: string; expression: string }>) {
    try {
      variables[variable.name] = evaluate(variable.expression, { object: { spec }, variables })
    } catch {
      // Not readable for this object (no spec.timeout): the validation must not read it.
    }
  }
  return { object: { spec }, variables }
}
const admits = (spec: Record<string, unknown>) => evaluate(validation.expression, context(spec)) === true
const denial = (timeout: string) => evaluate(validation.messageExpression, context({ timeout }))

describe("the timeout ValidatingAdmissionPolicy of deploy/", () => {
  it("admits timeouts up to 30m, in any spelling the CRD accepts", () => {
    for (const timeout of ["30s", "5m", "10m", "29m59s", "30m", "1800s", "0.5h"]) expect(admits({ timeout }), timeout).toBe(true)
  })

  it("rejects timeouts above 30m with a message naming the value and the limit", () => {
    for (const timeout of ["31m", "30m1s", "1h", "1800.5s", "2h30m"]) expect(admits({ timeout }), timeout).toBe(false)
    expect(denial("31m")).toBe(
      "spec.timeout 31m is above the maximum of 30m: use a timeout of 30m or less (split a long scan into several runs)"
    )
    expect(validation.message).toBe("spec.timeout is above the maximum this cluster allows")
  })

  it("rejects durations beyond CEL's range (over 290 years) with the same message, not a conversion error", () => {
    for (const timeout of ["9999999999h", "2562048h", "999999999m", "99999999999s", "99999999999ms", "1m9999999999h"]) {
      expect(admits({ timeout }), timeout).toBe(false)
    }
    expect(denial("9999999999h")).toBe(
      "spec.timeout 9999999999h is above the maximum of 30m: use a timeout of 30m or less (split a long scan into several runs)"
    )
    // Long spellings that CEL can hold are still judged by their value.
    for (const timeout of ["1000000ms", "0.25h", "1799999ms"]) expect(admits({ timeout }), timeout).toBe(true)
  })

  it("the cap is one variable: the check and the message read it", () => {
    expect(policy.spec.variables[0]).toEqual({ name: "maxTimeout", expression: "'30m'" })
    expect(JSON.stringify(policy).match(/30m/gu)).toHaveLength(1)
  })

  it("admits a run without a timeout (the CRD defaults it to 10m before admission anyway)", () => {
    expect(admits({ backend: "cel" })).toBe(true)
    const crd = parse(readFileSync(join(repoRoot, "crds", "compliancescanruns.security.ugallu.io.yaml"), "utf8"))
    expect(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.timeout.default).toBe("10m")
  })

  it("applies to every created ComplianceScanRun and denies, failing closed", () => {
    expect(policy.spec.failurePolicy).toBe("Fail")
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ["security.ugallu.io"], apiVersions: ["*"], operations: ["CREATE"], resources: ["compliancescanruns"], scope: "*" }
    ])
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ["Deny"] })
  })
})

describe("the schedule timeout ValidatingAdmissionPolicy of deploy/", () => {
  const schedulePolicy = findManifest(objects, "ValidatingAdmissionPolicy", "ugallu-compliance-scan-schedule-timeout")
  const [check] = schedulePolicy.spec.validations
  const scheduleContext = (runTemplate: Record<string, unknown>, old?: Record<string, unknown>) => {
    const object = { spec: { schedule: "@daily", runTemplate } }
    const oldObject = old === undefined ? null : { spec: { schedule: "@daily", runTemplate: old } }
    const request = { operation: old === undefined ? "CREATE" : "UPDATE" }
    const variables: Record<string, unknown> = {}
    for (const variable of schedulePolicy.spec.variables as ReadonlyArray<{ name: string; expression: string }>) {
      try {
        variables[variable.name] = evaluate(variable.expression, { object, oldObject, request, variables })
      } catch {
        // Not readable for this object: the validation must not read it.
      }
    }
    return { object, oldObject, request, variables }
  }
  const admitsSchedule = (runTemplate: Record<string, unknown>, old?: Record<string, unknown>) =>
    evaluate(check.expression, scheduleContext(runTemplate, old)) === true

  it("applies the runs' cap to spec.runTemplate.timeout on create and on update", () => {
    for (const timeout of ["30s", "30m", "1800s"]) expect(admitsSchedule({ backend: "cel", timeout }), timeout).toBe(true)
    for (const timeout of ["31m", "1h", "9999999999h"]) expect(admitsSchedule({ backend: "cel", timeout }), timeout).toBe(false)
    expect(admitsSchedule({ backend: "cel", timeout: "45m" }, { backend: "cel", timeout: "10m" })).toBe(false)
    expect(evaluate(check.messageExpression, scheduleContext({ backend: "cel", timeout: "31m" }))).toBe(
      "spec.runTemplate.timeout 31m is above the maximum of 30m: use a timeout of 30m or less (split a long scan into several runs)"
    )
  })

  it("lets an update that leaves the template alone through (an older schedule stays editable)", () => {
    expect(admitsSchedule({ backend: "cel", timeout: "45m" }, { backend: "cel", timeout: "45m" })).toBe(true)
  })

  it("has the same cap as the runs' policy, matches schedules on create and update, and denies", () => {
    expect(schedulePolicy.spec.variables[0]).toEqual(policy.spec.variables[0])
    expect(schedulePolicy.spec.failurePolicy).toBe("Fail")
    expect(schedulePolicy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ["security.ugallu.io"], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources: ["compliancescanschedules"], scope: "*" }
    ])
    const scheduleBinding = findManifest(objects, "ValidatingAdmissionPolicyBinding", "ugallu-compliance-scan-schedule-timeout")
    expect(scheduleBinding.spec).toEqual({ policyName: schedulePolicy.metadata.name, validationActions: ["Deny"] })
  })
})
