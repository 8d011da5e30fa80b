import { describe, expect, it } from "@effect/vitest"
import { check, checksOf, packs } from "./CelTestKit.ts"
import { samplePods as pods, workloadOf } from "./PodFixtures.ts"

/** workload-hardening: each restricted rule on a workload's pod template gives the verdict it gives on the Pod itself. */

const failing = (checks: ReadonlyArray<{ readonly checkID: string; readonly subjects?: ReadonlyArray<{ readonly name: string; readonly outcome: string }> }>, prefix: string) =>
  Object.fromEntries(checks.map((found) => [found.checkID.replace(prefix, ""), (found.subjects ?? []).map((subject) => `${subject.name} ${subject.outcome}`).sort()]))

describe("the workload-hardening pack", () => {
  const restricted = packs.get("pod-security-restricted")!.rules
  const workload = packs.get("workload-hardening")!.rules

  it("has one rule per restricted rule, on Deployments, StatefulSets and DaemonSets, with the same controls", () => {
    expect(workload.map((rule) => rule.id)).toEqual(restricted.map((rule) => rule.id.replace(/^pss-/u, "workload-")))
    for (const [index, rule] of workload.entries()) {
      expect(rule.match).toMatchObject({ apiGroups: ["apps"], resources: ["deployments", "statefulsets", "daemonsets"] })
      expect(rule.frameworks).toEqual(restricted[index]!.frameworks)
    }
  })

  it.each(["Deployment", "StatefulSet", "DaemonSet"] as const)("gives each %s the verdicts its pod template gets as a Pod", (kind) => {
    const onPods = failing(checksOf(check(restricted, pods)), "pss-")
    const onWorkloads = failing(checksOf(check(workload, pods.map((pod) => workloadOf(kind, pod)))), "workload-")
    expect(onWorkloads).toEqual(onPods)
    // Not vacuous: several controls fail, on several objects.
    expect(Object.values(onPods).flat().length).toBeGreaterThan(8)
  })

  it("names the workload in its messages", () => {
    const [found] = checksOf(check(workload.filter((rule) => rule.id === "workload-baseline-privileged"), [workloadOf("Deployment", pods[1]!)]))
    expect(found!.subjects).toEqual([{ kind: "Deployment", name: "privileged", namespace: "default", outcome: "fail", message: "privileged containers in pod template of Deployment privileged: app" }])
  })
})
