import { type Json, KubeApiError, type KubeHttp } from "./KubeHttp.ts"
import { podsPath } from "./Scans.ts"

/**
 * Many Pods created with a bounded number of requests in flight (the API server and the
 * machine stay responsive). They are bound to a node that does not exist, so neither the
 * scheduler nor kwok acts on them: they are objects to scan, nothing runs. Pods that
 * already exist are kept (AlreadyExists counts as created), so a namespace can be topped up.
 */
export const unscheduledNode = "no-such-node"

export const createPods = async (
  admin: KubeHttp,
  namespace: string,
  names: ReadonlyArray<string>,
  podOf: (name: string, index: number) => Json,
  concurrency = 16
): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < names.length) {
      const index = next++
      const pod = podOf(names[index]!, index)
      try {
        await admin.create(podsPath(namespace), { ...pod, spec: { ...pod.spec, nodeName: unscheduledNode } })
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 409)) throw error
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker))
}

/** How many Pods a namespace holds, counted page by page (so a large one is never read at once). */
export const countPods = async (admin: KubeHttp, namespace: string): Promise<number> => {
  let count = 0
  let token = ""
  do {
    const page = await admin.get(`${podsPath(namespace)}?limit=5000${token === "" ? "" : `&continue=${encodeURIComponent(token)}`}`)
    count += (page.items as Array<unknown>).length
    token = String(page.metadata?.continue ?? "")
  } while (token !== "")
  return count
}
