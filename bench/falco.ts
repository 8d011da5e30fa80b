/**
 * Falco ingestion on this machine: `npx node bench/falco.ts [alerts]` (default 100,000).
 *
 * Two processes, so that the operator's figures are its own: this one plays Falco (the
 * simulated gRPC server, and an http_output / Falcosidekick sender), a forked child plays
 * the operator (the Falco scanner and the HTTPS receiver with a 100,000-alert buffer).
 *
 * - HTTPS receiver (mTLS) by output size: alerts per second with 1 KB and with 100 KB
 *   outputs (one per POST), and the operator's RSS and heap after each (the per-alert
 *   budget and the byte-bounded buffer at their defaults);
 * - HTTPS receiver (mTLS): alerts per second, one per POST (Falco's http_output) over 8
 *   keep-alive connections, and in batches of 100 (Falcosidekick arrays);
 * - the operator's peak RSS with its buffer full (100,000 alerts), after a run read it back;
 * - gRPC (mTLS): one run pulls N queued alerts (decode + checks), alerts per second.
 */
import { fork } from "node:child_process"
import { Agent, request } from "node:https"
import { Effect, Layer, Logger } from "effect"
import type { ComplianceScanRun } from "../src/api/ComplianceScanRun.ts"
import { FalcoReceiver, makeFalcoReceiver } from "../src/backends/falco/FalcoReceiver.ts"
import { FalcoScanner } from "../src/backends/falco/FalcoScanner.ts"
import { simulatedAlerts, toHttpJson } from "../sim/falco/SimulatedAlerts.ts"
import { makeSimulatedFalco } from "../sim/falco/SimulatedFalco.ts"
import { generateTestCertificates, type TestCertificates } from "../sim/falco/TestCertificates.ts"
import type { ScanRequest } from "../src/backends/Scanner.ts"
import { Metrics } from "../src/services/Metrics.ts"
import { OperatorConfig } from "../src/services/OperatorConfig.ts"

const bufferSize = 100_000

/** Messages between the two processes. */
type ToOperator =
  | { readonly type: "start"; readonly files: OperatorFiles; readonly falcoPort: number }
  | { readonly type: "grpc"; readonly alerts: number }
  | { readonly type: "read" }
  | { readonly type: "stats" }
  | { readonly type: "stop" }
type ToFalco =
  | { readonly type: "ready"; readonly receiverPort: number; readonly rssKiB: number; readonly heapMiB: number }
  | { readonly type: "grpc-done"; readonly millis: number; readonly checks: number; readonly rssKiB: number }
  | { readonly type: "read-done"; readonly millis: number; readonly checks: number; readonly buffered: number; readonly rssKiB: number; readonly heapMiB: number }
  | {
    readonly type: "stats-done"
    readonly rssMiB: number
    readonly peakRssKiB: number
    readonly heapMiB: number
    readonly buffered: number
    readonly bufferedMiB: number
    readonly closed: string
  }

interface OperatorFiles {
  readonly caFile: string
  readonly serverCertFile: string
  readonly serverKeyFile: string
  readonly clientCertFile: string
  readonly clientKeyFile: string
}

const peakRssKiB = () => process.resourceUsage().maxRSS
const heapUsedMiB = () => Math.round(process.memoryUsage().heapUsed / 1048576)
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`
const count = (value: number) => value.toLocaleString("en-US")
const rate = (alerts: number, millis: number) => `${count(Math.round((alerts / millis) * 1000))} alerts/s`

const scanRequest = (window: string): ScanRequest => ({
  run: { metadata: { name: "bench", namespace: "bench" }, spec: { backend: "falco", falco: { window } } } as unknown as ComplianceScanRun,
  deadline: Date.now() + 10 * 60_000,
  reportProgress: () => Effect.void
})

/** The operator side: a receiver and the scanner, driven by messages from the parent. */
const operator = Effect.gen(function*() {
  const send = (message: ToFalco) => process.send!(message)
  const next = () => Effect.callback<ToOperator>((resume) => {
    process.once("message", (message: ToOperator) => resume(Effect.succeed(message)))
  })
  const start = yield* next()
  if (start.type !== "start") return yield* Effect.die(`expected start, got ${start.type}`)
  const metrics = yield* Metrics
  const receiver = yield* makeFalcoReceiver({
    bindAddress: "127.0.0.1:0",
    certFile: start.files.serverCertFile,
    keyFile: start.files.serverKeyFile,
    clientCAFile: start.files.caFile,
    bufferSize,
    // Opened up so that the bench measures throughput, not the limiter.
    requestsPerSecond: 1e9,
    burst: 1e9
  })
  const scannerWith = (maxEventsPerRun: number) =>
    Effect.provide(FalcoScanner, FalcoScanner.layer({ maxEventsPerRun })).pipe(Effect.provide(Layer.mergeAll(
      OperatorConfig.layer({
        falcoHost: "localhost",
        falcoPort: start.falcoPort,
        falcoCertFile: start.files.clientCertFile,
        falcoKeyFile: start.files.clientKeyFile,
        falcoCARootFile: start.files.caFile
      }),
      Layer.succeed(FalcoReceiver, receiver),
      Layer.succeed(Metrics, metrics)
    )))
  send({ type: "ready", receiverPort: receiver.address!.port, rssKiB: peakRssKiB(), heapMiB: heapUsedMiB() })
  while (true) {
    const message = yield* next()
    if (message.type === "grpc") {
      const scanner = yield* scannerWith(message.alerts)
      const started = performance.now()
      const report = yield* scanner.scan(scanRequest("10m"))
      send({ type: "grpc-done", millis: performance.now() - started, checks: report.checks.length, rssKiB: peakRssKiB() })
    } else if (message.type === "stats") {
      ;(globalThis as { gc?: () => void }).gc?.()
      send({
        type: "stats-done",
        rssMiB: Math.round(process.memoryUsage().rss / 1048576),
        peakRssKiB: peakRssKiB(),
        heapMiB: heapUsedMiB(),
        buffered: yield* receiver.buffered,
        bufferedMiB: Math.round((yield* receiver.bufferedBytes) / 1048576),
        closed: (yield* metrics.render).body.split("\n").filter((line) => line.startsWith("ugallu_compliance_scan_falco_receiver_closed_connections_total")).join(", ")
      })
    } else if (message.type === "read") {
      // Receiver only: the same receiver, a scanner without --falco-host.
      const scanner = yield* Effect.provide(FalcoScanner, FalcoScanner.layer()).pipe(Effect.provide(Layer.mergeAll(
        OperatorConfig.layer({}),
        Layer.succeed(FalcoReceiver, receiver),
        Layer.succeed(Metrics, metrics)
      )))
      const started = performance.now()
      const report = yield* scanner.scan(scanRequest("1h"))
      send({
        type: "read-done",
        millis: performance.now() - started,
        checks: report.checks.length,
        buffered: yield* receiver.buffered,
        rssKiB: peakRssKiB(),
        heapMiB: heapUsedMiB()
      })
    } else {
      return
    }
  }
})

const postAll = (port: number, agent: Agent, bodies: ReadonlyArray<string>, concurrency: number) =>
  Effect.promise(() => {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < bodies.length) {
        const body = bodies[next++]!
        const status = await new Promise<number>((resolve, reject) => {
          const outgoing = request(
            { host: "127.0.0.1", port, method: "POST", path: "/", agent, headers: { "content-type": "application/json" } },
            (response) => {
              response.resume()
              response.on("end", () => resolve(response.statusCode ?? 0))
            }
          )
          outgoing.on("error", reject)
          outgoing.end(body)
        })
        if (status !== 200) throw new Error(`receiver answered ${status}`)
      }
    }
    return Promise.all(Array.from({ length: concurrency }, worker)).then(() => undefined)
  })

const filesOf = (pki: TestCertificates): OperatorFiles => ({
  caFile: pki.ca.certFile,
  serverCertFile: pki.server.certFile,
  serverKeyFile: pki.server.keyFile,
  clientCertFile: pki.client.certFile,
  clientKeyFile: pki.client.keyFile
})

/** This process: Falco and its senders. */
const falcoSide = (alerts: number) =>
  Effect.gen(function*() {
    const pki = yield* generateTestCertificates()
    const now = Date.now()
    const falco = yield* makeSimulatedFalco({
      serverCert: pki.server.cert,
      serverKey: pki.server.key,
      clientCA: pki.ca.cert,
      initialEvents: simulatedAlerts(alerts, now)
    })
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        fork(import.meta.filename, ["operator"], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [...process.execArgv, "--expose-gc"] })
      ),
      // Lets the operator exit on its own (it was told to stop) before making sure it is gone.
      (operatorProcess) =>
        Effect.callback<void>((resume) => {
          if (operatorProcess.exitCode !== null) return resume(Effect.void)
          const timer = setTimeout(() => operatorProcess.kill(), 5_000)
          operatorProcess.once("exit", () => {
            clearTimeout(timer)
            resume(Effect.void)
          })
        })
    )
    const reply = <T extends ToFalco["type"]>(type: T) =>
      Effect.callback<Extract<ToFalco, { type: T }>>((resume) => {
        child.once("message", (message: ToFalco) => {
          if (message.type === type) resume(Effect.succeed(message as Extract<ToFalco, { type: T }>))
          else resume(Effect.die(`expected ${type}, got ${message.type}`))
        })
      })
    child.send({ type: "start", files: filesOf(pki), falcoPort: falco.port } satisfies ToOperator)
    const ready = yield* reply("ready")
    console.log(`Falco bench on ${process.platform}/${process.arch}, Node ${process.version}: operator process started, peak RSS ${mib(ready.rssKiB)} (heap used ${ready.heapMiB} MiB)`)

    // A fresh Agent per phase, closed after it: the receiver closes connections idle for 5 s
    // (preparing a phase's bodies can take longer) and allows 16 connections per client.
    const postPhase = (bodies: ReadonlyArray<string>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => new Agent({ keepAlive: true, maxSockets: 8, ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key })),
        (agent) => postAll(ready.receiverPort, agent, bodies, 8),
        (agent) => Effect.sync(() => agent.destroy())
      )
    // Output size: the budget cuts 100 KB outputs to 4 KiB before they are buffered.
    for (const { label, outputBytes, total } of [
      { label: "1 KB", outputBytes: 1_000, total: Math.min(alerts, 20_000) },
      { label: "100 KB", outputBytes: 100_000, total: Math.min(alerts, 2_000) }
    ]) {
      const padding = "x".repeat(outputBytes)
      const bodies = simulatedAlerts(total, now, 3 * alerts).map((event) => JSON.stringify({ ...toHttpJson(event), output: `${event.output} ${padding}`.slice(0, outputBytes) }))
      const started = performance.now()
      yield* postPhase(bodies)
      const millis = performance.now() - started
      child.send({ type: "stats" } satisfies ToOperator)
      const stats = yield* reply("stats-done")
      console.log(
        `HTTPS receiver, ${label} outputs, one per POST, 8 connections: ${count(total)} alerts in ${millis.toFixed(0)} ms = ${rate(total, millis)}` +
          ` (${(((total * outputBytes) / millis) * 1000 / 1048576).toFixed(1)} MiB/s); operator after: RSS ${stats.rssMiB} MiB (peak ${mib(stats.peakRssKiB)}),` +
          ` heap ${stats.heapMiB} MiB, ${count(stats.buffered)} alerts buffered = ${stats.bufferedMiB} MiB accounted` +
          (stats.closed === "" ? "" : `; connections closed by limits: ${stats.closed}`)
      )
    }

    const singles = Math.min(alerts, 20_000)
    const singleBodies = simulatedAlerts(singles, now, alerts).map((event) => JSON.stringify(toHttpJson(event)))
    const singleStart = performance.now()
    yield* postPhase(singleBodies)
    const singleMillis = performance.now() - singleStart
    console.log(`HTTPS receiver (mTLS), one alert per POST (Falco http_output), 8 keep-alive connections: ${count(singles)} alerts in ${singleMillis.toFixed(0)} ms = ${rate(singles, singleMillis)}`)

    const batchSize = 100
    const batched = simulatedAlerts(bufferSize, now, 2 * alerts)
    const batchBodies: Array<string> = []
    for (let offset = 0; offset < batched.length; offset += batchSize) {
      batchBodies.push(JSON.stringify(batched.slice(offset, offset + batchSize).map((event, index) => toHttpJson(event, `bench-${offset + index}`))))
    }
    const batchStart = performance.now()
    yield* postPhase(batchBodies)
    const batchMillis = performance.now() - batchStart
    console.log(`HTTPS receiver (mTLS), batches of ${batchSize} (Falcosidekick arrays): ${count(bufferSize)} alerts in ${batchMillis.toFixed(0)} ms = ${rate(bufferSize, batchMillis)}`)

    child.send({ type: "read" } satisfies ToOperator)
    const read = yield* reply("read-done")
    console.log(`A run reading the receiver's full buffer (${count(read.buffered)} alerts) -> ${read.checks} checks: ${read.millis.toFixed(0)} ms`)
    console.log(`Operator peak RSS with ${count(read.buffered)} buffered alerts: ${mib(read.rssKiB)} (heap used ${read.heapMiB} MiB)`)

    child.send({ type: "grpc", alerts } satisfies ToOperator)
    const grpc = yield* reply("grpc-done")
    console.log(`gRPC outputs (mTLS), one run pulling ${count(alerts)} queued alerts -> ${grpc.checks} checks: ${grpc.millis.toFixed(0)} ms = ${rate(alerts, grpc.millis)} (operator peak RSS since start ${mib(grpc.rssKiB)})`)

    child.send({ type: "stop" } satisfies ToOperator)
  })

const quiet = Logger.layer([])
if (process.argv[2] === "operator") {
  Effect.runPromise(operator.pipe(Effect.scoped, Effect.provide(Metrics.layerTest), Effect.provide(quiet))).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    }
  )
} else {
  Effect.runPromise(falcoSide(Number(process.argv[2] ?? 100_000)).pipe(Effect.scoped, Effect.provide(quiet))).catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
