import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { envName, operatorFlags } from "../../../src/cli/OperatorFlags.ts"
import { chartDir, chartValueOfFlag, deployDir, repoRoot, valueAt } from "./DeployFiles.ts"

const values = parse(readFileSync(join(chartDir, "values.yaml"), "utf8"))
const deploymentTemplate = readFileSync(join(chartDir, "templates", "deployment.yaml"), "utf8")
const schema = JSON.parse(readFileSync(join(chartDir, "values.schema.json"), "utf8"))

/** The template lines that set one environment variable: from its `- name:` to the next. */
const envEntry = (variable: string): string => {
  const start = deploymentTemplate.indexOf(`- name: ${variable}\n`)
  if (start === -1) return ""
  const next = deploymentTemplate.indexOf("- name: ", start + 1)
  return deploymentTemplate.slice(start, next === -1 ? undefined : next)
}

describe("Helm chart values", () => {
  it("has a value for every flag of `run`, and the Deployment sets the flag's variable from it", () => {
    const flagNames = Object.values(operatorFlags).map((flag) => {
      // A flag's name is on the innermost parameter (Single); the wrappers carry `param`.
      let param: any = flag
      while (param.param !== undefined) param = param.param
      return param.name as string
    })
    expect(flagNames.sort()).toEqual(Object.keys(chartValueOfFlag).sort())
    for (const [flag, path] of Object.entries(chartValueOfFlag)) {
      expect(valueAt(values, path), `values.yaml ${path} (--${flag})`).toBeDefined()
      expect(envEntry(envName(flag)), `${envName(flag)} in templates/deployment.yaml`).toContain(`.Values.${path}`)
    }
  })

  it("defaults to what deploy/ installs: the Job namespace, the kube-bench image, the ports, leader election", () => {
    expect(values.jobNamespace).toEqual({ name: "ugallu-system-privileged", create: true })
    expect(values.kubeBench.image).toBe("docker.io/aquasec/kube-bench:v0.15.6")
    expect(values.metrics.bindAddress).toBe(":8080")
    expect(values.healthProbeBindAddress).toBe(":8081")
    expect(values.leaderElection.enabled).toBe(true)
    expect(values.falco.certsSecret).toBe("falco-client-certs")
    expect(values.installSecurityEventCRD).toBe(true)
    expect(values.crds.install).toBe(true)
    expect(values.serviceMonitor.enabled).toBe(false)
    expect(values.admissionPolicy).toEqual({ enabled: true, maxTimeout: "30m" })
  })

  it("values.schema.json describes every top-level value (it rejects unknown ones)", () => {
    expect(schema.additionalProperties).toBe(false)
    expect(Object.keys(values).filter((key) => !(key in schema.properties))).toEqual([])
    expect(schema.properties.logLevel.enum).toEqual(["debug", "info", "warn", "error"])
  })
})

describe("copies of single-source files (npm run sync:deploy)", () => {
  const read = (...path: Array<string>) => readFileSync(join(...path), "utf8")
  const generated = readdirSync(join(repoRoot, "crds")).filter((file) => file.endsWith(".yaml")).sort()

  it("deploy/crds and the chart's files/crds are exactly crds/", () => {
    expect(generated.length).toBeGreaterThanOrEqual(3)
    for (const directory of [join(deployDir, "crds"), join(chartDir, "files", "crds")]) {
      expect(readdirSync(directory).sort(), directory).toEqual(generated)
      for (const file of generated) {
        expect(read(directory, file), `${directory}/${file}: run npm run sync:deploy`).toBe(read(repoRoot, "crds", file))
      }
    }
  })

  it("the chart's monitoring files are exactly deploy/monitoring's", () => {
    for (const file of ["compliance-scan.rules.yaml", "grafana-dashboard.json"]) {
      expect(read(chartDir, "files", "monitoring", file), `${file}: run npm run sync:deploy`).toBe(read(deployDir, "monitoring", file))
    }
  })

  it("deploy/kustomization.yaml lists every CRD", () => {
    const kustomization = parse(read(deployDir, "kustomization.yaml"))
    expect(kustomization.resources.filter((resource: string) => resource.startsWith("crds/")).sort()).toEqual(
      generated.map((file) => `crds/${file}`)
    )
  })
})
