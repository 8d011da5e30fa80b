import { describe, expect, it } from "@effect/vitest"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import {
  kubeBenchArgs,
  pinnedBenchmark,
  kubeBenchJob,
  kubeBenchJobLabels,
  kubeBenchJobName,
  kubeBenchRunSelector,
  labelValue
} from "../../../src/backends/kube-bench/KubeBenchJob.ts"
import { loadBenchmarkRoots, mountsFor } from "../../../src/backends/kube-bench/KubeBenchHostPaths.ts"
import { kubeBenchScript, reportDirectory } from "../../../src/backends/kube-bench/KubeBenchLog.ts"
import { matchesSelector } from "../../../src/services/kube/LabelSelector.ts"

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

const run = (spec: Partial<ComplianceScanRun["spec"]> = {}, name = "cis-control-plane"): ComplianceScanRun => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: "ugallu-system", uid: "6f1c2a52-3b8e-4f0e-9a57-0c7d1e2f3a4b" },
  spec: { backend: "kube-bench", ...spec }
})

const identity = { namespace: "ugallu-system", name: "cis-control-plane", uid: "6f1c2a52-3b8e-4f0e-9a57-0c7d1e2f3a4b" }

describe("kube-bench Job names", () => {
  it("are readable, valid DNS labels, and the same every time (restart recovery relies on it)", () => {
    const name = kubeBenchJobName(identity, "cp-1")
    expect(name).toMatch(/^kb-cis-control-plane-cp-1-[0-9a-f]{10}$/)
    expect(kubeBenchJobName({ ...identity }, "cp-1")).toBe(name)
  })

  it("differ per node, per run uid (a re-created run) and per namespace", () => {
    const names = new Set([
      kubeBenchJobName(identity, "cp-1"),
      kubeBenchJobName(identity, "cp-2"),
      kubeBenchJobName({ ...identity, uid: "another-uid" }, "cp-1"),
      kubeBenchJobName({ ...identity, namespace: "team-a" }, "cp-1")
    ])
    expect(names.size).toBe(4)
  })

  it("stay valid and at most 63 characters for long and odd run and node names", () => {
    const longNode = `ip-10-0-1-23.eu-west-1.compute.internal.${"very-long-segment.".repeat(10)}example.com`
    const cases = [
      kubeBenchJobName({ ...identity, name: "a".repeat(253) }, longNode),
      kubeBenchJobName({ ...identity, name: "Weird_Name.With.Dots" }, "NODE_1"),
      kubeBenchJobName({ ...identity, name: "---" }, "..."),
      // Two long names that differ only at the end still get distinct Jobs.
      kubeBenchJobName(identity, `${"n".repeat(100)}-1`),
      kubeBenchJobName(identity, `${"n".repeat(100)}-2`)
    ]
    for (const name of cases) {
      expect(name.length, name).toBeLessThanOrEqual(63)
      expect(name, name).toMatch(dnsLabel)
    }
    expect(cases[3]).not.toBe(cases[4])
    expect(cases[2]).toMatch(/^kb-[0-9a-f]{10}$/)
  })
})

describe("kube-bench Job labels", () => {
  it("carry the run and node, valid even for values longer than 63 characters", () => {
    const longNode = `node-${"x".repeat(200)}.example.com`
    const labels = kubeBenchJobLabels({ ...identity, name: `run.${"y".repeat(100)}` }, longNode)
    expect(Object.keys(labels).sort()).toEqual([
      "app.kubernetes.io/managed-by",
      "security.ugallu.io/node",
      "security.ugallu.io/run-name",
      "security.ugallu.io/run-namespace",
      "security.ugallu.io/run-uid"
    ])
    expect(labels["app.kubernetes.io/managed-by"]).toBe("compliance-scan")
    for (const value of Object.values(labels)) {
      expect(value.length).toBeLessThanOrEqual(63)
      expect(value).toMatch(labelValuePattern)
    }
    expect(labelValue("cp-1")).toBe("cp-1")
    expect(labelValue(`${"x".repeat(70)}a`)).not.toBe(labelValue(`${"x".repeat(70)}b`))
    expect(labelValue("-bad-")).toMatch(labelValuePattern)
  })

  it("select every Job of the run and no other run's", () => {
    const selector = kubeBenchRunSelector(identity)
    expect(matchesSelector(selector, kubeBenchJobLabels(identity, "cp-1"))).toBe(true)
    expect(matchesSelector(selector, kubeBenchJobLabels({ ...identity, uid: "other" }, "cp-1"))).toBe(false)
  })
})

describe("kube-bench Job manifest", () => {
  const job = kubeBenchJob({
    run: run({ benchmark: "cis-1.10", kubeBench: { targets: ["master", "etcd"] } }),
    nodeName: "cp-1",
    namespace: "ugallu-system-privileged",
    image: "docker.io/aquasec/kube-bench:v0.15.6",
    benchmark: "cis-1.10",
    mounts: mountsFor("cis-1.10", loadBenchmarkRoots()),
    activeDeadlineSeconds: 299.2
  }) as any

  it("is one privileged-namespace Job pinned to its node that never retries", () => {
    expect(job.metadata.name).toBe(kubeBenchJobName(identity, "cp-1"))
    expect(job.metadata.namespace).toBe("ugallu-system-privileged")
    expect(job.metadata.annotations["security.ugallu.io/node"]).toBe("cp-1")
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 300, ttlSecondsAfterFinished: 600 })
    const pod = job.spec.template.spec
    expect(pod).toMatchObject({
      nodeName: "cp-1",
      hostPID: true,
      restartPolicy: "Never",
      tolerations: [{ operator: "Exists" }],
      automountServiceAccountToken: false
    })
    expect(job.spec.template.metadata.labels).toEqual(job.metadata.labels)
  })

  it("runs the configured image with arguments from the spec, passed to kube-bench without a shell", () => {
    const container = job.spec.template.spec.containers[0]
    expect(container.image).toBe("docker.io/aquasec/kube-bench:v0.15.6")
    expect(container.command).toEqual(["/bin/sh", "-c", kubeBenchScript, "kube-bench"])
    expect(container.volumeMounts).toContainEqual({ name: "kube-bench-report", mountPath: reportDirectory })
    expect(job.spec.template.spec.volumes).toContainEqual({ name: "kube-bench-report", emptyDir: { sizeLimit: "64Mi" } })
    expect(container.args).toEqual(["run", "--json", "--benchmark", "cis-1.10", "--targets", "master,etcd"])
    expect(container.resources.limits).toEqual({ cpu: "500m", memory: "512Mi" })
  })

  it("is hardened: RuntimeDefault seccomp, no privilege escalation, read-only root with emptyDirs, DAC_READ_SEARCH only", () => {
    const pod = job.spec.template.spec
    expect(pod.securityContext).toEqual({ seccompProfile: { type: "RuntimeDefault" } })
    expect(pod.containers[0].securityContext).toEqual({
      runAsUser: 0,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: ["DAC_READ_SEARCH"] },
      seccompProfile: { type: "RuntimeDefault" }
    })
    expect(pod.containers[0].securityContext.privileged).toBeUndefined()
    // The only writable places: the report and /tmp, both emptyDirs.
    const writable = pod.containers[0].volumeMounts.filter((mount: { readOnly?: boolean }) => mount.readOnly !== true)
    expect(writable.map((mount: { mountPath: string }) => mount.mountPath)).toEqual([reportDirectory, "/tmp"])
    expect(pod.volumes.filter((volume: { emptyDir?: unknown }) => volume.emptyDir !== undefined).map((volume: { name: string }) => volume.name)).toEqual(["kube-bench-report", "tmp"])
  })

  it("mounts kube-bench's host paths read-only, /usr/bin at /usr/local/mount-from-host/bin", () => {
    const pod = job.spec.template.spec
    const mounts = pod.containers[0].volumeMounts as Array<{ name: string; mountPath: string; readOnly: boolean }>
    expect(mounts.filter((mount) => !mount.readOnly).map((mount) => mount.name)).toEqual(["kube-bench-report", "tmp"])
    const hostPathOf = (mountPath: string) => {
      const mount = mounts.find((entry) => entry.mountPath === mountPath)!
      return pod.volumes.find((volume: { name: string }) => volume.name === mount.name).hostPath.path
    }
    expect(hostPathOf("/usr/local/mount-from-host/bin")).toBe("/usr/bin")
    for (const path of ["/var/lib/etcd", "/var/lib/kubelet", "/etc/kubernetes", "/etc/systemd", "/etc/cni/net.d"]) {
      expect(hostPathOf(path)).toBe(path)
    }
  })

  it("arguments: always an explicit benchmark; profile pins it when benchmark is empty; neither: decided per node", () => {
    expect(pinnedBenchmark(run({ profile: "cis-1.9" }).spec)).toBe("cis-1.9")
    expect(pinnedBenchmark(run({ benchmark: "cis-1.12", profile: "ignored" }).spec)).toBe("cis-1.12")
    expect(pinnedBenchmark(run().spec)).toBeUndefined()
    expect(kubeBenchArgs(run().spec, "eks-1.8.0")).toEqual(["run", "--json", "--benchmark", "eks-1.8.0"])
    // A hostile benchmark value stays one argument: no shell ever sees it.
    expect(kubeBenchArgs(run().spec, "x; rm -rf /")).toContain("x; rm -rf /")
  })
})
