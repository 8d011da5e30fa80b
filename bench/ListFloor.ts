import { Agent, request } from "node:https"
import { defaultCelScannerOptions } from "../src/backends/cel/CelScanner.ts"
import { nextPageLimit } from "../src/services/kube/ListWatch.ts"
import type { ClusterInfo } from "../test/cluster/harness/ClusterInfo.ts"

/**
 * The API server's share of a paged list: every page of `path` read in sequence with a client
 * that does nothing with the answers (it keeps only the continue token from each answer's
 * first bytes). The pages are the cel scanner's: its first page size, then sized by bytes as
 * it sizes them (a page with a continue token holds `limit` objects). What this takes is the
 * floor for any scan that must read the same pages.
 */
export const listFloor = async (info: ClusterInfo, path: string): Promise<{ pages: number; bytes: number }> => {
  const { pageSize, pageBudget } = defaultCelScannerOptions
  let limit = pageSize
  const agent = new Agent({ keepAlive: true, ca: info.caPem, maxSockets: 1 })
  const page = (token: string | undefined) =>
    new Promise<{ bytes: number; next: string | undefined }>((resolve, reject) => {
      const query = `limit=${limit}${token === undefined ? "" : `&continue=${encodeURIComponent(token)}`}`
      const url = new URL(`${path}?${query}`, info.server)
      const call = request(url, { agent, headers: { authorization: `Bearer ${info.adminToken}`, accept: "application/json" } }, (response) => {
        let head = ""
        let bytes = 0
        response.on("data", (chunk: Buffer) => {
          if (head.length < 4096) head += chunk.subarray(0, 4096).toString("utf8")
          bytes += chunk.length
        })
        response.on("end", () => {
          if (response.statusCode !== 200) return reject(new Error(`GET ${url.pathname}: ${response.statusCode} ${head.slice(0, 300)}`))
          resolve({ bytes, next: /"continue":"([^"]+)"/u.exec(head)?.[1] })
        })
        response.on("error", reject)
      })
      call.on("error", reject)
      call.end()
    })
  let token: string | undefined
  let pages = 0
  let bytes = 0
  try {
    do {
      const answer = await page(token)
      pages++
      bytes += answer.bytes
      token = answer.next
      limit = nextPageLimit(limit, { size: limit, bytes: answer.bytes }, pageBudget)
    } while (token !== undefined)
  } finally {
    agent.destroy()
  }
  return { pages, bytes }
}
