import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace, type OperatorIdentity, prepareCluster } from "./harness/ClusterSetup.ts"
import { eventually } from "./harness/Eventually.ts"
import { type Json, KubeApiError, type KubeHttp } from "./harness/KubeHttp.ts"
import type { OperatorProcess } from "./harness/OperatorProcess.ts"
import { apiVersions, resourcePath } from "./harness/ResourcePaths.ts"
import { podsPath, resultPath, runManifest, runPath, waitForRun } from "./harness/Scans.ts"
import { startTestOperator, withOperatorLogs } from "./harness/TestOperator.ts"

/**
 * ComplianceExceptions on the real API server: the CRD and the admission policy of deploy/
 * refuse unjustified or over-long exceptions; a CEL run (the operator as a real process
 * with deploy/'s RBAC) waives exactly the matched subjects, honours namespace scoping, and
 * an exception expiring between two runs of a series changes the second Result and emits
 * its events once.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let identity: OperatorIdentity
/** The operator's namespace (its exceptions are cluster-wide) and where the runs are. */
let home: string
/** Another namespace: its exceptions cover only its own subjects. */
let team: string
let operator: OperatorProcess | undefined

const day = 86_400_000
const rfc3339 = (millis: number) => new Date(millis).toISOString().replace(/\.\d+Z$/u, "Z")
const exceptionPath = (namespace: string, name?: string) => resourcePath(apiVersions.ComplianceException, "ComplianceException", namespace, name)

const exception = (namespace: string, name: string, spec: Json): Json => ({
  apiVersion: apiVersions.ComplianceException,
  kind: "ComplianceException",
  metadata: { name, namespace },
  spec: {
    justification: "The CNI must configure the host network.",
    approvedBy: "security-team@example.com",
    expiresAt: rfc3339(Date.now() + 30 * day),
    ...spec
  }
})

const pod = (name: string, spec: Json = {}, container: Json = {}): Json => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels: { app: name } },
  spec: { containers: [{ name: "app", image: `registry.example.com/${name}:1`, ...container }], ...spec }
})

const rejection = async (attempt: Promise<unknown>): Promise<KubeApiError> => {
  const error = await attempt.then(() => undefined, (caught: unknown) => caught)
  if (!(error instanceof KubeApiError)) throw new Error(`expected the API server to reject it, got ${String(error)}`)
  return error
}

beforeAll(async () => {
  admin = connectAdmin(cluster)
  identity = await prepareCluster(cluster, admin)
  home = await createNamespace(admin, "exceptions")
  team = await createNamespace(admin, "exceptions-team")
  for (const object of [
    pod("cni-agent", {}, { securityContext: { privileged: true } }),
    pod("debug-shell", {}, { securityContext: { privileged: true } }),
    pod("metrics-agent", { hostNetwork: true }),
    pod("node-exporter", { hostPID: true })
  ]) await admin.create(podsPath(home), object)
  await admin.create(podsPath(team), pod("team-privileged", {}, { securityContext: { privileged: true } }))
  await eventually(
    async () => {
      const pods = [...await admin.list(podsPath(home)), ...await admin.list(podsPath(team))]
      return pods.length === 5 && pods.every((entry) => entry.status?.phase === "Running") ? pods : undefined
    },
    { what: "the test Pods to be Running", timeoutMillis: 60_000 }
  )
})

afterAll(async () => {
  await operator?.stop()
  for (const namespace of [home, team]) if (namespace !== undefined) await deleteNamespace(admin, namespace)
  admin.close()
})

describe("ComplianceException admission (CRD schema and deploy/'s ValidatingAdmissionPolicy)", () => {
  it("rejects an exception without justification, with a blank one, or expiring beyond 90 days; accepts 89 days", async () => {
    expect(identity.policySource).toBe("deploy/")
    const { justification: _, ...withoutJustification } = exception(home, "x", {}).spec
    const missing = await rejection(admin.create(exceptionPath(home), { ...exception(home, "missing", {}), spec: { ...withoutJustification, match: { checks: ["a"] } } }))
    expect(missing.status).toBe(422)
    expect(missing.message).toContain("justification")

    // The policy takes a moment to load: wait for its first denial.
    const blank = await eventually(async () => {
      const error = await admin.create(exceptionPath(home), exception(home, "blank", { match: { checks: ["a"] }, justification: "   " })).then(
        async () => {
          await admin.remove(exceptionPath(home, "blank"))
          return undefined
        },
        (caught: unknown) => caught
      )
      return error instanceof KubeApiError ? error : undefined
    }, { what: "the exceptions admission policy to reject a blank justification", timeoutMillis: 30_000, intervalMillis: 500 })
    expect(blank.status).toBe(422)
    expect(blank.message).toContain("ValidatingAdmissionPolicy 'ugallu-compliance-scan-exceptions'")
    expect(blank.message).toContain("spec.justification is required and must not be blank")

    const tooLong = await rejection(admin.create(exceptionPath(home), exception(home, "too-long", { match: { checks: ["a"] }, expiresAt: rfc3339(Date.now() + 91 * day) })))
    expect(tooLong.status).toBe(422)
    expect(tooLong.message).toContain("spec.expiresAt must be at most 2160h after the exception's creation")

    const blankApprover = await rejection(admin.create(exceptionPath(home), exception(home, "no-approver", { match: { checks: ["a"] }, approvedBy: " " })))
    expect(blankApprover.message).toContain("spec.approvedBy is required")

    const accepted = await admin.create(exceptionPath(home), exception(home, "eighty-nine-days", { match: { checks: ["a"] }, expiresAt: rfc3339(Date.now() + 89 * day) }))
    expect(accepted.spec.mode).toBe("waive")
    // An update cannot push the expiry past creation + 90 days either.
    const extended = await rejection(admin.mergePatch(exceptionPath(home, "eighty-nine-days"), { spec: { expiresAt: rfc3339(Date.now() + 120 * day) } }))
    expect(extended.status).toBe(422)
    await admin.remove(exceptionPath(home, "eighty-nine-days"))
  })
})

const checkOf = (result: Json, checkID: string): Json => {
  const check = result.spec.checks.find((entry: Json) => entry.checkID === checkID)
  if (check === undefined) throw new Error(`no check ${checkID} in the Result`)
  return check
}

/** The check's subjects in the test's namespaces: namespace/name -> [outcome, exception name or "-"]. */
const subjectsOf = (check: Json): Record<string, [string, string]> =>
  Object.fromEntries(
    ((check.subjects ?? []) as Array<Json>)
      .filter((subject) => subject.namespace === home || subject.namespace === team)
      .map((subject) => [`${subject.namespace === home ? "home" : "team"}/${subject.name}`, [subject.outcome, subject.exception?.name ?? "-"]])
  )

/** Whether the API server's authorizer lets `user` (or the ServiceAccount) do it. */
const mayDo = async (user: { user: string; groups: Array<string> }, access: Json): Promise<boolean> => {
  const review = await admin.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: { ...user, resourceAttributes: { group: "security.ugallu.io", resource: "complianceexceptions", ...access } }
  })
  return review.status.allowed === true
}

describe("who may waive (deploy/exception-approver.yaml)", () => {
  it("an approver bound in a namespace may create exceptions there only; the operator may only read them and write their status", async () => {
    const alice = { user: "alice@example.com", groups: ["system:authenticated"] }
    expect(await mayDo(alice, { verb: "create", namespace: team })).toBe(false)
    await admin.create(resourcePath("rbac.authorization.k8s.io/v1", "RoleBinding", team), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "exception-approvers", namespace: team },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "compliance-scan-exception-approver" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: alice.user }]
    })
    await eventually(async () => ((await mayDo(alice, { verb: "create", namespace: team })) ? true : undefined), {
      what: "the approver binding to take effect",
      timeoutMillis: 10_000
    })
    for (const verb of ["update", "delete", "get"]) expect(await mayDo(alice, { verb, namespace: team }), verb).toBe(true)
    expect(await mayDo(alice, { verb: "create", namespace: home })).toBe(false)

    const { namespace, name } = identity.serviceAccount
    const operatorUser = { user: `system:serviceaccount:${namespace}:${name}`, groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"] }
    expect(await mayDo(operatorUser, { verb: "list" })).toBe(true)
    expect(await mayDo(operatorUser, { verb: "watch" })).toBe(true)
    expect(await mayDo(operatorUser, { verb: "patch", subresource: "status", namespace: team })).toBe(true)
    for (const verb of ["create", "update", "patch", "delete"]) expect(await mayDo(operatorUser, { verb, namespace: team }), verb).toBe(false)
  })
})

describe("a CEL run with exceptions", () => {
  it("waives exactly the matched subjects, keeps alert-only ones failing, scopes namespaced exceptions, and expires between two runs", async () => {
    operator = await startTestOperator(cluster, identity, { name: "exceptions-operator", namespace: home })
    await withOperatorLogs([operator], async () => {
      // Cluster-wide (the operator's namespace): the CNI's privileged Pod, wherever it runs.
      const cni = await admin.create(exceptionPath(home), exception(home, "cni-privileged", {
        match: { checks: ["pss-baseline-privileged"], backends: ["cel"], subjects: { names: ["cni-*"] } }
      }))
      // Alert-only: the finding stays `fail`, without counting toward alerts.
      const exporter = await admin.create(exceptionPath(home), exception(home, "node-exporter-pid", {
        mode: "alertOnly",
        // By label: the operator looks the Pods' labels up (subjects carry none).
        match: { checks: ["pss-baseline-host-*"], subjects: { labelSelector: { matchLabels: { app: "node-exporter" } } } },
        justification: "node-exporter reads host processes."
      }))
      // Expires between the two runs below.
      const expiresAt = Date.now() + 40_000
      const shortLived = await admin.create(exceptionPath(home), exception(home, "metrics-host-network", {
        match: { checks: ["pss-baseline-host-network"], subjects: { names: ["metrics-agent"] } },
        expiresAt: rfc3339(expiresAt)
      }))
      // Namespaced: covers the team's own Pod, never the home namespace's debug-shell.
      const teamException = await admin.create(exceptionPath(team), exception(team, "team-waiver", {
        match: { checks: ["pss-baseline-privileged"], subjects: { names: ["team-*", "debug-shell"] } }
      }))

      await admin.create(runPath(home), { ...runManifest(home, "first", { backend: "cel", profile: "pod-security-baseline" }), metadata: { name: "first", namespace: home, labels: { "security.ugallu.io/baseline": "nightly" } } })
      const first = await waitForRun(admin, home, "first", { timeoutMillis: 60_000 })
      expect(first.status.phase).toBe("Succeeded")
      expect(Date.now()).toBeLessThan(expiresAt)
      const result = await admin.get(resultPath(home, "first"))

      const privileged = checkOf(result, "pss-baseline-privileged")
      expect(subjectsOf(privileged)).toEqual({
        "home/cni-agent": ["skip", "cni-privileged"],
        "home/debug-shell": ["fail", "-"],
        "team/team-privileged": ["skip", "team-waiver"]
      })
      // debug-shell still fails: the check does, with its severity.
      expect(privileged).toMatchObject({ outcome: "fail", severity: "critical" })
      const waived = privileged.subjects.find((subject: Json) => subject.name === "cni-agent")
      expect(waived.exception).toEqual({ name: "cni-privileged", namespace: home, mode: "waive", expiresAt: cni.spec.expiresAt, outcome: "fail" })

      expect(subjectsOf(checkOf(result, "pss-baseline-host-pid"))).toEqual({ "home/node-exporter": ["fail", "node-exporter-pid"] })
      expect(subjectsOf(checkOf(result, "pss-baseline-host-network"))).toEqual({ "home/metrics-agent": ["skip", "metrics-host-network"] })

      // The run and its Result record what they applied, at the versions read.
      // (The status controller may have written an exception's status before the run read it:
      // the version recorded is the one read; its spec is generation 1.)
      const records = (result.spec.exceptions as Array<Json>).map((record) => [record.namespace === home ? "home" : "team", record.name, record.generation, record.mode, record.matched])
      expect(records.sort()).toEqual([
        ["home", "cni-privileged", 1, "waive", 1],
        ["home", "metrics-host-network", 1, "waive", 1],
        ["home", "node-exporter-pid", 1, "alertOnly", 1],
        ["team", "team-waiver", 1, "waive", 1]
      ].sort())
      for (const created of [cni, shortLived, exporter, teamException]) {
        const record = (result.spec.exceptions as Array<Json>).find((entry) => entry.name === created.metadata.name)!
        // The version read: the created one or a later one (after a status write); etcd's
        // resourceVersions are increasing integers (opaque to clients, compared here only).
        expect(BigInt(record.resourceVersion), created.metadata.name).toBeGreaterThanOrEqual(BigInt(created.metadata.resourceVersion))
      }
      expect(first.status.exceptions).toEqual(result.spec.exceptions)
      expect(result.spec.summary.excepted).toBeGreaterThanOrEqual(3)

      // The status controller: matched in the series' last run, Active, an Expiring event now.
      const cniStatus = await eventually(async () => {
        const current = await admin.get(exceptionPath(home, "cni-privileged"))
        return current.status?.matched === 1 ? current.status : undefined
      }, { what: "cni-privileged's status to count its match", timeoutMillis: 90_000, intervalMillis: 500 })
      expect(cniStatus.series).toEqual([{ series: "nightly", namespace: home, run: "first", matched: 1 }])
      expect(cniStatus.lastMatchedTime).toBeDefined()
      expect(cniStatus.conditions.find((condition: Json) => condition.type === "Active")).toMatchObject({ status: "True", reason: "Active" })

      const eventsOf = async (uid: string) =>
        (await admin.list(resourcePath(apiVersions.SecurityEvent, "SecurityEvent"), { labelSelector: `security.ugallu.io/exception-uid=${uid}` }))
          .map((event) => event.spec.type as string)
          .sort()
      // Expired once, after its expiry; Expiring once, at once (it expires within 7 days).
      const expiredEvents = await eventually(async () => {
        const types = await eventsOf(shortLived.metadata.uid)
        return types.includes("ComplianceExceptionExpired") ? types : undefined
      }, { what: "the ComplianceExceptionExpired event", timeoutMillis: 90_000, intervalMillis: 500 })
      // expiresAt is stored to the second (rfc3339 drops the milliseconds).
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(rfc3339(expiresAt)))
      expect(expiredEvents).toEqual(["ComplianceExceptionExpired", "ComplianceExceptionExpiring"])
      const expiredStatus = await eventually(async () => {
        const current = await admin.get(exceptionPath(home, "metrics-host-network"))
        return current.status?.conditions?.find((condition: Json) => condition.type === "Expired")?.status === "True" ? current.status : undefined
      }, { what: "metrics-host-network to be Expired", timeoutMillis: 90_000, intervalMillis: 500 })
      expect(expiredStatus.conditions.find((condition: Json) => condition.type === "Active")).toMatchObject({ status: "False", reason: "Expired" })

      await admin.create(runPath(home), { ...runManifest(home, "second", { backend: "cel", profile: "pod-security-baseline" }), metadata: { name: "second", namespace: home, labels: { "security.ugallu.io/baseline": "nightly" } } })
      expect((await waitForRun(admin, home, "second", { timeoutMillis: 60_000 })).status.phase).toBe("Succeeded")
      const second = await admin.get(resultPath(home, "second"))
      expect(subjectsOf(checkOf(second, "pss-baseline-host-network"))).toEqual({ "home/metrics-agent": ["fail", "-"] })
      expect(checkOf(second, "pss-baseline-host-network").outcome).toBe("fail")
      expect((second.spec.exceptions as Array<Json>).map((record) => record.name).sort()).toEqual(["cni-privileged", "node-exporter-pid", "team-waiver"])

      // Still exactly one of each event after more passes of the controller.
      await eventually(async () => {
        const current = await admin.get(exceptionPath(home, "cni-privileged"))
        return current.status?.series?.[0]?.run === "second" ? current : undefined
      }, { what: "cni-privileged's status to follow the series' last run", timeoutMillis: 90_000, intervalMillis: 500 })
      expect(await eventsOf(shortLived.metadata.uid)).toEqual(["ComplianceExceptionExpired", "ComplianceExceptionExpiring"])
      expect(await operator!.metricSum("ugallu_compliance_scan_exceptions", { state: "expired" })).toBe(1)
      // This operator (--watch-namespace) keeps the statuses of its namespace's exceptions only.
      expect(await operator!.metricSum("ugallu_compliance_scan_exceptions", { state: "active" })).toBe(2)
      expect((await admin.get(exceptionPath(team, "team-waiver"))).status).toBeUndefined()
    })
  })
})
