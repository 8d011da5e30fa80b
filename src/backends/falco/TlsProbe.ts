import { isIP } from "node:net"
import { connect } from "node:tls"
import { Effect } from "effect"
import type { CertificateSet } from "./CertificateFiles.ts"
import { FalcoEndpointUnreachable, FalcoTLSHandshakeFailed } from "./FalcoErrors.ts"
import { describeTlsAlert } from "./TlsAlerts.ts"

/**
 * One mTLS connection to the gRPC endpoint before the real call, because gRPC reports
 * every connection problem as the same UNAVAILABLE status and the run must tell
 * "Falco is not there" (skip) from "Falco refuses us" (Failed). After the handshake the
 * probe sends the HTTP/2 connection preface; an HTTP/2 server that accepted our certificate
 * answers with its SETTINGS frame, so the first byte read means both sides agreed. With
 * TLS 1.3 a rejected client certificate shows only after the handshake, as an alert or a
 * closed connection.
 */

/** HTTP/2 client connection preface followed by an empty SETTINGS frame (RFC 9113, 3.4). */
const http2Preface = Buffer.concat([
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])
])

/** Socket errors that mean nothing answered at that address. */
const unreachableCodes = new Set([
  "ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "ETIMEDOUT",
  "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EADDRNOTAVAIL"
])

interface ProbeTarget {
  readonly host: string
  readonly port: number
  readonly credentials: CertificateSet
  readonly timeoutMillis: number
}

/** Node's codes for a server certificate we did not accept (OpenSSL's X509 verify results). */
const serverCertificateCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE", "CERT_REVOKED", "CERT_UNTRUSTED", "CERT_REJECTED", "INVALID_CA", "INVALID_PURPOSE",
  "ERR_TLS_CERT_ALTNAME_INVALID"
])

const closedAfterHandshake =
  "the server closed the connection after the handshake, so it did not accept our client certificate (unknown CA or expired on its clock)"

const describeRejection = (code: string | undefined, message: string, afterHandshake: boolean): string => {
  const alert = describeTlsAlert(code)
  if (alert !== undefined) return alert
  if (afterHandshake && (code === "ECONNRESET" || code === "EPIPE")) return closedAfterHandshake
  if (afterHandshake) return `the connection failed after the handshake (${code ?? "no code"}: ${message.trim()})`
  if (code === "ECONNRESET" || code === "EPIPE") {
    return "the server closed the connection during the handshake without a TLS alert (it may not trust our client certificate)"
  }
  if (code !== undefined && serverCertificateCodes.has(code)) return `we rejected the server's certificate (${code}: ${message.trim()})`
  return `the handshake failed (${code ?? "no code"}: ${message.trim()})`
}

export const probeTls = (target: ProbeTarget) =>
  Effect.callback<void, FalcoEndpointUnreachable | FalcoTLSHandshakeFailed>((resume) => {
    const where = `${target.host}:${target.port}`
    let settled = false
    let handshakeDone = false
    const socket = connect({
      host: target.host,
      port: target.port,
      cert: target.credentials.cert,
      key: target.credentials.key,
      ca: target.credentials.ca,
      ALPNProtocols: ["h2"],
      ...(isIP(target.host) === 0 ? { servername: target.host } : {})
    })
    const settle = (outcome: Effect.Effect<void, FalcoEndpointUnreachable | FalcoTLSHandshakeFailed>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resume(outcome)
    }
    const timer = setTimeout(() => {
      settle(
        handshakeDone
          ? Effect.fail(new FalcoTLSHandshakeFailed({ message: `TLS with ${where}: the server did not answer within ${target.timeoutMillis} ms of the handshake` }))
          : Effect.fail(new FalcoEndpointUnreachable({ message: `connecting to ${where} timed out after ${target.timeoutMillis} ms` }))
      )
    }, target.timeoutMillis)
    socket.once("secureConnect", () => {
      handshakeDone = true
      // A server without ALPN completes the handshake without agreeing to HTTP/2.
      if (socket.alpnProtocol !== "h2") {
        settle(Effect.fail(new FalcoTLSHandshakeFailed({
          message: `TLS handshake with ${where} failed: the server did not agree to HTTP/2 over ALPN (it chose ${socket.alpnProtocol || "no protocol"}): not a gRPC port`
        })))
        return
      }
      socket.write(http2Preface)
    })
    socket.once("data", () => settle(Effect.void))
    socket.once("error", (error: NodeJS.ErrnoException) => {
      if (!handshakeDone && error.code !== undefined && unreachableCodes.has(error.code)) {
        settle(Effect.fail(new FalcoEndpointUnreachable({ message: `cannot connect to ${where}: ${error.message}` })))
      } else {
        settle(Effect.fail(new FalcoTLSHandshakeFailed({
          message: `TLS handshake with ${where} failed: ${describeRejection(error.code, error.message, handshakeDone)}`
        })))
      }
    })
    socket.once("close", () => {
      settle(Effect.fail(new FalcoTLSHandshakeFailed({
        message: handshakeDone
          ? `TLS handshake with ${where} failed: ${closedAfterHandshake}`
          : `TLS handshake with ${where} failed: the server closed the connection during the handshake`
      })))
    })
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
      socket.destroy()
    })
  })
