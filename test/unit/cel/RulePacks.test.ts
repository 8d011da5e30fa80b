import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { defaultPacksDirectory, loadRulePacks } from "../../../src/backends/cel/RulePacks.ts"
import { check, checksOf, engine, packRule, packs } from "./CelTestKit.ts"
import { firstContainer, restrictedPod, violating } from "./PodFixtures.ts"

/** For each Pod Security control: pods that must fail it (the compliant pod passes every rule). */
const violations: Record<string, ReadonlyArray<ReturnType<typeof violating>>> = {
  "pss-baseline-host-process": [
    violating("pod-level", (pod) => (pod.spec.securityContext.windowsOptions = { hostProcess: true })),
    violating("container-level", (pod) => (firstContainer(pod).securityContext.windowsOptions = { hostProcess: true }))
  ],
  "pss-baseline-host-network": [violating("host-network", (pod) => (pod.spec.hostNetwork = true))],
  "pss-baseline-host-pid": [violating("host-pid", (pod) => (pod.spec.hostPID = true))],
  "pss-baseline-host-ipc": [violating("host-ipc", (pod) => (pod.spec.hostIPC = true))],
  "pss-baseline-privileged": [
    violating("privileged-app", (pod) => (firstContainer(pod).securityContext.privileged = true)),
    violating("privileged-init", (pod) => (pod.spec.initContainers[0].securityContext.privileged = true)),
    violating("privileged-debug", (pod) => (pod.spec.ephemeralContainers = [{ name: "debug", image: "busybox", securityContext: { privileged: true } }]))
  ],
  "pss-baseline-capabilities": [
    violating("sys-admin", (pod) => (firstContainer(pod).securityContext.capabilities.add = ["SYS_ADMIN"])),
    violating("net-raw-init", (pod) => (pod.spec.initContainers[0].securityContext.capabilities.add = ["CHOWN", "NET_RAW"]))
  ],
  "pss-baseline-host-path-volumes": [violating("host-path", (pod) => pod.spec.volumes.push({ name: "docker", hostPath: { path: "/var/run/docker.sock" } }))],
  "pss-baseline-host-ports": [violating("host-port", (pod) => (firstContainer(pod).ports[0].hostPort = 8080))],
  "pss-baseline-apparmor": [
    violating("apparmor-annotation", (pod) => (pod.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" })),
    violating("apparmor-pod-field", (pod) => (pod.spec.securityContext.appArmorProfile = { type: "Unconfined" })),
    violating("apparmor-container-field", (pod) => (firstContainer(pod).securityContext.appArmorProfile = { type: "Unconfined" }))
  ],
  "pss-baseline-selinux": [
    violating("selinux-type", (pod) => (firstContainer(pod).securityContext.seLinuxOptions = { type: "spc_t" })),
    violating("selinux-user", (pod) => (pod.spec.securityContext.seLinuxOptions = { user: "system_u" })),
    violating("selinux-role", (pod) => (firstContainer(pod).securityContext.seLinuxOptions = { role: "sysadm_r" }))
  ],
  "pss-baseline-proc-mount": [violating("unmasked-proc", (pod) => (firstContainer(pod).securityContext.procMount = "Unmasked"))],
  "pss-baseline-seccomp": [
    violating("seccomp-pod-unconfined", (pod) => (pod.spec.securityContext.seccompProfile = { type: "Unconfined" })),
    violating("seccomp-container-unconfined", (pod) => (firstContainer(pod).securityContext.seccompProfile = { type: "Unconfined" }))
  ],
  "pss-baseline-sysctls": [violating("unsafe-sysctl", (pod) => (pod.spec.securityContext.sysctls = [{ name: "net.ipv4.tcp_syncookies", value: "1" }, { name: "kernel.msgmax", value: "65536" }]))],
  "pss-restricted-volume-types": [violating("nfs-volume", (pod) => pod.spec.volumes.push({ name: "share", nfs: { server: "nfs.example.com", path: "/export" } }))],
  "pss-restricted-privilege-escalation": [
    violating("escalation-allowed", (pod) => (firstContainer(pod).securityContext.allowPrivilegeEscalation = true)),
    violating("escalation-unset", (pod) => delete pod.spec.initContainers[0].securityContext.allowPrivilegeEscalation)
  ],
  "pss-restricted-run-as-non-root": [
    violating("container-root", (pod) => (firstContainer(pod).securityContext.runAsNonRoot = false)),
    violating("unset", (pod) => delete pod.spec.securityContext.runAsNonRoot)
  ],
  "pss-restricted-run-as-user": [
    violating("pod-uid-0", (pod) => (pod.spec.securityContext.runAsUser = 0)),
    violating("container-uid-0", (pod) => (firstContainer(pod).securityContext.runAsUser = 0))
  ],
  "pss-restricted-seccomp": [
    violating("no-profile", (pod) => delete pod.spec.securityContext.seccompProfile),
    violating("container-unconfined", (pod) => (firstContainer(pod).securityContext.seccompProfile = { type: "Unconfined" }))
  ],
  "pss-restricted-capabilities": [
    violating("no-drop", (pod) => delete firstContainer(pod).securityContext.capabilities),
    violating("adds-chown", (pod) => (firstContainer(pod).securityContext.capabilities.add = ["CHOWN"]))
  ]
}

describe("built-in Pod Security packs", () => {
  it("ship the baseline controls and, in restricted, baseline plus the restricted controls", () => {
    const baseline = packs.get("pod-security-baseline")!.rules.map((rule) => rule.id)
    const restricted = packs.get("pod-security-restricted")!.rules.map((rule) => rule.id)
    expect(baseline).toHaveLength(13)
    expect(restricted.slice(0, baseline.length)).toEqual(baseline)
    expect(restricted).toHaveLength(19)
    expect(new Set(Object.keys(violations))).toEqual(new Set(restricted))
  })

  it("map every rule to a CIS 5.x recommendation and give it a severity and remediation", () => {
    for (const rule of packs.get("pod-security-restricted")!.rules) {
      expect(rule.frameworks?.length, rule.id).toBeGreaterThan(0)
      for (const framework of rule.frameworks ?? []) {
        expect(framework.name).toBe("cis")
        expect(framework.controlID, rule.id).toMatch(/^5\.\d+\.\d+$/)
      }
      expect(rule.remediation, rule.id).toBeTruthy()
      expect(["low", "medium", "high", "critical"]).toContain(rule.severity)
    }
  })

  it("pass a fully compliant pod on every rule", () => {
    const checks = checksOf(check(packs.get("pod-security-restricted")!.rules, [restrictedPod()]))
    expect(checks.filter((found) => found.outcome !== "pass").map((found) => `${found.checkID}: ${found.subjects?.[0]?.message}`)).toEqual([])
  })

  for (const [id, pods] of Object.entries(violations)) {
    it(`${id}: fails each violating pod and passes the compliant one`, () => {
      const [found] = checksOf(check([packRule(id)], [restrictedPod(), ...pods]))
      expect(found!.checkID).toBe(id)
      expect(found!.outcome).toBe("fail")
      expect(found!.subjectCounts).toEqual({ pass: 1, fail: pods.length, warn: 0, skip: 0, error: 0 })
      expect(found!.subjects!.map((subject) => subject.name)).toEqual(pods.map((pod) => pod.metadata.name))
      for (const subject of found!.subjects!) {
        expect(subject.outcome).toBe("fail")
        // The messageExpression names the pod, not the default "failed expression" text.
        expect(subject.message).toContain(subject.name)
      }
    })
  }

  it("name the offending containers in the messages", () => {
    const pod = violating("mixed", (pod) => (pod.spec.initContainers[0].securityContext.privileged = true))
    const [found] = checksOf(check([packRule("pss-baseline-privileged")], [pod]))
    expect(found!.subjects![0]!.message).toBe("privileged containers in pod mixed: init")
  })

  it("exempt Windows pods from the Linux-only restricted controls", () => {
    const windows = violating("windows", (pod) => {
      pod.spec.os = { name: "windows" }
      delete pod.spec.securityContext.seccompProfile
      for (const container of [...pod.spec.containers, ...pod.spec.initContainers]) delete container.securityContext
    })
    const ids = ["pss-restricted-privilege-escalation", "pss-restricted-seccomp", "pss-restricted-capabilities"]
    const checks = checksOf(check(ids.map(packRule), [windows]))
    expect(checks.map((found) => found.outcome)).toEqual(["pass", "pass", "pass"])
  })
})

describe("loading packs", () => {
  const withPacks = (files: Record<string, string>, run: (directory: string) => void) => {
    const directory = mkdtempSync(join(tmpdir(), "cel-packs-"))
    try {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(directory, name), text)
      run(directory)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }
  const load = (directory: string) =>
    Effect.runSync(Effect.flip(loadRulePacks(directory, (expression, resultType) => engine.compile(expression, resultType))))

  const baseline = readFileSync(join(defaultPacksDirectory, "pod-security-baseline.yaml"), "utf8")

  it("rejects a pack whose rule does not compile, naming the pack, rule and position", () => {
    withPacks({ "broken.yaml": "name: broken\nrules:\n  - id: bad\n    severity: high\n    expression: \"object.spec.(\"\n" }, (directory) => {
      const error = load(directory)
      expect(error.pack).toBe("broken")
      expect(error.message).toMatch(/rule "bad": expression does not compile at line 1, column \d+/)
    })
  })

  it("rejects invalid YAML, a wrong shape, a name that is not the file's, unknown includes and duplicate ids", () => {
    withPacks({ "a.yaml": "name: a\nrules: [ {" }, (directory) => expect(load(directory).message).toMatch(/not valid YAML/))
    withPacks({ "a.yaml": "name: a\nrules:\n  - id: x\n    severity: urgent\n    expression: 'true'\n" }, (directory) =>
      expect(load(directory).message).toMatch(/is not a rule pack/))
    withPacks({ "a.yaml": "name: b\nrules: []\n" }, (directory) => expect(load(directory).message).toMatch(/declares name "b"/))
    withPacks({ "a.yaml": "name: a\ninclude: [missing]\nrules: []\n" }, (directory) => expect(load(directory).message).toMatch(/unknown pack "missing"/))
    withPacks({ "pod-security-baseline.yaml": baseline, "a.yaml": `name: a\ninclude: [pod-security-baseline]\nrules:\n  - id: pss-baseline-host-pid\n    severity: low\n    expression: 'true'\n` }, (directory) =>
      expect(load(directory).message).toMatch(/"pss-baseline-host-pid" appears twice/))
  })
})
