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
 * The keep-alive connection pool for the API server (closed with the client's Layer). A
 * cluster's `proxy-url` goes through Node's own proxy support (CONNECT for https servers),
 * which an Agent takes as `proxyEnv`; the client certificate and CA are per-request options,
 * part of the pool's key, so rotated credentials get new connections.
 */
export const makeAgent = (loaded: LoadedKubeConfig): http.Agent => {
  const https_ = loaded.server.protocol === "https:"
  const proxyEnv = loaded.proxy === undefined ? undefined : { [https_ ? "HTTPS_PROXY" : "HTTP_PROXY"]: loaded.proxy.href }
  const options = { keepAlive: true, ...(proxyEnv === undefined ? {} : { proxyEnv }) }
  return https_ ? new https.Agent(options) : new http.Agent(options)
}

/**
 * Sends requests with the configuration's TLS options and the credentials of the moment.
 * A 401 renews rotating credentials (token file read again, exec plugin run again) and sends
 * the request once more: the API server did not act on a request it did not authenticate.
 */
export const makeHttpTransport = (loaded: LoadedKubeConfig, agent: http.Agent): HttpTransport => {
  const base = loaded.server.href.replace(/\/$/, "")
  const transport = loaded.server.protocol === "https:" ? https : http
  const send = async (request: HttpRequest, payload: Buffer | undefined, signal: AbortSignal) => {
    const credentials = await loaded.credentials.current()
    const headers: http.OutgoingHttpHeaders = {
      ...credentials.headers,
      Accept: request.accept ?? "application/json",
      "User-Agent": userAgent
    }
    if (payload !== undefined) {
      headers["Content-Type"] = request.contentType ?? "application/json"
      headers["Content-Length"] = String(payload.byteLength)
    }
    const options: https.RequestOptions = {
      method: request.method,
      headers,
      signal,
      agent,
      ...loaded.tls,
      ...(credentials.cert === undefined ? {} : { cert: credentials.cert, key: credentials.key })
    }
    signal.throwIfAborted()
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const outgoing = transport.request(new URL(base + request.path), options, resolve)
      outgoing.on("error", reject)
      outgoing.end(payload)
    })
  }
  return async (request, signal) => {
    const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), "utf8")
    const response = await send(request, payload, signal)
    if (response.statusCode !== 401 || !(await loaded.credentials.renew())) return response
    response.resume()
    return send(request, payload, signal)
  }
}

/** Reads a whole response body as the socket hands it over, in chunks (see ByteChunks). */
export const readChunks = async (response: http.IncomingMessage): Promise<Array<Buffer>> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of response) chunks.push(chunk as Buffer)
  return chunks
}

/** Reads a whole response body. */
export const readBytes = async (response: http.IncomingMessage): Promise<Buffer> => Buffer.concat(await readChunks(response))

/** Reads a whole response body as UTF-8 text. */
export const readText = async (response: http.IncomingMessage): Promise<string> => (await readBytes(response)).toString("utf8")
