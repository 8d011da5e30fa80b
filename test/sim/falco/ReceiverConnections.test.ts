import { connect, type ConnectionOptions, type TLSSocket } from "node:tls"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { simulatedAlert, toHttpJson } from "../../../sim/falco/SimulatedAlerts.ts"
import { Pki, startReceiver } from "./FalcoFixtures.ts"

/** Short limits so the tests run in seconds; the defaults are the same mechanism, documented in docs/falco.md. */
const limits = {
  handshakeTimeoutMillis: 1_000,
  headersTimeoutMillis: 500,
  requestTimeoutMillis: 1_200,
  idleTimeoutMillis: 600,
  maxConnections: 6,
  maxConnectionsPerClient: 3,
  checkIntervalMillis: 100
}

const startGuardedReceiver = Effect.gen(function*() {
  const pki = yield* Pki
  const { receiver, port, send: sendBody, metric } = yield* startReceiver({ connections: limits })
  const send = (localAddress = "127.0.0.9") => sendBody(toHttpJson(simulatedAlert(1, Date.now())), { localAddress })
  // tls.connect passes localAddress on to net.connect; its option type does not list it.
  const mtlsConnect = (localAddress: string) =>
    connect({ host: "127.0.0.1", port, localAddress, ca: pki.main.ca.cert, cert: pki.main.client.cert, key: pki.main.client.key, servername: "localhost" } as ConnectionOptions)
  /** An mTLS connection that has finished its handshake, what it received, and how long after `from` it was closed. */
  const open = (localAddress = "127.0.0.1") =>
    Effect.callback<{ socket: TLSSocket; received: () => string; closedAfter: (from: number) => Effect.Effect<number> }, string>((resume) => {
      const socket = mtlsConnect(localAddress)
      let closedAt: number | undefined
      let received = ""
      socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")))
      socket.on("close", () => (closedAt = Date.now()))
      socket.on("error", () => {})
      socket.once("secureConnect", () =>
        resume(Effect.succeed({
          socket,
          received: () => received,
          closedAfter: (from: number) =>
            Effect.gen(function*() {
              while (closedAt === undefined) yield* Effect.sleep(20)
              return closedAt - from
            })
        })))
      socket.once("close", () => resume(Effect.fail("closed before the handshake finished")))
    })
  return { receiver, send, metric, open, mtlsConnect }
})

layer(Pki.layer, { excludeTestServices: true })("the receiver's connection hygiene", (it) => {
  it.effect("closes a client that stalls in its headers within the headers timeout, while a normal client is served", () =>
    Effect.gen(function*() {
      const { send, metric, open } = yield* startGuardedReceiver
      const slow = yield* open()
      const started = Date.now()
      slow.socket.write("POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: appl")
      expect((yield* send()).status).toBe(200)
      const closedAfter = yield* slow.closedAfter(started)
      expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /u)
      expect(closedAfter).toBeGreaterThanOrEqual(limits.headersTimeoutMillis - 50)
      expect(closedAfter).toBeLessThan(limits.headersTimeoutMillis + 3 * limits.checkIntervalMillis + 400)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_closed_connections_total{reason=\"request_timeout\"}")).toBe(1)
    }))

  it.effect("closes a body that stops within the idle timeout, and a trickled body within the request timeout", () =>
    Effect.gen(function*() {
      const { send, metric, open, receiver } = yield* startGuardedReceiver
      const head = "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n"
      const stalled = yield* open()
      const trickled = yield* open()
      const started = Date.now()
      stalled.socket.write(`${head}[{"rule":`)
      trickled.socket.write(head)
      // One byte every 100 ms: never idle, never done.
      const timer = setInterval(() => trickled.socket.writable && trickled.socket.write(" "), 100)
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
      expect((yield* send()).status).toBe(200)
      const stalledAfter = yield* stalled.closedAfter(started)
      expect(stalledAfter).toBeGreaterThanOrEqual(limits.idleTimeoutMillis - 50)
      expect(stalledAfter).toBeLessThan(limits.idleTimeoutMillis + 400)
      const trickledAfter = yield* trickled.closedAfter(started)
      expect(trickledAfter).toBeGreaterThanOrEqual(limits.requestTimeoutMillis - 50)
      expect(trickledAfter).toBeLessThan(limits.requestTimeoutMillis + 3 * limits.checkIntervalMillis + 400)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_closed_connections_total{reason=\"idle_timeout\"}")).toBe(1)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_closed_connections_total{reason=\"request_timeout\"}")).toBe(1)
      expect(yield* receiver.buffered).toBe(1)
    }))

  it.effect("caps connections per client and in total; others are still served", () =>
    Effect.gen(function*() {
      const { send, metric, mtlsConnect } = yield* startGuardedReceiver
      const hold = (localAddress: string) =>
        Effect.callback<TLSSocket | "refused">((resume) => {
          const socket = mtlsConnect(localAddress)
          socket.on("error", () => {})
          socket.once("secureConnect", () => resume(Effect.succeed(socket)))
          socket.once("close", () => resume(Effect.succeed("refused")))
        })
      const first = yield* Effect.forEach(["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"], hold)
      yield* Effect.addFinalizer(() => Effect.sync(() => first.forEach((socket) => socket !== "refused" && socket.destroy())))
      expect(first.map((socket) => socket === "refused")).toEqual([false, false, false, true])
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_open_connections")).toBe(3)
      expect((yield* send("127.0.0.2")).status).toBe(200)
      const more = yield* Effect.forEach(["127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4"], hold)
      yield* Effect.addFinalizer(() => Effect.sync(() => more.forEach((socket) => socket !== "refused" && socket.destroy())))
      // 3 held + 3 more reach the total of 6: the seventh is refused.
      expect(more.map((socket) => socket === "refused")).toEqual([false, false, false, true])
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_closed_connections_total{reason=\"connection_limit\"}")).toBe(2)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_limit{limit=\"max_connections_per_client\"}")).toBe(3)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_limit{limit=\"request_timeout_seconds\"}")).toBe(1.2)
    }))
})
