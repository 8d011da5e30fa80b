import { request } from "node:https"
import type { ClusterInfo } from "./ClusterInfo.ts"
import type { Json } from "./KubeHttp.ts"

/** A running watch of the test's own: every event the API server sent, in order. */
export interface RecordedWatch {
  readonly events: ReadonlyArray<{ readonly type: string; readonly object: Json }>
  /** True once the API server closed the watch (events after that were missed). */
  readonly ended: () => boolean
  readonly stop: () => void
}

/**
 * Watches `path` (a collection) from `resourceVersion` on, as the admin, and records every
 * event. Unlike polling a list, an object created and deleted between two polls is seen too.
 * Fails the returned promise if the API server does not answer 200.
 */
export const recordWatch = (
  cluster: ClusterInfo,
  path: string,
  query: Readonly<Record<string, string>>
): Promise<RecordedWatch> =>
  new Promise((resolve, reject) => {
    const server = new URL(cluster.server)
    const events: Array<{ type: string; object: Json }> = []
    const search = new URLSearchParams({ ...query, watch: "true", allowWatchBookmarks: "false" }).toString()
    const req = request(
      {
        host: server.hostname,
        port: server.port,
        path: `${path}?${search}`,
        ca: cluster.caPem,
        headers: { authorization: `Bearer ${cluster.adminToken}`, accept: "application/json" }
      },
      (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`watch ${path}: HTTP ${response.statusCode}`))
          response.resume()
          return
        }
        let buffered = ""
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => {
          buffered += chunk
          let newline = buffered.indexOf("\n")
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim()
            buffered = buffered.slice(newline + 1)
            if (line !== "") events.push(JSON.parse(line) as { type: string; object: Json })
            newline = buffered.indexOf("\n")
          }
        })
        let ended = false
        let stopped = false
        response.on("end", () => (ended = !stopped))
        response.on("error", () => (ended = !stopped))
        resolve({
          events,
          ended: () => ended,
          stop: () => {
            stopped = true
            req.destroy()
          }
        })
      }
    )
    req.on("error", reject)
    req.end()
  })
