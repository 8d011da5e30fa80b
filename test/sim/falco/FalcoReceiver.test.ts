import { gzipSync } from "node:zlib"
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import type { FalcoEvent } from "../../../src/backends/falco/FalcoEvent.ts"
import { FalcoReceiver } from "../../../src/backends/falco/FalcoReceiver.ts"
import { simulatedAlert, toHttpJson } from "../../../sim/falco/SimulatedAlerts.ts"
import { makeSimulatedFalco } from "../../../sim/falco/SimulatedFalco.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { OperatorConfig } from "../../../src/services/OperatorConfig.ts"
import { eventually, falcoRun, grpcConfig, Pki, post, scannerWith, scanRequest, startReceiver } from "./FalcoFixtures.ts"

const alertAt = (index: number, overrides: Partial<FalcoEvent> = {}): FalcoEvent => ({ ...simulatedAlert(index, Date.now()), ...overrides })

layer(Pki.layer, { excludeTestServices: true })("the HTTPS receiver for Falco 0.44+ and Falcosidekick", (it) => {
  it.effect("accepts Falco http_output JSON and a run reads it back as checks, without waiting", () =>
    Effect.gen(function*() {
      const { send, metric, layer: receiverLayer } = yield* startReceiver()
      const answer = yield* send(toHttpJson(alertAt(1)))
      expect(answer.status).toBe(200)
      expect(JSON.parse(answer.body)).toEqual({ accepted: 1 })
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_events_total{format=\"falco\"}")).toBe(1)

      const { scanner } = yield* scannerWith({}, receiverLayer)
      const started = Date.now()
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "1m" })))
      expect(Date.now() - started).toBeLessThan(500)
      expect(report.checks.map((check) => [check.checkID, check.severity])).toEqual([
        ["falco.write-below-etc", "high"],
        // The receiver started less than the 1m window ago: it cannot vouch for the time before.
        ["falco.coverage-incomplete", "low"]
      ])
      expect(report.checks[1]!.detail).toMatch(/^receiver: the receiver has taken alerts only since \S+ \(operator start, restart or leader change\), after the window began/u)
    }))

  it.effect("accepts Falcosidekick's webhook JSON, single, batched and gzip-compressed", () =>
    Effect.gen(function*() {
      const { send, metric, receiver } = yield* startReceiver()
      const single = yield* send(toHttpJson(alertAt(0), "6c1f1d2e-8f0a-4b7c-9d3e-2a1b0c9d8e7f"))
      expect(single.status).toBe(200)
      const batch = yield* send([
        toHttpJson(alertAt(2), "0a1b2c3d-0000-4000-8000-000000000001"),
        toHttpJson(alertAt(3), "0a1b2c3d-0000-4000-8000-000000000002")
      ])
      expect(batch.status).toBe(200)
      expect(JSON.parse(batch.body)).toEqual({ accepted: 2 })
      const compressed = yield* send(gzipSync(JSON.stringify(toHttpJson(alertAt(4)))), { headers: { "content-encoding": "gzip" } })
      expect(compressed.status).toBe(200)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_events_total{format=\"falcosidekick\"}")).toBe(3)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_events_total{format=\"falco\"}")).toBe(1)
      expect(yield* receiver.buffered).toBe(4)
    }))

  it.effect("refuses clients without a certificate or with one from another CA", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const { port, metric, receiver } = yield* startReceiver()
      const body = JSON.stringify(toHttpJson(alertAt(0)))
      const anonymous = yield* Effect.flip(post({ port, ca: pki.main.ca.cert, body }))
      expect(anonymous).toMatch(/certificate required|socket hang up|ECONNRESET/u)
      const stranger = yield* Effect.flip(post({ port, ca: pki.main.ca.cert, client: pki.other.client, body }))
      expect(stranger).toMatch(/unknown ca|socket hang up|ECONNRESET/u)
      expect(yield* receiver.buffered).toBe(0)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_rejected_requests_total{reason=\"tls\"}")).toBe(2)
    }))

  it.effect("rejects malformed JSON, non-alerts and oversized bodies, and keeps serving others", () =>
    Effect.gen(function*() {
      const { send, metric, receiver } = yield* startReceiver({ maxBodyBytes: 4_096 })
      const malformed = yield* send("{\"rule\": \"Write below etc\",")
      expect(malformed.status).toBe(400)
      expect(JSON.parse(malformed.body).error).toMatch(/^malformed JSON/u)
      const notAnAlert = yield* send({ rule: "Write below etc", priority: "Loud", time: "2026-01-01T00:00:00Z" })
      expect(notAnAlert.status).toBe(400)
      expect(JSON.parse(notAnAlert.body).error).toBe("not a Falco alert: priority \"Loud\" is not a Falco priority")
      const oversized = yield* send({ ...toHttpJson(alertAt(0)), output: "x".repeat(10_000) })
      expect(oversized.status).toBe(413)
      const streamed = yield* send({ ...toHttpJson(alertAt(0)), output: "x".repeat(10_000) }, { headers: { "transfer-encoding": "chunked" } })
      expect(streamed.status).toBe(413)
      const bomb = yield* send(gzipSync(JSON.stringify({ ...toHttpJson(alertAt(0)), output: " ".repeat(100_000) })), {
        headers: { "content-encoding": "gzip" }
      })
      expect(bomb.status).toBe(413)
      const wrongMethod = yield* post({ port: receiver.address!.port, ca: (yield* Pki).main.ca.cert, client: (yield* Pki).main.client, body: "", method: "GET" })
      expect(wrongMethod.status).toBe(405)

      const good = yield* send(toHttpJson(alertAt(1)))
      expect(good.status).toBe(200)
      expect(yield* receiver.buffered).toBe(1)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_rejected_requests_total{reason=\"malformed\"}")).toBe(2)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_rejected_requests_total{reason=\"too_large\"}")).toBe(3)
    }))

  it.effect("answers a flooding client 429 while another client is still served", () =>
    Effect.gen(function*() {
      const { send, metric, receiver } = yield* startReceiver({ requestsPerSecond: 0.1, burst: 5 })
      const flood = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, index) => index),
        (index) => send(toHttpJson(alertAt(index)), { localAddress: "127.0.0.1" }),
        { concurrency: 4 }
      )
      const statuses = flood.map((answer) => answer.status)
      expect(statuses.filter((status) => status === 200)).toHaveLength(5)
      const limited = flood.filter((answer) => answer.status === 429)
      expect(limited).toHaveLength(7)
      expect(Number(limited[0]!.headers["retry-after"])).toBeGreaterThanOrEqual(1)

      const other = yield* send(toHttpJson(alertAt(99)), { localAddress: "127.0.0.2" })
      expect(other.status).toBe(200)
      expect(yield* receiver.buffered).toBe(statuses.filter((status) => status === 200).length + 1)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_rejected_requests_total{reason=\"rate_limited\"}")).toBe(limited.length)
    }))

  it.effect("keeps at most its buffer size, dropping the oldest and counting them", () =>
    Effect.gen(function*() {
      const { send, metric, receiver, layer: receiverLayer } = yield* startReceiver({ bufferSize: 5 })
      const alerts = Array.from({ length: 8 }, (_, index) => alertAt(index, { rule: `Rule ${index}` }))
      for (const alert of alerts) expect((yield* send(toHttpJson(alert))).status).toBe(200)
      expect(yield* receiver.buffered).toBe(5)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_events_dropped_total{reason=\"capacity\"}")).toBe(3)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_buffered_events")).toBe(5)
      const { scanner } = yield* scannerWith({}, receiverLayer)
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "1m" })))
      expect(report.checks.filter((check) => check.outcome === "fail").map((check) => check.title).sort()).toEqual([
        "Rule 3", "Rule 4", "Rule 5", "Rule 6", "Rule 7"
      ])
      const coverage = report.checks.find((check) => check.checkID === "falco.coverage-incomplete")
      expect(coverage?.detail).toContain("3 dropped from the full buffer (alerts or bytes)")
    }))

  it.effect("forgets alerts older than its age bound, and a run only reads its window back", () =>
    Effect.gen(function*() {
      const { send, metric, receiver, layer: receiverLayer } = yield* startReceiver({ maxEventAgeMillis: 2_000 })
      expect((yield* send(toHttpJson(alertAt(0)))).status).toBe(200)
      const { scanner } = yield* scannerWith({}, receiverLayer)
      // Waits until the alert is older than a 100ms window (a condition, not a fixed sleep).
      const narrowChecks = scanner.scan(scanRequest(falcoRun({ window: "100ms" }))).pipe(
        Effect.map((report) => report.checks.map((check) => [check.checkID, check.outcome]))
      )
      const quiet = [["falco.no-events", "pass"], ["falco.coverage", "pass"]]
      yield* eventually(Effect.map(narrowChecks, (checks) => JSON.stringify(checks) === JSON.stringify(quiet)))
      expect(yield* narrowChecks).toEqual(quiet)
      const wide = yield* scanner.scan(scanRequest(falcoRun({ window: "10s" })))
      expect(wide.checks.map((check) => check.checkID)).toEqual(["falco.terminal-shell-in-container", "falco.coverage-incomplete"])
      // ... and until it is older than the age bound.
      yield* eventually(Effect.map(receiver.read(0, Date.now()), (read) => read.events.length === 0), 10_000)
      expect((yield* receiver.read(0, Date.now())).events.length).toBe(0)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_events_dropped_total{reason=\"age\"}")).toBe(1)
    }))

  it.effect("starts with the operator when --falco-receiver-bind-address is set and closes on shutdown", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const config = {
        falcoReceiverBindAddress: "127.0.0.1:0",
        falcoReceiverCertFile: pki.main.server.certFile,
        falcoReceiverKeyFile: pki.main.server.keyFile,
        falcoReceiverClientCAFile: pki.main.ca.certFile
      }
      const operatorScope = yield* Scope.make()
      const services = yield* Layer.buildWithScope(
        FalcoReceiver.layer.pipe(Layer.provide(Layer.mergeAll(OperatorConfig.layer(config), Metrics.layerTest))),
        operatorScope
      )
      const port = Context.get(services, FalcoReceiver).address!.port
      const body = JSON.stringify(toHttpJson(alertAt(0)))
      expect((yield* post({ port, ca: pki.main.ca.cert, client: pki.main.client, body })).status).toBe(200)
      yield* Scope.close(operatorScope, Exit.void)
      expect(yield* Effect.flip(post({ port, ca: pki.main.ca.cert, client: pki.main.client, body }))).toMatch(/ECONNREFUSED/u)

      const receiverOf = (overrides: Parameters<typeof OperatorConfig.layer>[0]) =>
        Effect.gen(function*() {
          return yield* FalcoReceiver
        }).pipe(Effect.provide(FalcoReceiver.layer.pipe(Layer.provide(Layer.mergeAll(OperatorConfig.layer(overrides), Metrics.layerTest)))))
      const off = yield* receiverOf({})
      expect(off.address).toBeUndefined()

      const broken = yield* Effect.flip(receiverOf({ ...config, falcoReceiverCertFile: `${pki.main.dir}/missing.crt` }))
      expect(broken).toMatchObject({ _tag: "FalcoReceiverStartFailed" })
      expect(broken.message).toMatch(/cannot read --falco-receiver-cert-file .*missing\.crt/u)
    }))

  it.effect("with gRPC and the receiver both configured, a run uses both and counts an alert seen twice once", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const shared = alertAt(1)
      const falco = yield* makeSimulatedFalco({
        serverCert: pki.main.server.cert,
        serverKey: pki.main.server.key,
        clientCA: pki.main.ca.cert,
        initialEvents: [shared, alertAt(3)]
      })
      const { send, layer: receiverLayer } = yield* startReceiver()
      expect((yield* send(toHttpJson(shared, "5d7e9f1a-0000-4000-8000-00000000abcd"))).status).toBe(200)
      expect((yield* send(toHttpJson(alertAt(2)))).status).toBe(200)
      const { scanner } = yield* scannerWith(grpcConfig(pki, falco.port), receiverLayer)
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "200ms" })))
      expect(report.checks.map((check) => [check.checkID, check.subjectCounts?.fail, check.subjects?.[0]?.count])).toEqual([
        ["falco.drop-and-execute-new-binary-in-container", 1, 1],
        ["falco.write-below-etc", 1, 1],
        ["falco.read-sensitive-file-untrusted", 1, 1],
        ["falco.coverage-incomplete", 0, undefined]
      ])
    }))

  it.effect("sources are independent: a gRPC source failing on TLS keeps the receiver's findings, and the run fails with the gRPC reason", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* makeSimulatedFalco({
        serverCert: pki.main.server.cert,
        serverKey: pki.main.server.key,
        clientCA: pki.main.ca.cert,
        initialEvents: [alertAt(3)]
      })
      const { send, layer: receiverLayer } = yield* startReceiver()
      expect((yield* send(toHttpJson(alertAt(1)))).status).toBe(200)
      const variants = [
        // Falco rejects our client certificate (another CA) ...
        { falcoCertFile: pki.other.client.certFile, falcoKeyFile: pki.other.client.keyFile },
        // ... we reject Falco's certificate ...
        { falcoCARootFile: pki.other.ca.certFile },
        // ... our credentials are broken.
        { falcoKeyFile: `${pki.main.dir}/no-such.key` }
      ]
      const reasons: Array<string> = []
      for (const overrides of variants) {
        const { scanner } = yield* scannerWith({ ...grpcConfig(pki, falco.port), ...overrides }, receiverLayer)
        const report = yield* scanner.scan(scanRequest(falcoRun({ window: "1m" })))
        reasons.push(report.failure!.reason)
        expect(report.checks.map((check) => [check.checkID, check.outcome])).toEqual([
          ["falco.write-below-etc", "fail"],
          ["falco.coverage-incomplete", "warn"]
        ])
        const grpcSource = report.checks[1]!.subjects!.find((subject) => subject.name === "grpc")!
        expect(grpcSource.outcome).toBe("warn")
        expect(grpcSource.message).toContain(`nothing collected from localhost:${falco.port}: ${report.failure!.message}`)
      }
      expect(reasons).toEqual(["FalcoTLSHandshakeFailed", "FalcoTLSHandshakeFailed", "FalcoCredentialsInvalid"])
      // The gRPC alert was never delivered: it is still queued in Falco.
      expect(yield* falco.queued).toBe(1)
    }))

  it.effect("a gRPC stream failing mid-window keeps what both sources delivered, names the failure, and fails the run", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* makeSimulatedFalco({
        serverCert: pki.main.server.cert,
        serverKey: pki.main.server.key,
        clientCA: pki.main.ca.cert,
        initialEvents: [alertAt(3)],
        behaviour: "fail"
      })
      const { send, layer: receiverLayer } = yield* startReceiver()
      expect((yield* send(toHttpJson(alertAt(1)))).status).toBe(200)
      const { scanner } = yield* scannerWith(grpcConfig(pki, falco.port), receiverLayer)
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "5s" })))
      expect(report.failure?.reason).toBe("FalcoStreamFailed")
      expect(report.failure?.message).toMatch(/INTERNAL: simulated Falco failure/u)
      expect(report.checks.map((check) => [check.checkID, check.outcome])).toEqual([
        ["falco.drop-and-execute-new-binary-in-container", "fail"],
        ["falco.write-below-etc", "fail"],
        ["falco.coverage-incomplete", "warn"]
      ])
      expect(report.checks[2]!.detail).toMatch(/grpc: the stream failed at \S+, before the window's end: .*simulated Falco failure/u)
    }))

  it.effect("after a restart the alerts posted before it are gone, and the scan says so instead of passing with no-events", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const config = {
        falcoReceiverBindAddress: "127.0.0.1:0",
        falcoReceiverCertFile: pki.main.server.certFile,
        falcoReceiverKeyFile: pki.main.server.keyFile,
        falcoReceiverClientCAFile: pki.main.ca.certFile
      }
      const operatorLayer = FalcoReceiver.layer.pipe(Layer.provide(Layer.mergeAll(OperatorConfig.layer(config), Metrics.layerTest)))
      const before = yield* Scope.make()
      const first = Context.get(yield* Layer.buildWithScope(operatorLayer, before), FalcoReceiver)
      const body = JSON.stringify(toHttpJson(alertAt(1)))
      expect((yield* post({ port: first.address!.port, ca: pki.main.ca.cert, client: pki.main.client, body })).status).toBe(200)
      expect(yield* first.buffered).toBe(1)
      yield* Scope.close(before, Exit.void) // the operator stops ...

      const after = yield* Scope.make() // ... and starts again, with an empty buffer
      const second = Layer.succeed(FalcoReceiver, Context.get(yield* Layer.buildWithScope(operatorLayer, after), FalcoReceiver))
      const { scanner } = yield* scannerWith({}, second)
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "1m" })))
      yield* Scope.close(after, Exit.void)
      expect(report.checks.map((check) => [check.checkID, check.outcome])).toEqual([
        ["falco.no-events", "skip"],
        ["falco.coverage-incomplete", "warn"]
      ])
      expect(report.checks[1]!.detail).toMatch(/the receiver has taken alerts only since \S+ \(operator start, restart or leader change\), after the window began/u)
    }))

  it.effect("requests refused over the rate limit inside the window make its coverage incomplete", () =>
    Effect.gen(function*() {
      const { send, receiver, layer: receiverLayer } = yield* startReceiver({ requestsPerSecond: 0.1, burst: 1 })
      // The receiver must have been taking alerts for the whole window before the sends.
      yield* eventually(Effect.map(receiver.read(0, Date.now()), (read) => read.coverage.takingAlertsSince <= Date.now() - 1_100))
      expect((yield* send(toHttpJson(alertAt(1)))).status).toBe(200)
      expect((yield* send(toHttpJson(alertAt(2)))).status).toBe(429)
      const { scanner } = yield* scannerWith({}, receiverLayer)
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "1s" })))
      expect(report.checks.map((check) => [check.checkID, check.outcome])).toEqual([
        ["falco.write-below-etc", "fail"],
        ["falco.coverage-incomplete", "warn"]
      ])
      expect(report.checks[1]!.detail).toBe("receiver: in the window: 1 requests refused over the rate limit (429)")
    }))

  it.effect("a standby refuses alerts with 503; once it leads it takes them, and its coverage starts at the takeover", () =>
    Effect.gen(function*() {
      let leads = false
      const { send, metric, receiver, layer: receiverLayer } = yield* startReceiver({
        shouldServe: Effect.sync(() => leads),
        servingCheckMillis: 20
      })
      const refused = yield* send(toHttpJson(alertAt(1)))
      expect(refused.status).toBe(503)
      expect(refused.headers["retry-after"]).toBe("2")
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_serving")).toBe(0)
      expect(yield* receiver.buffered).toBe(0)

      leads = true
      expect(yield* eventually(Effect.map(metric("ugallu_compliance_scan_falco_receiver_serving"), (value) => value === 1))).toBe(true)
      expect((yield* send(toHttpJson(alertAt(1)))).status).toBe(200)
      const { scanner } = yield* scannerWith({}, receiverLayer)
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "1m" })))
      expect(report.checks.map((check) => check.checkID)).toEqual(["falco.write-below-etc", "falco.coverage-incomplete"])
      expect(report.checks[1]!.detail).toMatch(/taken alerts only since \S+ \(operator start, restart or leader change\)/u)

      leads = false
      expect(yield* eventually(Effect.map(send(toHttpJson(alertAt(2))), (answer) => answer.status === 503))).toBe(true)
      expect(yield* metric("ugallu_compliance_scan_falco_receiver_rejected_requests_total{reason=\"standby\"}")).toBeGreaterThanOrEqual(2)
    }))
})
