import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { defaultMaxExceptionDuration } from "../../../src/api/ComplianceException.ts"
import { defaultOperatorConfig } from "../../../src/services/OperatorConfig.ts"
import { parseDurationMillis } from "../../../src/api/Duration.ts"
import { chartDir, containerEnvironment, findManifest, kustomizeResources } from "./DeployFiles.ts"

const objects = kustomizeResources()
const policy = findManifest(objects, "ValidatingAdmissionPolicy", "ugallu-compliance-scan-exceptions")
const deployment = findManifest(objects, "Deployment", "compliance-scan")
const env = containerEnvironment(deployment, { name: "compliance-scan-0", namespace: deployment.metadata.namespace! })

describe("the ComplianceException admission policy and the operator agree on the maximum duration", () => {
  it("deploy/: the policy's cap, the Deployment's MAX_EXCEPTION_DURATION and the flag's default are one value (90 days)", () => {
    const cap = (policy.spec.variables as Array<{ name: string; expression: string }>).find((variable) => variable.name === "maxExceptionDuration")!
    expect(cap.expression).toBe(`'${env.MAX_EXCEPTION_DURATION}'`)
    expect(env.MAX_EXCEPTION_DURATION).toBe(defaultMaxExceptionDuration)
    expect(parseDurationMillis(defaultMaxExceptionDuration)).toBe(defaultOperatorConfig.maxExceptionDurationMillis)
    expect(defaultOperatorConfig.maxExceptionDurationMillis).toBe(90 * 86_400_000)
  })

  it("the chart feeds the policy and the flag from the one value exceptions.maxDuration", () => {
    const template = readFileSync(join(chartDir, "templates", "admission-policy.yaml"), "utf8")
    const deploymentTemplate = readFileSync(join(chartDir, "templates", "deployment.yaml"), "utf8")
    expect(template).toContain(`expression: "'{{ .Values.exceptions.maxDuration }}'"`)
    expect(deploymentTemplate).toMatch(/- name: MAX_EXCEPTION_DURATION\n\s+value: \{\{ \.Values\.exceptions\.maxDuration \| quote \}\}/u)
    const values = parse(readFileSync(join(chartDir, "values.yaml"), "utf8")) as { exceptions: { maxDuration: string } }
    expect(values.exceptions.maxDuration).toBe(defaultMaxExceptionDuration)
  })

  it("checks CREATE and UPDATE of complianceexceptions, denying", () => {
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ["security.ugallu.io"], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources: ["complianceexceptions"], scope: "*" }
    ])
    const binding = findManifest(objects, "ValidatingAdmissionPolicyBinding", "ugallu-compliance-scan-exceptions")
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ["Deny"] })
  })
})
