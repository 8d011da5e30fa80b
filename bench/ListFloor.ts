import { Agent, request } from "node:https"
import { defaultCelScannerOptions } from "../src/backends/cel/CelScanner.ts"
import { nextPageLimit } from "../src/services/kube/ListWatch.ts"
import { ByteChunks } from "../src/services/kube/live/ByteChunks.ts"
import { builtInMessages } from "../src/services/kube/protobuf/MessageSchema.ts"
import { decodeProtobufList } from "../src/services/kube/protobuf/ProtobufList.ts"
import type { ClusterInfo } from "../test/cluster/harness/ClusterInfo.ts"

/**
 * The API server's share of a paged list: every page of `path` (Pods) read in sequence with a
 * client that does nothing with the answers (it keeps only the continue token), in JSON or in
 * protobuf (what the CEL scan asks for). The pages are the cel scanner's: its first page size, then sized by bytes as
 * it sizes them (a page with a continue token holds `limit` objects). What this takes is the
 * floor for any scan that must read the same pages.
 */
export const listFloor = async (info: ClusterInfo, path: string, encoding: "json" | "protobuf" = "json"): Promise<{ pages: number; bytes: number }> => {
  const accept = encoding === "json" ? "application/json" : "application/vnd.kubernetes.protobuf"
  const pod = builtInMessages().kinds.get("v1|Pod")!
  const { pageSize, pageBudget } = defaultCelScannerOptions
  let limit = pageSize
  const agent = new Agent({ keepAlive: true, ca: info.caPem, maxSockets: 1 })
  const page = (token: string | undefined) =>
    new Promise<{ bytes: number; next: string | undefined }>((resolve, reject) => {
      const query = `limit=${limit}${token === undefined ? "" : `&continue=${encodeURIComponent(token)}`}`
      const url = new URL(`${path}?${query}`, info.server)
      const call = request(url, { agent, headers: { authorization: `Bearer ${info.adminToken}`, accept } }, (response) => {
        let head = ""
        let bytes = 0
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => {
          if (head.length < 4096) head += chunk.subarray(0, 4096).toString("utf8")
          bytes += chunk.length
          if (encoding === "protobuf") chunks.push(chunk)
        })
        response.on("end", () => {
          if (response.statusCode !== 200) return reject(new Error(`GET ${url.pathname}: ${response.statusCode} ${head.slice(0, 300)}`))
          // The token is in the list's metadata, before the items; no item is decoded.
          const next = encoding === "json" ? /"continue":"([^"]+)"/u.exec(head)?.[1] : decodeProtobufList(new ByteChunks(chunks), pod).continue
          resolve({ bytes, next: next === "" ? undefined : next })
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
