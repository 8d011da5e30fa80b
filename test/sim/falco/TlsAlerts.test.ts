import { spawn } from "node:child_process"
import { createServer as createPlainServer, type Server as PlainServer } from "node:http"
import { createServer, type Server } from "node:https"
import { connect as connectTcp } from "node:net"
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { describeTlsAlert } from "../../../src/backends/falco/TlsAlerts.ts"
import { closedPort, eventually, falcoRun, grpcConfig, Pki, scannerWith, scanRequest } from "./FalcoFixtures.ts"

/** True once something accepts TCP connections on the port. */
const accepting = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connectTcp({ host: "127.0.0.1", port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.on("error", () => resolve(false))
  })

/** A real server on a free port, closed with the test's scope. */
const serving = (server: Server | PlainServer | TlsServer) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly port: number }>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ port: (server.address() as { port: number }).port })))
    }),
    () => Effect.sync(() => {
      if ("closeAllConnections" in server) server.closeAllConnections()
      server.close()
    })
  )

/** What a Falco run reports when --falco-host points at `port`. */
const failureAt = (port: number) =>
  Effect.gen(function*() {
    const pki = yield* Pki
    const { scanner } = yield* scannerWith(grpcConfig(pki, port))
    return (yield* scanner.scan(scanRequest(falcoRun({ window: "200ms" })))).failure
  })

layer(Pki.layer, { excludeTestServices: true })("TLS failures are named by what the server said", (it) => {
  it.effect("an HTTPS port that speaks only HTTP/1.1 (alert 120) is reported as no ALPN protocol in common, not as a rejected certificate", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const { port } = yield* serving(createServer({
        cert: pki.main.server.cert,
        key: pki.main.server.key,
        ca: pki.main.ca.cert,
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ["http/1.1"]
      }))
      const failure = yield* failureAt(port)
      expect(failure?.reason).toBe("FalcoTLSHandshakeFailed")
      expect(failure?.message).toMatch(/no application protocol in common .*\(TLS alert 120 no_application_protocol\)$/u)
      expect(failure?.message).not.toMatch(/certificate/u)
    }))

  it.effect("a TLS port without ALPN is reported as not agreeing to HTTP/2", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const { port } = yield* serving(createTlsServer({ cert: pki.main.server.cert, key: pki.main.server.key }, (socket) => socket.end()))
      const failure = yield* failureAt(port)
      expect(failure?.reason).toBe("FalcoTLSHandshakeFailed")
      expect(failure?.message).toMatch(/did not agree to HTTP\/2 over ALPN \(it chose no protocol\): not a gRPC port$/u)
    }))

  it.effect("a plaintext port is reported as not answering in TLS", () =>
    Effect.gen(function*() {
      const { port } = yield* serving(createPlainServer())
      const failure = yield* failureAt(port)
      expect(failure?.reason).toBe("FalcoTLSHandshakeFailed")
      expect(failure?.message).toMatch(/the server did not answer in TLS \(a plaintext port\?\)$/u)
    }))

  it.effect("a client certificate from a CA the server does not trust is named as unknown_ca (OpenSSL's own server, which sends the alert)", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const port = yield* closedPort
      // Node's TLS servers hang up without an alert; OpenSSL (as in Falco's gRPC server) says why.
      const server = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn("openssl", [
            "s_server", "-accept", `127.0.0.1:${port}`, "-cert", pki.main.server.certFile, "-key", pki.main.server.keyFile,
            "-CAfile", pki.main.ca.certFile, "-Verify", "1", "-verify_return_error", "-alpn", "h2", "-quiet"
          ], { stdio: "ignore" })
        ),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      expect(server.pid).toBeGreaterThan(0)
      expect(yield* eventually(Effect.promise(() => accepting(port)), 5_000)).toBe(true)
      const { scanner } = yield* scannerWith({ ...grpcConfig(pki, port), falcoCertFile: pki.other.client.certFile, falcoKeyFile: pki.other.client.keyFile })
      const failure = (yield* scanner.scan(scanRequest(falcoRun({ window: "200ms" })))).failure
      expect(failure?.reason).toBe("FalcoTLSHandshakeFailed")
      expect(failure?.message).toMatch(/does not trust the CA that signed it \(TLS alert 48 unknown_ca\)$/u)
    }))

  it.effect("alerts without a live case here still get their own sentence", () =>
    Effect.sync(() => {
      expect(describeTlsAlert("ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN")).toMatch(/could not verify our client certificate .*\(TLS alert 46 certificate_unknown\)$/u)
      expect(describeTlsAlert("ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION")).toMatch(/no TLS version we offer .*\(TLS alert 70 protocol_version\)$/u)
      expect(describeTlsAlert("ERR_SSL_TLSV1_ALERT_BAD_RECORD_MAC")).toBe("the server sent TLS alert tlsv1_alert_bad_record_mac")
      expect(describeTlsAlert("ECONNRESET")).toBeUndefined()
    }))
})
