import * as http from "node:http"
import * as https from "node:https"
import type { LoadedKubeConfig } from "./LoadKubeConfig.ts"

export interface HttpRequest {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
  /** Path below the server URL, with its query string. */
  readonly path: string
  /** Sent as JSON. */
  readonly body?: unknown
  /** Content type of the body; `application/json` unless set (merge patches set their own). */
  readonly contentType?: string
  readonly accept?: string
}

/** Sends one request with the kubeconfig's TLS and credentials; resolves when the response headers arrive. */
export type HttpTransport = (request: HttpRequest, signal: AbortSignal) => Promise<http.IncomingMessage>

const userAgent = "compliance-scan-operator"

/**
 * KubeConfig.applyToHTTPSOptions is client-node's own way of applying a kubeconfig to a
 * node:https request (CA, client certificate and key, insecure-skip-tls-verify,
 * tls-server-name, bearer token, token file, exec and auth-provider plugins, basic auth,
 * impersonation). Calling it per request keeps rotating credentials (token files, exec
 * plugins) fresh. Its agent is replaced by `agent` (our keep-alive pool, closed with the
 * Layer) unless a proxy is configured, where client-node's proxy agent must stay.
 */
export const makeHttpTransport = (loaded: LoadedKubeConfig, agent: http.Agent | undefined): HttpTransport => {
  const base = loaded.server.href.replace(/\/$/, "")
  const transport = loaded.server.protocol === "https:" ? https : http
  return async (request, signal) => {
    const headers: Record<string, string> = { Accept: request.accept ?? "application/json", "User-Agent": userAgent }
    const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), "utf8")
    if (payload !== undefined) {
      headers["Content-Type"] = request.contentType ?? "application/json"
      headers["Content-Length"] = String(payload.byteLength)
    }
    const options: https.RequestOptions = { method: request.method, headers, signal }
    await loaded.config.applyToHTTPSOptions(options)
    if (agent !== undefined && !loaded.usesProxy) options.agent = agent
    signal.throwIfAborted()
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const outgoing = transport.request(new URL(base + request.path), options, resolve)
      outgoing.on("error", reject)
      outgoing.end(payload)
    })
  }
}

/** Reads a whole response body as UTF-8 text. */
export const readText = async (response: http.IncomingMessage): Promise<string> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of response) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString("utf8")
}
