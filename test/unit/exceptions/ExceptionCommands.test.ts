import { NodeServices } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Console, Effect, Result } from "effect"
import { Command } from "effect/cli"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parse as parseYaml, stringify as toYaml } from "yaml"
import { runCelTest } from "../../../src/backends/cel/CelTestCommand.ts"
import { kubeBenchCommand } from "../../../src/backends/kube-bench/KubeBenchCommand.ts"
import { decodeComplianceException } from "../../../src/api/ComplianceException.ts"
import { firstContainer, violating } from "../cel/PodFixtures.ts"
import { deployDir, readManifests, repoRoot } from "../deploy/DeployFiles.ts"

const samples = join(deployDir, "samples", "exceptions")
const cniSample = join(samples, "cni-privileged-daemonset.yaml")
const etcdSample = join(samples, "cis-etcd-alert-only.yaml")

const directory = mkdtempSync(join(tmpdir(), "exceptions-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))
const file = (name: string, text: string) => {
  const path = join(directory, name)
  writeFileSync(path, text)
  return path
}

/** The sample with an expiry a month from the real clock (the commands apply it now). */
const current = (sample: string) => {
  const [manifest] = readManifests(sample)
  const expiresAt = new Date(Date.now() + 30 * 86_400_000).toISOString().replace(/\.\d+Z$/u, "Z")
  return file(`current-${sample.split("/").at(-1)}`, toYaml({ ...manifest, spec: { ...manifest!.spec, expiresAt } }))
}

const inKubeSystem = (name: string, mutate: Parameters<typeof violating>[1]) => {
  const pod = violating(name, mutate) as any
  pod.metadata.namespace = "kube-system"
  return pod
}

describe("the exception samples", () => {
  it.effect("are valid ComplianceExceptions, one of each mode", () =>
    Effect.gen(function*() {
      const modes = []
      for (const sample of [cniSample, etcdSample]) {
        for (const manifest of readManifests(sample)) modes.push((yield* decodeComplianceException(manifest)).spec.mode)
      }
      expect(modes).toEqual(["waive", "alertOnly"])
    }))
})

describe("cel test --exceptions", () => {
  it.live("waives the CNI's privileged Pod as the operator would, and leaves another privileged Pod failing", () =>
    Effect.gen(function*() {
      const pods = file("pods.yaml", [
        inKubeSystem("cilium-x7k2p", (pod) => (firstContainer(pod).securityContext.privileged = true)),
        inKubeSystem("debug-shell", (pod) => (firstContainer(pod).securityContext.privileged = true))
      ].map((pod) => toYaml(pod)).join("---\n"))
      const options = { rulesFile: undefined, objectFiles: [pods], profile: "pod-security-baseline", output: "yaml" as const }
      const without = yield* runCelTest(options)
      const privilegedWithout = without.checks.find((check) => check.checkID === "pss-baseline-privileged")!
      expect(privilegedWithout.subjects!.map((subject) => [subject.name, subject.outcome])).toEqual([["cilium-x7k2p", "fail"], ["debug-shell", "fail"]])

      const withExceptions = yield* runCelTest({ ...options, exceptionsFile: current(cniSample) })
      const privileged = withExceptions.checks.find((check) => check.checkID === "pss-baseline-privileged")!
      expect(privileged.subjects!.map((subject) => [subject.name, subject.outcome, subject.exception?.name])).toEqual([
        ["cilium-x7k2p", "skip", "cni-privileged"],
        ["debug-shell", "fail", undefined]
      ])
      expect(privileged.outcome).toBe("fail")
      expect(withExceptions.summary.excepted).toBe(1)
      const printed = parseYaml(withExceptions.output)
      expect(printed.exceptions).toEqual([expect.objectContaining({ name: "cni-privileged", namespace: "ugallu-system", mode: "waive", matched: 1 })])
    }).pipe(Effect.provide(NodeServices.layer)))

  it.effect("refuses a file that holds no ComplianceException, naming it", () =>
    Effect.gen(function*() {
      const bad = file("bad.yaml", toYaml({ kind: "ComplianceException", metadata: { name: "x" }, spec: { mode: "waive" } }))
      const error = yield* Effect.flip(runCelTest({ rulesFile: undefined, objectFiles: [file("none.yaml", "")], profile: "pod-security-baseline", output: "yaml", exceptionsFile: bad }))
      expect(error.message).toContain(`${bad}: not a ComplianceException`)
    }).pipe(Effect.provide(NodeServices.layer)))
})

describe("kube-bench parse --exceptions", () => {
  it.live("keeps an alert-only CIS check failing, with the exception next to each node", () =>
    Effect.gen(function*() {
      const stdout: Array<string> = []
      const console: Console.Console = { ...globalThis.console, log: (...parts: ReadonlyArray<unknown>) => void stdout.push(parts.join(" ")) }
      const report = join(repoRoot, "test", "fixtures", "kube-bench", "sample-cis-1.10-v0.15.json")
      const exit = yield* Command.runWith(kubeBenchCommand, { version: "test" })(["parse", report, "--node", "cp-1", "--exceptions", current(etcdSample), "-o", "json"]).pipe(
        Effect.provideService(Console.Console, console),
        Effect.result
      )
      expect(Result.isSuccess(exit)).toBe(true)
      const parsed = JSON.parse(stdout.join("\n"))
      const check = parsed.checks.find((entry: { checkID: string }) => entry.checkID === "cis.1.1.12")
      expect(check.outcome).toBe("fail")
      expect(check.subjects).toEqual([expect.objectContaining({ kind: "Node", name: "cp-1", outcome: "fail", exception: expect.objectContaining({ name: "cis-etcd-external", mode: "alertOnly", outcome: "fail" }) })])
      expect(parsed.summary.excepted).toBe(1)
      expect(parsed.exceptions).toEqual([expect.objectContaining({ name: "cis-etcd-external", matched: 1 })])
      // 1.1.1 passed: nothing to except.
      expect(parsed.checks.find((entry: { checkID: string }) => entry.checkID === "cis.1.1.1").subjects?.[0]?.exception).toBeUndefined()
      expect(readFileSync(etcdSample, "utf8")).toContain("alertOnly")
    }).pipe(Effect.provide(NodeServices.layer)))
})
