import type { IncomingMessage, ServerResponse } from "node:http"
import { createServer, type Server } from "node:https"
import type { AddressInfo } from "node:net"
import { gunzip } from "node:zlib"
import { Clock, Context, Effect, Layer, Option, Result, Schedule, Schema, type Scope } from "effect"
import { Metrics } from "../../services/Metrics.ts"
import { KubeClient } from "../../services/kube/KubeClient.ts"
import { OperatorConfig } from "../../services/OperatorConfig.ts"
import { parseBindAddress } from "../../services/BindAddress.ts"
import { type CertificateSet, loadCertificateSet } from "./CertificateFiles.ts"
import { alertBytes } from "./AlertBudget.ts"
import { ClientRateLimiter } from "./ClientRateLimiter.ts"
import { type ConnectionLimits, defaultConnectionLimits, guardConnections, serverTimeoutOptions } from "./ConnectionGuard.ts"
import { DropLedger, type DropReason } from "./DropLedger.ts"
import { EventCompactor } from "./EventCompactor.ts"
import { EventRingBuffer } from "./EventRingBuffer.ts"
import type { FalcoEvent } from "./FalcoEvent.ts"
import type { ReceiverCoverage } from "./FalcoCoverage.ts"
import { decodeAlerts } from "./FalcoPayload.ts"
import { makeLeaseHolderProbe } from "./LeaseHolder.ts"

/**
 * The HTTPS endpoint Falco 0.44+ (`http_output`) and Falcosidekick (webhook output) POST
 * alerts to, since Falco no longer serves them over gRPC. One per operator, shared by all
 * runs: it keeps recent alerts in a bounded ring buffer and each run reads its window back.
 * Clients must present a certificate signed by the client CA (mTLS).
 */

/** Settings that have no operator flag (yet): the defaults of the operator's receiver. */
export const receiverDefaults = {
  /**
   * Accounted bytes of buffered alerts: with each alert cut to its budget (AlertBudget.ts)
   * this bounds the buffer's heap, well inside the Deployment's 512Mi limit.
   */
  bufferBytes: 32 * 1024 * 1024,
  /**
   * Request bodies held at once, over all connections; beyond it 503 + Retry-After. With
   * one JSON parse at a time (the event loop) this bounds what requests in flight cost.
   */
  maxInFlightBodyBytes: 16 * 1024 * 1024,
  /** Larger requests get 413; Falco sends one alert (a few KiB) per request. */
  maxBodyBytes: 1024 * 1024,
  /** Per client (remote address): sustained requests per second and burst, beyond which 429. */
  requestsPerSecond: 500,
  burst: 1_000,
  /** Alerts older than this (by arrival) leave the buffer even when it is not full. */
  maxEventAgeMillis: 60 * 60_000,
  /** How often the receiver's own certificate files are re-read (rotated Secrets). */
  certificateReloadMillis: 60_000,
  /** Timeouts and connection caps (ConnectionGuard.ts). */
  connections: defaultConnectionLimits
} as const

export interface FalcoReceiverOptions {
  /** `host:port`; port 0 picks a free port (tests). */
  readonly bindAddress: string
  readonly certFile: string | undefined
  readonly keyFile: string | undefined
  readonly clientCAFile: string | undefined
  /** Ring buffer capacity in alerts. */
  readonly bufferSize: number
  /** Ring buffer capacity in accounted bytes (AlertBudget.alertBytes); default `receiverDefaults.bufferBytes`. */
  readonly bufferBytes?: number | undefined
  readonly maxBodyBytes?: number
  readonly maxInFlightBodyBytes?: number
  readonly requestsPerSecond?: number
  readonly burst?: number
  readonly maxEventAgeMillis?: number
  readonly certificateReloadMillis?: number
  readonly connections?: Partial<ConnectionLimits>
  /**
   * Whether this replica should take alerts now (with leader election: it holds the Lease).
   * Asked at start and every `servingCheckMillis`; a replica that should not answers 503.
   * Absent: always take them.
   */
  readonly shouldServe?: Effect.Effect<boolean> | undefined
  readonly servingCheckMillis?: number
}

export class FalcoReceiverStartFailed extends Schema.TaggedError<FalcoReceiverStartFailed>()("FalcoReceiverStartFailed", {
  message: Schema.String
}) {}

export interface FalcoReceiverShape {
  /** Where it listens (the real port when 0 was asked for); undefined when the receiver is off. */
  readonly address: { readonly host: string; readonly port: number } | undefined
  /**
   * Alerts that arrived in [from, to] (epoch ms), oldest first, and what the receiver could
   * not see of that span (started late, retention, alerts dropped).
   */
  readonly read: (from: number, to: number) => Effect.Effect<ReceiverRead>
  /** How many alerts the buffer holds now. */
  readonly buffered: Effect.Effect<number>
  /** The accounted bytes the buffer holds now. */
  readonly bufferedBytes: Effect.Effect<number>
  /** Whether it takes alerts now (false on a standby, and when off). */
  readonly serving: Effect.Effect<boolean>
}

export interface ReceiverRead {
  readonly events: ReadonlyArray<FalcoEvent>
  readonly coverage: ReceiverCoverage
}

const disabled: FalcoReceiverShape = {
  address: undefined,
  read: () => Effect.die("the Falco receiver is off"),
  buffered: Effect.succeed(0),
  bufferedBytes: Effect.succeed(0),
  serving: Effect.succeed(false)
}

const certificateFlags = (options: FalcoReceiverOptions) => ({
  certFile: { flag: "--falco-receiver-cert-file", path: options.certFile },
  keyFile: { flag: "--falco-receiver-key-file", path: options.keyFile },
  caFile: { flag: "--falco-receiver-client-ca-file", path: options.clientCAFile }
})

const receiverMetrics = (metrics: Metrics["Service"]) => ({
  received: metrics.counter({
    name: "ugallu_compliance_scan_falco_receiver_events_total",
    help: "Falco alerts accepted by the HTTPS receiver, by payload format (falco http_output or falcosidekick).",
    labelNames: ["format"]
  }),
  dropped: metrics.counter({
    name: "ugallu_compliance_scan_falco_receiver_events_dropped_total",
    help: "Buffered Falco alerts dropped before any run read them: the oldest, when the buffer was full in alerts or bytes (capacity) or too old (age).",
    labelNames: ["reason"]
  }),
  rejected: metrics.counter({
    name: "ugallu_compliance_scan_falco_receiver_rejected_requests_total",
    help: "Requests to the Falco receiver refused, by reason (tls, standby, method, rate_limited, too_large, overloaded, unsupported_encoding, malformed).",
    labelNames: ["reason"]
  }),
  buffered: metrics.gauge({
    name: "ugallu_compliance_scan_falco_receiver_buffered_events",
    help: "Falco alerts held in the receiver's ring buffer."
  }),
  serving: metrics.gauge({
    name: "ugallu_compliance_scan_falco_receiver_serving",
    help: "1 when this replica's Falco receiver takes alerts (the leader, or leader election off), 0 when it refuses them as a standby."
  }),
  connections: metrics.gauge({
    name: "ugallu_compliance_scan_falco_receiver_open_connections",
    help: "Connections open to the Falco receiver."
  }),
  closedConnections: metrics.counter({
    name: "ugallu_compliance_scan_falco_receiver_closed_connections_total",
    help: "Connections the Falco receiver closed on a limit: connection_limit (total or per client), request_timeout (headers or whole request too slow), idle_timeout.",
    labelNames: ["reason"]
  }),
  limits: metrics.gauge({
    name: "ugallu_compliance_scan_falco_receiver_limit",
    help: "The Falco receiver's configured limits (timeouts in seconds, sizes in bytes, counts).",
    labelNames: ["limit"]
  }),
  bufferedBytes: metrics.gauge({
    name: "ugallu_compliance_scan_falco_receiver_buffered_bytes",
    help: "Accounted bytes of the Falco alerts in the receiver's ring buffer (bounded by --falco-receiver-buffer-bytes)."
  })
})

type RejectReason = "standby" | "method" | "rate_limited" | "too_large" | "overloaded" | "unsupported_encoding" | "malformed"

const reply = (response: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
  if (response.headersSent) return
  response.writeHead(status, { "content-type": "application/json", ...headers })
  response.end(JSON.stringify(body))
}

const listen = (server: Server, host: string | undefined, port: number) =>
  Effect.callback<AddressInfo, FalcoReceiverStartFailed>((resume) => {
    const onError = (error: Error) =>
      resume(Effect.fail(new FalcoReceiverStartFailed({ message: `cannot listen on ${host ?? "*"}:${port}: ${error.message}` })))
    server.once("error", onError)
    server.listen(port, host, () => {
      server.off("error", onError)
      resume(Effect.succeed(server.address() as AddressInfo))
    })
  })

const sameCertificates = (a: CertificateSet, b: CertificateSet): boolean =>
  a.cert.equals(b.cert) && a.key.equals(b.key) && a.ca.equals(b.ca)

/**
 * Starts the receiver; closed (connections dropped) when the Scope closes. Alerts are
 * counted and buffered on arrival; malformed, oversized and over-rate requests are refused
 * per request, so one bad sender never costs the others their alerts.
 */
export const makeFalcoReceiver = (
  options: FalcoReceiverOptions
): Effect.Effect<FalcoReceiverShape, FalcoReceiverStartFailed, Scope.Scope | Metrics> =>
  Effect.gen(function*() {
    const parsed = parseBindAddress(options.bindAddress)
    if (Result.isFailure(parsed) || parsed.success === undefined) {
      return yield* new FalcoReceiverStartFailed({
        message: `--falco-receiver-bind-address ${JSON.stringify(options.bindAddress)} is not host:port`
      })
    }
    const bind = parsed.success
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    let certificates = yield* loadCertificateSet(certificateFlags(options), now()).pipe(
      Effect.mapError((error) => new FalcoReceiverStartFailed({ message: `Falco receiver: ${error.message}` }))
    )
    const metrics = receiverMetrics(yield* Metrics)
    const limits: ConnectionLimits = { ...receiverDefaults.connections, ...options.connections }
    const maxBodyBytes = options.maxBodyBytes ?? receiverDefaults.maxBodyBytes
    const maxInFlightBodyBytes = options.maxInFlightBodyBytes ?? receiverDefaults.maxInFlightBodyBytes
    let inFlightBodyBytes = 0
    const maxAgeMillis = options.maxEventAgeMillis ?? receiverDefaults.maxEventAgeMillis
    const buffer = new EventRingBuffer({
      capacity: options.bufferSize,
      maxBytes: options.bufferBytes ?? receiverDefaults.bufferBytes,
      maxAgeMillis
    })
    // Since when every alert sent to this replica has been taken; undefined while a standby.
    let takingAlertsSince: number | undefined = options.shouldServe === undefined ? now() : undefined
    const drops = new DropLedger(2 * maxAgeMillis)
    const lost = (reason: DropReason) => (receivedAt: number) => {
      drops.record(receivedAt, reason)
      metrics.dropped.inc({ reason })
    }
    const lostToAge = lost("age")
    const lostToCapacity = lost("capacity")
    const updateGauges = () => {
      metrics.buffered.set(buffer.size)
      metrics.bufferedBytes.set(buffer.bytes)
    }
    const published: Record<string, number> = {
      handshake_timeout_seconds: limits.handshakeTimeoutMillis / 1000,
      headers_timeout_seconds: limits.headersTimeoutMillis / 1000,
      request_timeout_seconds: limits.requestTimeoutMillis / 1000,
      idle_timeout_seconds: limits.idleTimeoutMillis / 1000,
      max_connections: limits.maxConnections,
      max_connections_per_client: limits.maxConnectionsPerClient,
      max_body_bytes: maxBodyBytes,
      max_in_flight_body_bytes: maxInFlightBodyBytes,
      buffer_alerts: buffer.capacity,
      buffer_bytes: buffer.maxBytes
    }
    for (const [limit, value] of Object.entries(published)) metrics.limits.set({ limit }, value)
    const compactor = new EventCompactor()
    const limiter = new ClientRateLimiter({
      ratePerSecond: options.requestsPerSecond ?? receiverDefaults.requestsPerSecond,
      burst: options.burst ?? receiverDefaults.burst
    })

    const expire = (at: number) => {
      buffer.expire(at, lostToAge)
      drops.prune(at)
    }

    const reject = (response: ServerResponse, status: number, reason: RejectReason, message: string, headers: Record<string, string> = {}) => {
      metrics.rejected.inc({ reason })
      // Refused alerts the sender may not send again: a gap in the windows that cover now.
      if (reason === "rate_limited" || reason === "too_large" || reason === "overloaded") drops.record(now(), reason)
      reply(response, status, { error: message }, headers)
    }

    const accept = (response: ServerResponse, body: Buffer) => {
      let parsed: unknown
      try {
        parsed = JSON.parse(body.toString("utf8"))
      } catch (error) {
        return reject(response, 400, "malformed", `malformed JSON: ${error instanceof Error ? error.message : String(error)}`)
      }
      const decoded = decodeAlerts(parsed)
      if (Result.isFailure(decoded)) return reject(response, 400, "malformed", `not a Falco alert: ${decoded.failure}`)
      const at = now()
      expire(at)
      buffer.push(decoded.success.map((alert) => {
        const event = compactor.compact(alert.event)
        return { event, bytes: alertBytes(event) }
      }), at, lostToCapacity)
      for (const alert of decoded.success) metrics.received.inc({ format: alert.format })
      updateGauges()
      reply(response, 200, { accepted: decoded.success.length })
    }

    const handle = (request: IncomingMessage, response: ServerResponse) => {
      if (takingAlertsSince === undefined) {
        // Refuse rather than accept alerts no scan would read (only the leader scans).
        request.resume()
        return reject(response, 503, "standby", "this operator replica is a standby: only the leader takes Falco alerts", {
          "retry-after": "2"
        })
      }
      if (request.method !== "POST") {
        request.resume()
        return reject(response, 405, "method", "only POST is accepted", { allow: "POST" })
      }
      const client = request.socket.remoteAddress ?? "unknown"
      if (!limiter.take(client, now())) {
        request.resume()
        return reject(response, 429, "rate_limited", `too many requests from ${client}`, {
          "retry-after": String(limiter.retryAfterSeconds(client))
        })
      }
      const encoding = (request.headers["content-encoding"] ?? "identity").toLowerCase()
      if (encoding !== "identity" && encoding !== "gzip") {
        request.resume()
        return reject(response, 415, "unsupported_encoding", `content-encoding ${encoding} is not supported (use identity or gzip)`)
      }
      const tooLarge = () =>
        reject(response, 413, "too_large", `request body larger than ${maxBodyBytes} bytes`, { connection: "close" })
      if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) {
        // Read and discard the rest so the sender sees the answer instead of a reset.
        request.resume()
        return tooLarge()
      }
      const chunks: Array<Buffer> = []
      let length = 0
      let refused: "too_large" | "overloaded" | undefined
      const release = () => {
        inFlightBodyBytes -= length
        length = 0
        chunks.length = 0
      }
      request.once("close", release)
      request.on("data", (chunk: Buffer) => {
        if (refused !== undefined) return
        if (length + chunk.length > maxBodyBytes) refused = "too_large"
        else if (inFlightBodyBytes + chunk.length > maxInFlightBodyBytes) refused = "overloaded"
        if (refused !== undefined) {
          // Keep reading (and discarding) so the sender gets the answer rather than a reset.
          release()
          return
        }
        length += chunk.length
        inFlightBodyBytes += chunk.length
        chunks.push(chunk)
      })
      request.on("end", () => {
        if (refused === "too_large") return tooLarge()
        if (refused === "overloaded") {
          return reject(response, 503, "overloaded", `the receiver holds ${maxInFlightBodyBytes} bytes of requests already: retry`, {
            "retry-after": "1",
            connection: "close"
          })
        }
        const body = Buffer.concat(chunks)
        release()
        if (encoding === "identity") return accept(response, body)
        gunzip(body, { maxOutputLength: maxBodyBytes }, (error, inflated) => {
          if (error === null) return accept(response, inflated)
          if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") return tooLarge()
          reject(response, 400, "malformed", `gzip body does not inflate: ${error.message}`)
        })
      })
      request.on("error", () => response.destroy())
    }

    const server = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const created = createServer({
          cert: certificates.cert,
          key: certificates.key,
          ca: certificates.ca,
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: "TLSv1.2",
          ...serverTimeoutOptions(limits)
        }, handle)
        created.on("tlsClientError", () => metrics.rejected.inc({ reason: "tls" }))
        guardConnections(created, limits, {
          opened: (open) => metrics.connections.set(open),
          released: (open) => metrics.connections.set(open),
          closed: (reason) => {
            metrics.closedConnections.inc({ reason })
            // A refused connection may have carried alerts: a gap for the windows covering now.
            if (reason === "connection_limit") drops.record(now(), "connection_limit")
          }
        })
        return created
      }),
      (created) =>
        Effect.callback<void>((resume) => {
          created.close(() => resume(Effect.void))
          created.closeAllConnections()
        })
    )
    const bound = yield* listen(server, bind.host, bind.port)
    yield* Effect.logInfo(
      `Falco receiver listening on ${bound.address}:${bound.port} (mTLS, buffer ${options.bufferSize} alerts, ${buffer.maxBytes} bytes)`
    )

    metrics.serving.set(takingAlertsSince === undefined ? 0 : 1)
    if (options.shouldServe !== undefined) {
      const follow = Effect.gen(function*() {
        const serve = yield* options.shouldServe!
        if (serve === (takingAlertsSince !== undefined)) return
        takingAlertsSince = serve ? now() : undefined
        metrics.serving.set(serve ? 1 : 0)
        yield* Effect.logInfo(serve ? "Falco receiver: taking alerts (this replica leads)" : "Falco receiver: refusing alerts (this replica is a standby)")
      })
      yield* follow
      yield* follow.pipe(Effect.repeat(Schedule.spaced(options.servingCheckMillis ?? 1_000)), Effect.forkScoped)
    }

    // Rotated Secrets take effect without a restart; a broken rotation keeps the old files.
    const reload = Effect.gen(function*() {
      const fresh = yield* loadCertificateSet(certificateFlags(options), now())
      if (sameCertificates(fresh, certificates)) return
      server.setSecureContext({ cert: fresh.cert, key: fresh.key, ca: fresh.ca })
      certificates = fresh
      yield* Effect.logInfo("Falco receiver: reloaded its certificates")
    }).pipe(Effect.catch((error) => Effect.logWarning(`Falco receiver: keeping the previous certificates: ${error.message}`)))
    yield* reload.pipe(
      Effect.repeat(Schedule.spaced(options.certificateReloadMillis ?? receiverDefaults.certificateReloadMillis)),
      Effect.forkScoped
    )

    return {
      address: { host: bound.address, port: bound.port },
      read: (from, to) =>
        Effect.sync(() => {
          const at = now()
          expire(at)
          updateGauges()
          return {
            events: buffer.between(from, to),
            coverage: {
              from,
              to,
              // A read while a standby (no scan should do that) sees nothing: all of it is a gap.
              takingAlertsSince: takingAlertsSince ?? at,
              retainedSince: at - maxAgeMillis,
              oldestRetainedAt: buffer.oldestReceivedAt,
              drops: drops.between(from, to)
            }
          }
        }),
      buffered: Effect.sync(() => buffer.size),
      bufferedBytes: Effect.sync(() => buffer.bytes),
      serving: Effect.sync(() => takingAlertsSince !== undefined)
    } satisfies FalcoReceiverShape
  })

/** The operator's receiver: started with the operator when `falcoReceiverBindAddress` is set. */
export class FalcoReceiver extends Context.Service<FalcoReceiver, FalcoReceiverShape>()(
  "compliance-scan/backends/falco/FalcoReceiver"
) {
  static readonly layer: Layer.Layer<FalcoReceiver, FalcoReceiverStartFailed, OperatorConfig | Metrics> = Layer.effect(
    FalcoReceiver,
    Effect.gen(function*() {
      const config = yield* OperatorConfig
      if (config.falcoReceiverBindAddress === undefined || config.falcoReceiverBindAddress === "") return disabled
      // With leader election, only the replica holding the Lease takes alerts (standbys answer
      // 503). Without a Kubernetes client (tests, the demo) there is no Lease to follow.
      const kube = yield* Effect.serviceOption(KubeClient)
      const shouldServe = config.leaderElect && Option.isSome(kube)
        ? yield* makeLeaseHolderProbe(kube.value, {
          namespace: config.leaderElectionNamespace,
          name: config.leaderElectionID,
          identity: config.identity
        })
        : undefined
      return yield* makeFalcoReceiver({
        shouldServe,
        servingCheckMillis: config.retryPeriodMillis,
        bindAddress: config.falcoReceiverBindAddress,
        certFile: config.falcoReceiverCertFile,
        keyFile: config.falcoReceiverKeyFile,
        clientCAFile: config.falcoReceiverClientCAFile,
        bufferSize: config.falcoReceiverBufferSize,
        bufferBytes: config.falcoReceiverBufferBytes
      })
    })
  )

  /** A receiver with explicit options (tests, bench, demo). */
  static readonly layerWith = (options: FalcoReceiverOptions): Layer.Layer<FalcoReceiver, FalcoReceiverStartFailed, Metrics> =>
    Layer.effect(FalcoReceiver, makeFalcoReceiver(options))

  /** No receiver: runs read nothing from it. */
  static readonly layerDisabled: Layer.Layer<FalcoReceiver> = Layer.succeed(FalcoReceiver, disabled)
}
