import { request } from "node:https"
import { createServer } from "node:net"
import { Context, Effect, Layer } from "effect"
import type { ComplianceScanRun } from "../../../src/api/ComplianceScanRun.ts"
import { FalcoReceiver, type FalcoReceiverOptions, makeFalcoReceiver } from "../../../src/backends/falco/FalcoReceiver.ts"
import { FalcoScanner, type FalcoScannerOptions } from "../../../src/backends/falco/FalcoScanner.ts"
import { type CertificateFiles, generateTestCertificates, type TestCertificates } from "../../../sim/falco/TestCertificates.ts"
import type { ScanRequest } from "../../../src/backends/Scanner.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { OperatorConfig, type OperatorConfigShape } from "../../../src/services/OperatorConfig.ts"

/** Certificates generated once per test file: a main CA (server + client), an unrelated CA, an expired client. */
export class Pki extends Context.Service<Pki, {
  readonly main: TestCertificates
  readonly other: TestCertificates
  readonly expiredClient: CertificateFiles
}>()("test/falco/Pki") {
  static readonly layer = Layer.effect(
    Pki,
    Effect.gen(function*() {
      const [main, other] = yield* Effect.all([
        generateTestCertificates(),
        generateTestCertificates({ caCommonName: "unrelated-ca" })
      ], { concurrency: 2 })
      const dayMillis = 86_400_000
      const expiredClient = yield* main.issue({
        name: "expired-client",
        commonName: "compliance-scan-old",
        usage: "client",
        notBefore: new Date(Date.now() - 30 * dayMillis),
        notAfter: new Date(Date.now() - dayMillis)
      })
      return { main, other, expiredClient }
    })
  )
}

/** gRPC client settings of the operator pointing at `port` with the main PKI's client certificate. */
export const grpcConfig = (pki: Pki["Service"], port: number): Partial<OperatorConfigShape> => ({
  falcoHost: "localhost",
  falcoPort: port,
  falcoCertFile: pki.main.client.certFile,
  falcoKeyFile: pki.main.client.keyFile,
  falcoCARootFile: pki.main.ca.certFile
})

/** A Falco scanner as the operator builds it, with its own metrics. */
export const scannerWith = (
  config: Partial<OperatorConfigShape>,
  receiver: Layer.Layer<FalcoReceiver> = FalcoReceiver.layerDisabled,
  options: FalcoScannerOptions = {}
) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const scanner = yield* Effect.provide(FalcoScanner, FalcoScanner.layer({ connectTimeoutMillis: 2_000, ...options }))
    return { scanner, metrics }
  }).pipe(Effect.provide(Layer.mergeAll(OperatorConfig.layer(config), receiver, Metrics.layerTest)))

export const falcoRun = (falco: NonNullable<ComplianceScanRun["spec"]["falco"]> = {}): ComplianceScanRun =>
  ({
    apiVersion: "security.ugallu.io/v1alpha1",
    kind: "ComplianceScanRun",
    metadata: { name: "runtime", namespace: "ugallu-system", uid: "4f1c2b1e-0000-4000-8000-000000000001" },
    spec: { backend: "falco", falco }
  }) as unknown as ComplianceScanRun

export const scanRequest = (run: ComplianceScanRun, deadlineInMillis = 20_000): ScanRequest => ({
  run,
  deadline: Date.now() + deadlineInMillis,
  reportProgress: () => Effect.void
})

/** A TCP server that accepts connections and never answers (a stuck or filtered endpoint). */
export const silentServer = Effect.acquireRelease(
  Effect.callback<{ readonly port: number; readonly close: () => void }>((resume) => {
    const sockets = new Set<import("node:net").Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
    server.listen(0, "127.0.0.1", () => {
      const close = () => {
        for (const socket of sockets) socket.destroy()
        server.close()
      }
      resume(Effect.succeed({ port: (server.address() as { port: number }).port, close }))
    })
  }),
  (server) => Effect.sync(() => server.close())
)

/** A port nothing listens on (bound then released). */
export const closedPort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number }
    server.close(() => resume(Effect.succeed(port)))
  })
})

export interface PostResult {
  readonly status: number
  readonly body: string
  readonly headers: Record<string, string | Array<string> | undefined>
}

/**
 * POSTs `body` to the receiver as Falco would. Fails (with the socket error's text) when
 * the TLS handshake or connection is refused.
 */
export const post = (options: {
  /** Default 127.0.0.1. */
  readonly host?: string
  readonly port: number
  readonly body: string | Buffer
  readonly ca: string
  readonly client?: CertificateFiles | undefined
  readonly localAddress?: string
  readonly headers?: Record<string, string>
  readonly method?: string
}) =>
  Effect.callback<PostResult, string>((resume) => {
    const outgoing = request({
      host: options.host ?? "127.0.0.1",
      port: options.port,
      method: options.method ?? "POST",
      path: "/",
      ca: options.ca,
      ...(options.client === undefined ? {} : { cert: options.client.cert, key: options.client.key }),
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      agent: false,
      headers: { "content-type": "application/json", ...options.headers }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        resume(Effect.succeed({
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
          headers: response.headers
        }))
      )
    })
    outgoing.on("error", (error: NodeJS.ErrnoException) => resume(Effect.fail(`${error.code ?? ""} ${error.message}`)))
    outgoing.end(options.body)
  })

/** The value of one sample in Prometheus text, or 0 when absent. */
export const metricValue = (text: string, sample: string): number => {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${sample} `))
  return line === undefined ? 0 : Number(line.slice(sample.length + 1))
}

/** Polls `probe` until it holds, for at most `timeoutMillis`. */
export const eventually = <E, R>(probe: Effect.Effect<boolean, E, R>, timeoutMillis = 3_000) =>
  Effect.gen(function*() {
    const until = Date.now() + timeoutMillis
    while (Date.now() < until) {
      if (yield* probe) return true
      yield* Effect.sleep(25)
    }
    return yield* probe
  })

/** A receiver on a free port with the main PKI, its metrics, and a POST helper with the main client certificate. */
export const startReceiver = (overrides: Partial<FalcoReceiverOptions> = {}) =>
  Effect.gen(function*() {
    const pki = yield* Pki
    const metrics = yield* Metrics
    const receiver = yield* makeFalcoReceiver({
      bindAddress: "127.0.0.1:0",
      certFile: pki.main.server.certFile,
      keyFile: pki.main.server.keyFile,
      clientCAFile: pki.main.ca.certFile,
      bufferSize: 1_000,
      ...overrides
    })
    const port = receiver.address!.port
    const send = (body: unknown, options: { readonly localAddress?: string; readonly headers?: Record<string, string> } = {}) =>
      post({
        port,
        ca: pki.main.ca.cert,
        client: pki.main.client,
        body: Buffer.isBuffer(body) ? body : typeof body === "string" ? body : JSON.stringify(body),
        ...options
      })
    const metric = (sample: string) => Effect.map(metrics.render, (rendered) => metricValue(rendered.body, sample))
    return { receiver, port, send, metric, layer: Layer.succeed(FalcoReceiver, receiver) }
  }).pipe(Effect.provide(Metrics.layerTest))
