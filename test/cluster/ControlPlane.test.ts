import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import "./harness/ClusterInfo.ts"
import { connectAdmin, createNamespace, deleteNamespace } from "./harness/ClusterSetup.ts"
import { writeCriLog } from "./harness/CriLog.ts"
import { eventually } from "./harness/Eventually.ts"
import type { KubeHttp } from "./harness/KubeHttp.ts"
import { jobsPath, podsPath } from "./harness/Scans.ts"

/**
 * The harness part of the kube-bench path, with a plain Job and no operator: the
 * controller-manager makes the Job's Pod, the scheduler places it, kwok runs it, and its log
 * (a file the test writes) comes back through the API server's pods/log.
 */
const cluster = inject("cluster")
let admin: KubeHttp
let namespace: string

beforeAll(async () => {
  admin = connectAdmin(cluster)
  namespace = await createNamespace(admin, "harness")
})

afterAll(async () => {
  await deleteNamespace(admin, namespace)
  admin.close()
})

const jobPods = (job: string) => admin.list(podsPath(namespace), { labelSelector: `batch.kubernetes.io/job-name=${job}` })

const plainJob = (name: string) => ({
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: { name, namespace },
  spec: {
    backoffLimit: 0,
    template: { spec: { restartPolicy: "Never", containers: [{ name: "report", image: "example.invalid/report:1" }] } }
  }
})

describe("control plane", () => {
  it("has a tainted master node and Ready worker nodes, labelled by role", async () => {
    const nodes = await admin.list("/api/v1/nodes")
    const byName = new Map(nodes.map((node) => [node.metadata.name, node]))
    const master = byName.get(cluster.nodes.master)
    expect(master?.metadata.labels["kubernetes.io/role"]).toBe("master")
    expect(master?.spec.taints).toContainEqual({ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" })
    expect(cluster.nodes.workers.length).toBeGreaterThanOrEqual(2)
    for (const name of [cluster.nodes.master, ...cluster.nodes.workers]) {
      const node = byName.get(name)
      expect(node?.status.conditions.find((condition: { type: string }) => condition.type === "Ready")?.status).toBe("True")
    }
    for (const name of cluster.nodes.workers) expect(byName.get(name)?.metadata.labels["kubernetes.io/role"]).toBe("worker")
  })

  it("runs a Job: controller-manager Pod, scheduler placement, kwok completion, log through pods/log", async () => {
    const line = `report ${Date.now()}: all good`
    writeCriLog(cluster.podLogFiles.workers["*"]!, [line, "second line"])
    await admin.create(jobsPath(namespace), plainJob("plain"))

    const job = await eventually(
      async () => {
        const current = await admin.get(jobsPath(namespace, "plain"))
        return (current.status?.succeeded ?? 0) >= 1 ? current : undefined
      },
      { what: "Job plain to succeed", timeoutMillis: 60_000 }
    )
    expect(job.status.conditions.map((condition: { type: string }) => condition.type)).toContain("Complete")

    const [pod] = await jobPods("plain")
    expect(pod?.status.phase).toBe("Succeeded")
    // Placed by the scheduler (the Job set no nodeName), never on the tainted master.
    expect(cluster.nodes.workers).toContain(pod?.spec.nodeName)
    const log = await admin.raw("GET", `${podsPath(namespace, pod?.metadata.name)}/log?container=report`)
    expect(log.status).toBe(200)
    expect(log.body).toBe(`${line}\nsecond line\n`)
  })

  it("keeps the Pods of held Jobs Running until they are released", async () => {
    const name = `job${cluster.heldJobMarker}1`
    await admin.create(jobsPath(namespace), plainJob(name))
    const running = await eventually(
      async () => {
        const [pod] = await jobPods(name)
        return pod?.status?.phase === "Running" ? pod : undefined
      },
      { what: "the held Job's Pod to run", timeoutMillis: 60_000 }
    )
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    expect((await admin.get(podsPath(namespace, running.metadata.name))).status.phase).toBe("Running")

    await admin.mergePatch(podsPath(namespace, running.metadata.name), { metadata: { labels: { [cluster.releaseLabel]: "true" } } })
    await eventually(
      async () => {
        const current = await admin.get(jobsPath(namespace, name))
        return (current.status?.succeeded ?? 0) >= 1 ? current : undefined
      },
      { what: "the released Job to succeed", timeoutMillis: 60_000 }
    )
  })

  it("removes a finished Job after ttlSecondsAfterFinished (TTL-after-finished controller)", async () => {
    const job = plainJob("short-lived")
    await admin.create(jobsPath(namespace), { ...job, spec: { ...job.spec, ttlSecondsAfterFinished: 0 } })
    await eventually(async () => ((await admin.find(jobsPath(namespace, "short-lived"))) === undefined ? true : undefined), {
      what: "the finished Job to be removed by its TTL",
      timeoutMillis: 60_000
    })
  })

  it("deletes a Job's Pods with it (garbage collector, Background propagation)", async () => {
    await admin.remove(jobsPath(namespace, "plain"), "Background")
    await eventually(async () => ((await jobPods("plain")).length === 0 ? true : undefined), {
      what: "the Pods of the deleted Job to go",
      timeoutMillis: 60_000
    })
  })

  it("empties and removes a deleted namespace (namespace controller)", async () => {
    const doomed = await createNamespace(admin, "doomed")
    await admin.create(podsPath(doomed), { apiVersion: "v1", kind: "Pod", metadata: { name: "app" }, spec: { containers: [{ name: "app", image: "example.invalid/app:1" }] } })
    await deleteNamespace(admin, doomed)
    await eventually(async () => ((await admin.find(`/api/v1/namespaces/${doomed}`)) === undefined ? true : undefined), {
      what: `namespace ${doomed} to be removed`,
      timeoutMillis: 60_000
    })
  })
})
