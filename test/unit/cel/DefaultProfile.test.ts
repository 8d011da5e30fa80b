import { describe, expect, it } from "@effect/vitest"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"
import { check, checksOf, packs } from "./CelTestKit.ts"
import { firstContainer, namespace, restrictedPod, violating } from "./PodFixtures.ts"

/** The earlier implementation's `default` profile: its three check ids, evaluated per object and strictly. */

const defaultRules = packs.get("default")!.rules
const ruleOf = (id: string) => defaultRules.filter((rule) => rule.id === id)

/** Subject name -> outcome of one rule over some objects (passing objects are not subjects). */
const verdicts = (id: string, objects: ReadonlyArray<KubeObject>) => {
  const [found] = checksOf(check(ruleOf(id), objects))
  return { outcome: found!.outcome, counts: found!.subjectCounts, subjects: Object.fromEntries((found!.subjects ?? []).map((subject) => [subject.name, subject.message])) }
}

const networkPolicy = (name: string, namespaceName: string, podSelector: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name, namespace: namespaceName },
  spec: { podSelector, policyTypes: ["Ingress"] }
})

describe("the default profile", () => {
  it("has exactly the three check ids of the earlier implementation", () => {
    expect(defaultRules.map((rule) => [rule.id, rule.severity, rule.match?.resources])).toEqual([
      ["ugallu.cel.pods-run-as-non-root", "high", ["pods"]],
      ["ugallu.cel.read-only-root-fs", "medium", ["pods"]],
      ["ugallu.cel.netpol-present", "medium", ["namespaces"]]
    ])
  })

  describe("ugallu.cel.pods-run-as-non-root", () => {
    const id = "ugallu.cel.pods-run-as-non-root"
    const table: ReadonlyArray<readonly [string, (pod: Record<string, any>) => void, "pass" | string]> = [
      ["pod runAsNonRoot and runAsUser", () => {}, "pass"],
      ["pod runAsNonRoot only", (pod) => delete pod.spec.securityContext.runAsUser, "pass"],
      ["pod non-zero runAsUser only", (pod) => delete pod.spec.securityContext.runAsNonRoot, "pass"],
      ["every container sets a non-zero runAsUser, the pod nothing", (pod) => {
        delete pod.spec.securityContext
        for (const container of [...pod.spec.containers, ...pod.spec.initContainers]) container.securityContext.runAsUser = 1001
      }, "pass"],
      ["nothing set anywhere", (pod) => delete pod.spec.securityContext, "app, sidecar, init"],
      // The earlier implementation passed this pod: one non-root container was enough.
      ["only one container is non-root", (pod) => {
        delete pod.spec.securityContext
        firstContainer(pod).securityContext.runAsNonRoot = true
      }, "sidecar, init"],
      ["a container overrides the pod with runAsNonRoot false", (pod) => {
        delete pod.spec.securityContext.runAsUser
        pod.spec.containers[1].securityContext.runAsNonRoot = false
      }, "sidecar"],
      ["a container overrides the pod with runAsUser 0", (pod) => (firstContainer(pod).securityContext.runAsUser = 0), "app"],
      ["the pod runs as uid 0, runAsNonRoot true notwithstanding", (pod) => (pod.spec.securityContext.runAsUser = 0), "app, sidecar, init"],
      ["an init container runs as root", (pod) => (pod.spec.initContainers[0].securityContext.runAsUser = 0), "init"],
      ["an ephemeral container runs as root", (pod) => {
        pod.spec.ephemeralContainers = [{ name: "debug", image: "busybox", securityContext: { runAsUser: 0 } }]
      }, "debug"]
    ]
    it.each(table)("%s", (_, mutate, expected) => {
      const result = verdicts(id, [violating("p", mutate)])
      if (expected === "pass") {
        expect(result).toMatchObject({ outcome: "pass", counts: { pass: 1, fail: 0 } })
      } else {
        expect(result.outcome).toBe("fail")
        expect(result.subjects).toEqual({ p: `containers that may run as root in pod p: ${expected}` })
      }
    })

    it("gives one subject per failing Pod, with its namespace", () => {
      const [found] = checksOf(check(ruleOf(id), [restrictedPod("ok", "shop"), { ...violating("root", (pod) => delete pod.spec.securityContext), metadata: { name: "root", namespace: "shop" } }]))
      expect(found!.subjects).toEqual([{ kind: "Pod", name: "root", namespace: "shop", outcome: "fail", message: "containers that may run as root in pod root: app, sidecar, init" }])
      expect(found!.subjectCounts).toMatchObject({ pass: 1, fail: 1, error: 0 })
    })
  })

  describe("ugallu.cel.read-only-root-fs", () => {
    const id = "ugallu.cel.read-only-root-fs"
    const table: ReadonlyArray<readonly [string, (pod: Record<string, any>) => void, "pass" | string]> = [
      ["every container read-only", () => {}, "pass"],
      ["a container sets false", (pod) => (firstContainer(pod).securityContext.readOnlyRootFilesystem = false), "app"],
      ["a container leaves it unset", (pod) => delete pod.spec.containers[1].securityContext.readOnlyRootFilesystem, "sidecar"],
      ["a container without a securityContext", (pod) => delete firstContainer(pod).securityContext, "app"],
      ["an init container writable", (pod) => delete pod.spec.initContainers[0].securityContext.readOnlyRootFilesystem, "init"],
      ["an ephemeral container writable", (pod) => (pod.spec.ephemeralContainers = [{ name: "debug", image: "busybox" }]), "debug"]
    ]
    it.each(table)("%s", (_, mutate, expected) => {
      const result = verdicts(id, [violating("p", mutate)])
      if (expected === "pass") expect(result).toMatchObject({ outcome: "pass", counts: { pass: 1 } })
      else expect(result.subjects).toEqual({ p: `containers with a writable root filesystem in pod p: ${expected}` })
    })
  })

  describe("ugallu.cel.netpol-present", () => {
    const id = "ugallu.cel.netpol-present"
    it("fails, per Namespace, the namespaces without a NetworkPolicy; any podSelector counts, the empty one too", () => {
      const objects = [
        namespace("open"),
        namespace("deny-all"),
        namespace("web-only"),
        namespace("elsewhere"),
        networkPolicy("default-deny", "deny-all"),
        networkPolicy("web", "web-only", { matchLabels: { app: "web" } }),
        // A policy of another namespace does not count for this one.
        networkPolicy("stray", "open-not", {}),
        restrictedPod("web", "open")
      ]
      const [found] = checksOf(check(ruleOf(id), objects))
      expect(found).toMatchObject({ outcome: "fail", severity: "medium", subjectCounts: { pass: 2, fail: 2, error: 0 } })
      expect(found!.subjects).toEqual([
        { kind: "Namespace", name: "open", outcome: "fail", message: "namespace open has no NetworkPolicy" },
        { kind: "Namespace", name: "elsewhere", outcome: "fail", message: "namespace elsewhere has no NetworkPolicy" }
      ])
    })

    it("passes when every namespace has one", () => {
      const [found] = checksOf(check(ruleOf(id), [namespace("a"), networkPolicy("p", "a")]))
      expect(found).toMatchObject({ outcome: "pass", detail: "1 checked: 1 pass, 0 fail, 0 error" })
    })
  })
})
