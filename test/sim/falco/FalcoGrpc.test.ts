import * as Grpc from "@grpc/grpc-js"
import { expect, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import type { FalcoEvent } from "../../../src/backends/falco/FalcoEvent.ts"
import { loadFalcoApi } from "../../../src/backends/falco/FalcoProto.ts"
import { simulatedAlert } from "../../../sim/falco/SimulatedAlerts.ts"
import { makeSimulatedFalco } from "../../../sim/falco/SimulatedFalco.ts"
import { closedPort, eventually, falcoRun, grpcConfig, metricValue, Pki, scannerWith, scanRequest, silentServer } from "./FalcoFixtures.ts"

const startFalco = (options: { readonly events?: ReadonlyArray<FalcoEvent>; readonly eventsPerSecond?: number; readonly behaviour?: "deliver" | "hang" } = {}) =>
  Effect.gen(function*() {
    const pki = yield* Pki
    return yield* makeSimulatedFalco({
      serverCert: pki.main.server.cert,
      serverKey: pki.main.server.key,
      clientCA: pki.main.ca.cert,
      initialEvents: options.events ?? [],
      eventsPerSecond: options.eventsPerSecond ?? 0,
      behaviour: options.behaviour ?? "deliver"
    })
  })

/** Alerts of the simulated catalogue: index 0 = Terminal shell (notice), 1 = Write below etc (error), 3 = Drop and execute (critical). */
const at = (index: number, overrides: Partial<FalcoEvent> = {}): FalcoEvent => ({ ...simulatedAlert(index, Date.now()), ...overrides })

layer(Pki.layer, { excludeTestServices: true })("Falco over gRPC with mutual TLS", (it) => {
  it.effect("turns streamed alerts into one check per rule with the right severity, subjects and frameworks", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco({
        events: [at(0), at(6), at(1), at(7), at(3), at(0, { priority: "warning" })]
      })
      const { scanner, metrics } = yield* scannerWith(grpcConfig(pki, falco.port))
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "300ms" })))

      expect(report.checks.map((check) => [check.checkID, check.outcome, check.severity])).toEqual([
        ["falco.drop-and-execute-new-binary-in-container", "fail", "critical"],
        ["falco.write-below-etc", "fail", "high"],
        // notice alerts are low, but one warning alert of the rule makes the check medium
        ["falco.terminal-shell-in-container", "fail", "medium"],
        ["falco.coverage", "pass", "info"]
      ])
      const shell = report.checks[2]!
      expect(shell.title).toBe("Terminal shell in container")
      expect(shell.subjects?.reduce((sum, subject) => sum + (subject.count ?? 0), 0)).toBe(3)
      expect(shell.subjects?.every((subject) => subject.kind === "Pod" && subject.namespace !== undefined)).toBe(true)
      expect(shell.frameworks).toEqual([
        { name: "mitre-attack", controlID: "T1059" },
        { name: "nist-800-53", controlID: "AU-10" },
        { name: "pci-dss", controlID: "10.2.7" }
      ])
      expect(shell.detail).toMatch(/^\S+: Notice A shell was spawned in a container/u)
      expect(shell.detail).not.toContain("\n")
      const text = (yield* metrics.render).body
      expect(metricValue(text, "ugallu_compliance_scan_falco_grpc_events_total")).toBe(6)
      expect(yield* falco.queued).toBe(0)
    }))

  it.effect("passes with falco.no-events when nothing matches spec.falco", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco({ events: [at(0), at(2), at(5)] })
      const { scanner } = yield* scannerWith(grpcConfig(pki, falco.port))
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "200ms", minPriority: "error" })))
      expect(report.checks).toEqual([
        expect.objectContaining({ checkID: "falco.no-events", outcome: "pass", severity: "info" }),
        expect.objectContaining({ checkID: "falco.coverage", outcome: "pass", severity: "info" })
      ])
      expect(report.checks[1]!.subjects).toEqual([
        expect.objectContaining({ kind: "FalcoSource", name: "grpc", outcome: "pass", message: expect.stringMatching(/^requested \S+ to \S+; seen /u) })
      ])
      expect(report.checks[0]!.detail).toContain("priority >= error")
      expect(report.checks[0]!.detail).toContain("Falco 0.43.1")
    }))

  it.effect("the simulated Falco refuses a client without a certificate", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco({ events: [at(0)] })
      const api = loadFalcoApi()
      const client = new Grpc.Client(`localhost:${falco.port}`, Grpc.credentials.createSsl(Buffer.from(pki.main.ca.cert)))
      yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
      const error = yield* Effect.callback<Grpc.ServiceError>((resume) => {
        client.makeUnaryRequest(api.version.path, api.version.requestSerialize, api.version.responseDeserialize, {}, (failure) => {
          resume(Effect.succeed(failure as Grpc.ServiceError))
        })
      })
      expect(error?.code).toBe(Grpc.status.UNAVAILABLE)
      expect(error?.details).toMatch(/certificate required/u)
      expect(yield* falco.queued).toBe(1)
    }))

  it.effect("fails FalcoCredentialsInvalid when the client certificate is not set, missing or expired", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco()
      const failureOf = (overrides: Record<string, string | undefined>) =>
        Effect.gen(function*() {
          const { scanner } = yield* scannerWith({ ...grpcConfig(pki, falco.port), ...overrides })
          const report = yield* scanner.scan(scanRequest(falcoRun({ window: "200ms" })))
          return report.failure!
        })
      const unset = yield* failureOf({ falcoCertFile: undefined })
      expect(unset).toEqual({ reason: "FalcoCredentialsInvalid", message: "--falco-cert-file is not set" })
      const missing = yield* failureOf({ falcoKeyFile: `${pki.main.dir}/no-such.key` })
      expect(missing.reason).toBe("FalcoCredentialsInvalid")
      expect(missing.message).toMatch(/cannot read --falco-key-file .*no-such\.key.*ENOENT/u)
      const expired = yield* failureOf({ falcoCertFile: pki.expiredClient.certFile, falcoKeyFile: pki.expiredClient.keyFile })
      expect(expired.reason).toBe("FalcoCredentialsInvalid")
      expect(expired.message).toMatch(/certificate in --falco-cert-file \(CN=compliance-scan-old\) expired on \d{4}-/u)
      const mismatched = yield* failureOf({ falcoKeyFile: pki.main.server.keyFile })
      expect(mismatched.message).toMatch(/key in --falco-key-file .* does not belong to the certificate/u)
      const notPem = yield* failureOf({ falcoCARootFile: pki.main.client.keyFile })
      expect(notPem.message).toMatch(/--falco-ca-root-file .* holds no PEM certificate/u)
    }))

  it.effect("fails FalcoTLSHandshakeFailed when Falco rejects our certificate (another CA) or we reject Falco's", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco()
      const rejectedByServer = yield* scannerWith({
        ...grpcConfig(pki, falco.port),
        falcoCertFile: pki.other.client.certFile,
        falcoKeyFile: pki.other.client.keyFile
      }).pipe(Effect.flatMap(({ scanner }) => scanner.scan(scanRequest(falcoRun({ window: "200ms" })))), Effect.map((report) => report.failure!))
      expect(rejectedByServer.reason).toBe("FalcoTLSHandshakeFailed")
      expect(rejectedByServer.message).toMatch(/did not accept our client certificate|rejected our client certificate/u)

      const serverNotTrusted = yield* scannerWith({ ...grpcConfig(pki, falco.port), falcoCARootFile: pki.other.ca.certFile }).pipe(
        Effect.flatMap(({ scanner }) => scanner.scan(scanRequest(falcoRun({ window: "200ms" })))),
        Effect.map((report) => report.failure!)
      )
      expect(serverNotTrusted.reason).toBe("FalcoTLSHandshakeFailed")
      expect(serverNotTrusted.message).toMatch(/we rejected the server's certificate/u)
    }))

  it.effect("an unreachable endpoint gives the skip check and the scan returns normally", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const port = yield* closedPort
      const { scanner } = yield* scannerWith(grpcConfig(pki, port))
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "200ms" })))
      expect(report.checks).toEqual([
        expect.objectContaining({ checkID: "falco-endpoint-unreachable", outcome: "skip", severity: "info" })
      ])
      expect(report.checks[0]!.detail).toContain(`localhost:${port}`)
      expect(report.failure).toBeUndefined()

      const { scanner: unconfigured } = yield* scannerWith({})
      const nothing = yield* unconfigured.scan(scanRequest(falcoRun()))
      expect(nothing.checks.map((check) => [check.checkID, check.outcome])).toEqual([["falco-endpoint-unreachable", "skip"]])
      expect(nothing.checks[0]!.detail).toContain("No Falco source is configured")
    }))

  it.effect("an endpoint that accepts TCP but never completes TLS is unreachable after the connect timeout", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const silent = yield* silentServer
      const { scanner } = yield* scannerWith(grpcConfig(pki, silent.port), undefined, { connectTimeoutMillis: 300 })
      const started = Date.now()
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "200ms" })))
      expect(Date.now() - started).toBeLessThan(1_500)
      expect(report.checks.map((check) => [check.checkID, check.outcome])).toEqual([["falco-endpoint-unreachable", "skip"]])
      expect(report.checks[0]!.detail).toContain("timed out after 300 ms")
    }))

  it.effect("fails FalcoSpecInvalid for a window that is not a duration", () =>
    Effect.gen(function*() {
      const { scanner } = yield* scannerWith({})
      const failure = yield* Effect.flip(scanner.scan(scanRequest(falcoRun({ window: "soon" }))))
      expect(failure).toMatchObject({ reason: "FalcoSpecInvalid", message: "spec.falco.window \"soon\" is not a duration such as 30s, 5m or 1h" })
    }))

  it.effect("collection stops at the window: later alerts stay queued in Falco", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco({ eventsPerSecond: 200 })
      const { scanner, metrics } = yield* scannerWith(grpcConfig(pki, falco.port))
      const started = Date.now()
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "400ms" })))
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(400)
      expect(elapsed).toBeLessThan(2_000)
      const collected = metricValue((yield* metrics.render).body, "ugallu_compliance_scan_falco_grpc_events_total")
      expect(collected).toBeGreaterThan(20)
      expect(report.checks.length).toBeGreaterThan(1)
      expect(yield* eventually(Effect.map(falco.openStreams, (open) => open === 0))).toBe(true)
      // Nobody polls any more: what Falco raises now waits for the next run.
      expect(yield* eventually(Effect.map(falco.queued, (queued) => queued >= 20))).toBe(true)
    }))

  it.effect("a hanging stream is cut at the run's deadline and closed", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco({ behaviour: "hang", events: [at(0)] })
      const { scanner } = yield* scannerWith(grpcConfig(pki, falco.port))
      const started = Date.now()
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "1h" }), 700))
      const elapsed = Date.now() - started
      expect(elapsed).toBeLessThan(1_200)
      // Cut short by the deadline: "no events" proves nothing, and the Result says why.
      expect(report.checks.map((check) => [check.checkID, check.outcome])).toEqual([
        ["falco.no-events", "skip"],
        ["falco.coverage-incomplete", "warn"]
      ])
      expect(report.checks[1]!.detail).toMatch(/^grpc: the run's deadline ended collection \S+ before the window's end$/u)
      expect(yield* eventually(Effect.map(falco.openStreams, (open) => open === 0))).toBe(true)
    }))

  it.effect("interrupting a scan (timeout, shutdown) closes the stream", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const falco = yield* startFalco({ behaviour: "hang" })
      const { scanner } = yield* scannerWith(grpcConfig(pki, falco.port))
      const fiber = yield* Effect.forkChild(scanner.scan(scanRequest(falcoRun({ window: "1h" }), 3_600_000)))
      expect(yield* eventually(Effect.map(falco.openStreams, (open) => open === 1))).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(yield* eventually(Effect.map(falco.openStreams, (open) => open === 0))).toBe(true)
    }))

  it.effect("alerts pulled over gRPC are cut to the same per-alert budget as the receiver's", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const big = at(1)
      const falco = yield* startFalco({
        events: [{ ...big, output: "o".repeat(1_000_000), outputFields: { ...big.outputFields, "k8s.pod.name": "p".repeat(10_000) } }]
      })
      const { scanner } = yield* scannerWith(grpcConfig(pki, falco.port))
      const report = yield* scanner.scan(scanRequest(falcoRun({ window: "300ms" })))
      const subject = report.checks[0]!.subjects![0]!
      expect(subject.name).toMatch(/^p{256} … \[cut: 10000 characters, sha1 \S{12}\]$/u)
    }))
})
