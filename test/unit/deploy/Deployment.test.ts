import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { envName, operatorFlags } from "../../../src/cli/OperatorFlags.ts"
import { containerEnvironment, findManifest, kustomizeResources, runCli, runFlags } from "./DeployFiles.ts"

const objects = kustomizeResources()
const deployment = findManifest(objects, "Deployment", "compliance-scan")
const podSpec = deployment.spec.template.spec
const container = podSpec.containers[0]
const env = containerEnvironment(deployment, { name: "compliance-scan-7d9f-abcde", namespace: deployment.metadata.namespace! })
const scratch = mkdtempSync(join(tmpdir(), "deploy-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

// The three operator processes start at once: each takes a second or two to boot.
const missingKubeconfig = join(scratch, "no-such-kubeconfig")
const [flags, withDeploymentEnv, withBadLogLevel] = await Promise.all([
  runFlags(),
  // Loopback port 0 instead of :8080/:8081, so that a busy port on this machine cannot stop
  // the operator first; the ports themselves are checked below.
  runCli(["run"], {
    env: { ...env, KUBECONFIG: missingKubeconfig, METRICS_BIND_ADDRESS: "127.0.0.1:0", HEALTH_PROBE_BIND_ADDRESS: "127.0.0.1:0" }
  }),
  runCli(["run"], { env: { ...env, LOG_LEVEL: "verbose", KUBECONFIG: missingKubeconfig } })
])

describe("deploy/ Deployment: the operator's flags", () => {
  it("sets every flag of `run` through its environment variable, and nothing else but the downward API", () => {
    expect(flags.length).toBe(Object.keys(operatorFlags).length)
    for (const { flag, env: variable } of flags) expect(variable).toBe(envName(flag))
    expect(Object.keys(env).sort()).toEqual([...flags.map((flag) => flag.env), "POD_IP", "POD_NAME", "POD_NAMESPACE"].sort())
    expect(container.args).toEqual(["run"])
  })

  it("runs with leader election on, one replica, and the Pod's name and namespace from the downward API", () => {
    expect(deployment.spec.replicas).toBe(1)
    expect(env.LEADER_ELECT).toBe("true")
    const fieldOf = (name: string) => container.env.find((variable: { name: string }) => variable.name === name)?.valueFrom?.fieldRef?.fieldPath
    expect([fieldOf("POD_NAME"), fieldOf("POD_NAMESPACE"), fieldOf("LEADER_ELECTION_NAMESPACE")]).toEqual([
      "metadata.name", "metadata.namespace", "metadata.namespace"
    ])
  })

  it("the operator accepts every value: it gets as far as loading the kubeconfig", () => {
    expect(withDeploymentEnv.status).toBe(1)
    expect(withDeploymentEnv.stderr.trim()).toBe(
      `compliance-scan: kubeconfig ${missingKubeconfig}: ENOENT: no such file or directory, open '${missingKubeconfig}'`
    )
  })

  it("the same check fails on a value the operator rejects (the check can see one)", () => {
    expect(withBadLogLevel.status).toBe(1)
    expect(withBadLogLevel.output).toContain("Invalid value for flag --log-level")
  })
})

describe("deploy/ Deployment: hardening and wiring", () => {
  it("runs non-root on a read-only root filesystem with no capabilities, RuntimeDefault seccomp, and a /tmp emptyDir", () => {
    expect(podSpec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } })
    expect(podSpec.securityContext.runAsUser).toBeGreaterThan(0)
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" }
    })
    const tmp = container.volumeMounts.find((mount: { mountPath: string }) => mount.mountPath === "/tmp")
    expect(podSpec.volumes.find((volume: { name: string }) => volume.name === tmp.name).emptyDir).toBeDefined()
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) })
    expect(container.resources.limits).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) })
  })

  it("probes /healthz and /readyz on the probe address, exposes /metrics on the metrics address", () => {
    const portNamed = (name: string) => container.ports.find((port: { name: string }) => port.name === name).containerPort
    expect(env.HEALTH_PROBE_BIND_ADDRESS).toBe(`:${portNamed("probes")}`)
    expect(env.METRICS_BIND_ADDRESS).toBe(`:${portNamed("metrics")}`)
    expect(portNamed("probes")).toBe(8081)
    expect(portNamed("metrics")).toBe(8080)
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "probes" })
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "probes" })
    const service = findManifest(objects, "Service", "compliance-scan-metrics")
    expect(service.metadata.namespace).toBe(deployment.metadata.namespace)
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector)
    expect(service.spec.ports).toEqual([{ name: "metrics", port: 8080, targetPort: "metrics", protocol: "TCP" }])
  })

  it("mounts the optional Secret falco-client-certs read-only where FALCO_*_FILE point", () => {
    const volume = podSpec.volumes.find((candidate: { secret?: { secretName: string } }) => candidate.secret?.secretName === "falco-client-certs")
    expect(volume.secret.optional).toBe(true)
    const mount = container.volumeMounts.find((candidate: { name: string }) => candidate.name === volume.name)
    expect(mount.readOnly).toBe(true)
    for (const variable of ["FALCO_CERT_FILE", "FALCO_KEY_FILE", "FALCO_CA_ROOT_FILE"]) {
      expect(dirname(env[variable]!), variable).toBe(mount.mountPath)
    }
  })
})
