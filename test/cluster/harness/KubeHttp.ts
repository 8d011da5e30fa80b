import { Agent, request } from "node:https"

/** A failed API call: the HTTP status and the Status object's reason and message. */
export class KubeApiError extends Error {
  readonly status: number
  readonly reason: string
  readonly body: string
  constructor(what: string, status: number, reason: string, message: string, body: string) {
    super(`${what}: ${status} ${reason}: ${message}`)
    this.name = "KubeApiError"
    this.status = status
    this.reason = reason
    this.body = body
  }
}

export interface KubeHttpOptions {
  /** https://127.0.0.1:<port> */
  readonly server: string
  readonly token: string
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly ca: string
}

export interface RawResponse {
  readonly status: number
  readonly body: string
}

export type Json = Record<string, any>

/**
 * A deliberately small client for the cluster tests and the harness: plain HTTPS with a
 * bearer token, JSON in and out, the API server's own error messages kept verbatim (tests
 * assert on what a user would read). Independent of the operator's client on purpose.
 */
export interface KubeHttp {
  readonly raw: (method: string, path: string, body?: string, contentType?: string) => Promise<RawResponse>
  readonly get: (path: string) => Promise<Json>
  /** undefined on 404. */
  readonly find: (path: string) => Promise<Json | undefined>
  readonly list: (path: string, query?: Record<string, string>) => Promise<Array<Json>>
  readonly create: (path: string, object: Json) => Promise<Json>
  /** Server-side apply (kubectl apply --server-side --force-conflicts) of one object. */
  readonly apply: (path: string, object: Json, fieldManager?: string) => Promise<Json>
  readonly mergePatch: (path: string, patch: Json) => Promise<Json>
  readonly put: (path: string, object: Json) => Promise<Json>
  /**
   * Watches `path` (from `query.resourceVersion` when given: the events since then are
   * replayed), handing each event to `onEvent`, until the returned function is called.
   */
  readonly watch: (path: string, query: Record<string, string>, onEvent: (event: { readonly type: string; readonly object: Json }) => void) => () => void
  /** Deletes; 404 counts as done. */
  readonly remove: (path: string, propagationPolicy?: "Background" | "Foreground" | "Orphan") => Promise<void>
  readonly close: () => void
}

const parse = (text: string): Json => (text === "" ? {} : (JSON.parse(text) as Json))

export const makeKubeHttp = (options: KubeHttpOptions): KubeHttp => {
  const server = new URL(options.server)
  const agent = new Agent({ keepAlive: true, ca: options.ca, maxSockets: 32 })

  const raw = (method: string, path: string, body?: string, contentType = "application/json") =>
    new Promise<RawResponse>((resolve, reject) => {
      const req = request(
        {
          agent,
          method,
          host: server.hostname,
          port: server.port,
          path,
          headers: {
            authorization: `Bearer ${options.token}`,
            accept: "application/json",
            ...(body === undefined ? {} : { "content-type": contentType, "content-length": Buffer.byteLength(body) })
          },
          timeout: 60_000
        },
        (response) => {
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
          response.on("error", reject)
        }
      )
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 60 s`)))
      req.on("error", reject)
      if (body !== undefined) req.write(body)
      req.end()
    })

  const call = async (method: string, path: string, body?: Json, contentType?: string): Promise<Json> => {
    const response = await raw(method, path, body === undefined ? undefined : JSON.stringify(body), contentType)
    if (response.status >= 200 && response.status < 300) return parse(response.body)
    let reason = ""
    let message = response.body
    try {
      const status = JSON.parse(response.body) as Json
      reason = String(status.reason ?? "")
      message = String(status.message ?? response.body)
    } catch {
      // not a Status object: keep the text
    }
    throw new KubeApiError(`${method} ${path}`, response.status, reason, message, response.body)
  }

  const watch = (path: string, query: Record<string, string>, onEvent: (event: { readonly type: string; readonly object: Json }) => void) => {
    const req = request(
      {
        agent,
        method: "GET",
        host: server.hostname,
        port: server.port,
        path: `${path}?${new URLSearchParams({ ...query, watch: "true" }).toString()}`,
        headers: { authorization: `Bearer ${options.token}`, accept: "application/json" }
      },
      (response) => {
        let pending = ""
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => {
          pending += chunk
          for (let end = pending.indexOf("\n"); end !== -1; end = pending.indexOf("\n")) {
            const line = pending.slice(0, end).trim()
            pending = pending.slice(end + 1)
            if (line !== "") onEvent(JSON.parse(line) as { type: string; object: Json })
          }
        })
        response.on("error", () => undefined)
      }
    )
    req.on("error", () => undefined)
    req.end()
    return () => void req.destroy()
  }

  return {
    raw,
    watch,
    get: (path) => call("GET", path),
    find: (path) =>
      call("GET", path).catch((error: unknown) => {
        if (error instanceof KubeApiError && error.status === 404) return undefined
        throw error
      }),
    list: async (path, query) => {
      const search = query === undefined ? "" : `?${new URLSearchParams(query).toString()}`
      const list = await call("GET", `${path}${search}`)
      return (list.items ?? []) as Array<Json>
    },
    create: (path, object) => call("POST", path, object),
    apply: (path, object, fieldManager = "cluster-tests") =>
      call("PATCH", `${path}?fieldManager=${encodeURIComponent(fieldManager)}&force=true`, object, "application/apply-patch+yaml"),
    mergePatch: (path, patch) => call("PATCH", path, patch, "application/merge-patch+json"),
    put: (path, object) => call("PUT", path, object),
    remove: async (path, propagationPolicy = "Background") => {
      await call("DELETE", path, { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy }).catch((error: unknown) => {
        if (error instanceof KubeApiError && error.status === 404) return {}
        throw error
      })
    },
    close: () => agent.destroy()
  }
}
