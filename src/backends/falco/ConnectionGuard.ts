import type { Server } from "node:https"
import type { Socket } from "node:net"

/**
 * Keeps slow or greedy clients from holding the receiver's connections: a cap on open
 * connections in total and per client address, and timeouts for each stage of a request
 * (TLS handshake, headers, a body that stops, a body that trickles). A normal client is
 * served meanwhile: each limit costs only the connection that broke it.
 */
export interface ConnectionLimits {
  /** The TLS handshake must finish within this. */
  readonly handshakeTimeoutMillis: number
  /** The request's headers must all arrive within this of its start. */
  readonly headersTimeoutMillis: number
  /** The whole request (headers and body) must arrive within this: a trickled body is cut. */
  readonly requestTimeoutMillis: number
  /** A connection with nothing received or sent for this long is closed (a stalled body, an idle keep-alive). */
  readonly idleTimeoutMillis: number
  readonly maxConnections: number
  readonly maxConnectionsPerClient: number
  /** How often Node checks the header and request timeouts (bounds how late they fire). */
  readonly checkIntervalMillis: number
}

export const defaultConnectionLimits: ConnectionLimits = {
  handshakeTimeoutMillis: 5_000,
  headersTimeoutMillis: 5_000,
  requestTimeoutMillis: 10_000,
  idleTimeoutMillis: 5_000,
  maxConnections: 512,
  maxConnectionsPerClient: 16,
  checkIntervalMillis: 1_000
}

/** Why the guard closed a connection (a metric label). */
export type ClosedReason = "connection_limit" | "request_timeout" | "idle_timeout"

export interface ConnectionHooks {
  readonly opened: (open: number) => void
  readonly closed: (reason: ClosedReason) => void
  readonly released: (open: number) => void
}

/** Server options that must be given at creation (the rest is set on the server). */
export const serverTimeoutOptions = (limits: ConnectionLimits) => ({
  handshakeTimeout: limits.handshakeTimeoutMillis,
  connectionsCheckingInterval: limits.checkIntervalMillis,
  headersTimeout: limits.headersTimeoutMillis,
  requestTimeout: limits.requestTimeoutMillis
})

export const guardConnections = (server: Server, limits: ConnectionLimits, hooks: ConnectionHooks): void => {
  const perClient = new Map<string, number>()
  let open = 0
  server.keepAliveTimeout = limits.idleTimeoutMillis
  // Accepted TCP connections, before TLS: refuse over the caps at once.
  server.on("connection", (socket: Socket) => {
    const client = socket.remoteAddress ?? "unknown"
    const mine = perClient.get(client) ?? 0
    if (open >= limits.maxConnections || mine >= limits.maxConnectionsPerClient) {
      hooks.closed("connection_limit")
      socket.destroy()
      return
    }
    open++
    perClient.set(client, mine + 1)
    hooks.opened(open)
    socket.once("close", () => {
      open--
      const left = (perClient.get(client) ?? 1) - 1
      if (left === 0) perClient.delete(client)
      else perClient.set(client, left)
      hooks.released(open)
    })
  })
  // Nothing in either direction for the idle time: a stalled body or an idle keep-alive.
  server.setTimeout(limits.idleTimeoutMillis, (socket: Socket) => {
    hooks.closed("idle_timeout")
    socket.destroy()
  })
  // Node's header and request timeouts arrive here; answer 408 and close.
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") hooks.closed("request_timeout")
    if (socket.writable && !socket.destroyed) {
      const status = error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request"
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    }
    socket.destroy()
  })
}
