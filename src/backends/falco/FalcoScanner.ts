import { Clock, Context, Effect, Layer } from "effect"
import type { Check } from "../../api/Check.ts"
import { specDefaults } from "../../api/ComplianceScanRun.ts"
import { parseDurationMillis } from "../../api/Duration.ts"
import { Metrics } from "../../services/Metrics.ts"
import { OperatorConfig } from "../../services/OperatorConfig.ts"
import { ScanFailed, type ScanReport, type ScanRequest, type Scanner } from "../Scanner.ts"
import { loadCertificateSet } from "./CertificateFiles.ts"
import { boundAlert } from "./AlertBudget.ts"
import { endpointUnreachableCheck, type FalcoFilter, makeCheckBuilder, matchesFilter, noEventsCheck } from "./FalcoChecks.ts"
import { coverageCheck, grpcCoverage, isComplete, receiverCoverage, type SourceCoverage } from "./FalcoCoverage.ts"
import { FalcoEndpointUnreachable, FalcoSpecInvalid } from "./FalcoErrors.ts"
import { type FalcoEvent, makeDeduplicator } from "./FalcoEvent.ts"
import { loadFalcoApi } from "./FalcoProto.ts"
import { FalcoReceiver } from "./FalcoReceiver.ts"
import { collectOverGrpc } from "./GrpcCollector.ts"
import { visibleText } from "./SafeText.ts"
import { probeTls } from "./TlsProbe.ts"

/**
 * The Falco backend. A run gathers alerts from every configured source and turns the ones
 * `spec.falco` selects into one `fail` check per rule:
 *
 * - gRPC (`--falco-host`, Falco <= 0.43): connects with the client certificate (files
 *   re-read every run, so rotated Secrets apply), streams alerts for `spec.falco.window`,
 *   never past the run's deadline;
 * - the HTTPS receiver (`--falco-receiver-bind-address`, Falco 0.44+ / Falcosidekick):
 *   the alerts that arrived from `window` before the run started until its gRPC collection
 *   ended (or until the run started, without gRPC: the buffer is read back, no waiting).
 *
 * The same alert from both sources counts once. No source configured, or the gRPC endpoint
 * unreachable: the `falco-endpoint-unreachable` skip check, and the run still Succeeds.
 * Failure reasons (status.reason) are the tags of FalcoErrors.ts. Sources are independent:
 * a failing gRPC source makes the run Failed with its reason, and the receiver's findings
 * stay in the Result. Every Result says what each source saw of its window (FalcoCoverage).
 */

export interface FalcoScannerOptions {
  /** Time allowed to connect and handshake (also bounded by the deadline); default 5 s. */
  readonly connectTimeoutMillis?: number
  /** How often the stream asks Falco for queued alerts; default window/10 within 50 ms..1 s. */
  readonly pollIntervalMillis?: number
  /** Alerts one run takes from gRPC before it stops collecting (a flood must not keep it busy); default 1,000,000. */
  readonly maxEventsPerRun?: number
  /** After the window, how long to wait for the last answer; default 250 ms. */
  readonly drainGraceMillis?: number
}

const defaults = {
  connectTimeoutMillis: 5_000,
  maxEventsPerRun: 1_000_000,
  drainGraceMillis: 250,
  /** Collection ends this much before the deadline (or a tenth of what is left) so the run can write its Result. */
  deadlineMarginMillis: 1_000
} as const

const defaultPollInterval = (windowMillis: number): number => Math.min(1_000, Math.max(50, Math.floor(windowMillis / 10)))

const formatMillis = (millis: number): string =>
  millis % 60_000 === 0 && millis > 0 ? `${millis / 60_000}m` : millis % 1_000 === 0 ? `${millis / 1_000}s` : `${millis}ms`

const filterOf = (request: ScanRequest): FalcoFilter => {
  const spec = request.run.spec.falco
  return { minPriority: spec?.minPriority, rules: spec?.rules, tags: spec?.tags }
}

const describeFilter = (filter: FalcoFilter): string => {
  const parts = [
    ...(filter.minPriority === undefined ? [] : [`priority >= ${filter.minPriority}`]),
    ...(filter.rules === undefined || filter.rules.length === 0 ? [] : [`rules ${filter.rules.join(", ")}`]),
    ...(filter.tags === undefined || filter.tags.length === 0 ? [] : [`tags ${filter.tags.join(", ")}`])
  ]
  return parts.length === 0 ? "" : ` (${parts.join("; ")})`
}

const makeFalcoScanner = (options: FalcoScannerOptions) =>
  Effect.gen(function*() {
    const config = yield* OperatorConfig
    const receiver = yield* FalcoReceiver
    const metrics = yield* Metrics
    const api = loadFalcoApi()

    const grpcEvents = metrics.counter({
      name: "ugallu_compliance_scan_falco_grpc_events_total",
      help: "Falco alerts received over Falco's gRPC outputs service."
    })

    const grpcHost = config.falcoHost === undefined || config.falcoHost === "" ? undefined : config.falcoHost
    const grpcWhere = `${grpcHost}:${config.falcoPort}`

    /** Alerts over gRPC from now until the window ends or the deadline nears. */
    const collectGrpc = (host: string, windowMillis: number, deadline: number, onEvent: (event: FalcoEvent) => void) =>
      Effect.gen(function*() {
        const credentials = yield* loadCertificateSet({
          certFile: { flag: "--falco-cert-file", path: config.falcoCertFile },
          keyFile: { flag: "--falco-key-file", path: config.falcoKeyFile },
          caFile: { flag: "--falco-ca-root-file", path: config.falcoCARootFile }
        }, yield* Clock.currentTimeMillis)
        const beforeConnect = yield* Clock.currentTimeMillis
        const margin = Math.min(defaults.deadlineMarginMillis, Math.max(0, (deadline - beforeConnect) / 10))
        const stopBy = deadline - margin
        const connectTimeout = Math.min(options.connectTimeoutMillis ?? defaults.connectTimeoutMillis, stopBy - beforeConnect)
        if (connectTimeout <= 0) {
          return yield* new FalcoEndpointUnreachable({ message: `no time left before the run's deadline to connect to ${grpcWhere}` })
        }
        yield* probeTls({ host, port: config.falcoPort, credentials, timeoutMillis: connectTimeout })
        const connected = yield* Clock.currentTimeMillis
        const until = Math.min(connected + windowMillis, stopBy)
        const onBoundedEvent = (event: FalcoEvent) => onEvent(boundAlert(event))
        const collection = yield* collectOverGrpc({
          api,
          host,
          port: config.falcoPort,
          credentials,
          until,
          connectDeadline: Math.min(connected + connectTimeout, stopBy),
          pollIntervalMillis: options.pollIntervalMillis ?? defaultPollInterval(windowMillis),
          drainGraceMillis: Math.max(0, Math.min(options.drainGraceMillis ?? defaults.drainGraceMillis, deadline - until)),
          maxEvents: options.maxEventsPerRun ?? defaults.maxEventsPerRun,
          onEvent: onBoundedEvent
        })
        grpcEvents.inc(collection.received)
        if (collection.truncated) {
          yield* Effect.logWarning(`Falco gRPC: stopped collecting after ${collection.received} alerts (the per-run cap)`)
        }
        const cutShort = collection.error !== undefined
          ? `the stream failed at ${new Date(collection.endedAt).toISOString()}, before the window's end: ${collection.error.message}`
          : collection.truncated
          ? `stopped taking alerts after the per-run cap of ${collection.received}`
          : collection.endedEarly
          ? `Falco ended the stream at ${new Date(collection.endedAt).toISOString()}, before the window's end`
          : until < connected + windowMillis
          ? `the run's deadline ended collection ${formatMillis(connected + windowMillis - until)} before the window's end`
          : undefined
        return { collection, coverage: grpcCoverage({ from: connected, to: connected + windowMillis, seenTo: collection.endedAt, cutShort }) }
      }).pipe(Effect.scoped)

    const scan = (request: ScanRequest): Effect.Effect<ScanReport, FalcoSpecInvalid> =>
      Effect.gen(function*() {
        const windowText = request.run.spec.falco?.window ?? specDefaults.falcoWindow
        const windowMillis = parseDurationMillis(windowText)
        if (windowMillis === undefined) {
          return yield* new FalcoSpecInvalid({ message: `spec.falco.window ${JSON.stringify(windowText)} is not a duration such as 30s, 5m or 1h` })
        }
        if (grpcHost === undefined && receiver.address === undefined) {
          return {
            checks: [endpointUnreachableCheck(
              "No Falco source is configured: neither --falco-host (gRPC outputs) nor --falco-receiver-bind-address (HTTPS receiver) is set."
            )]
          }
        }
        const startedAt = yield* Clock.currentTimeMillis
        const sources: Array<string> = []
        const checks: Array<Check> = []
        const coverage: Array<SourceCoverage> = []
        let failure: ScanReport["failure"]
        // Alerts are filtered, de-duplicated and tallied as they arrive, never all kept.
        const filter = filterOf(request)
        const selected = matchesFilter(filter)
        const firstSeen = makeDeduplicator()
        const builder = makeCheckBuilder()
        let collected = 0
        const accept = (event: FalcoEvent) => {
          collected++
          if (selected(event) && firstSeen(event)) builder.add(event)
        }

        if (grpcHost !== undefined) {
          const outcome = yield* Effect.result(collectGrpc(grpcHost, windowMillis, request.deadline, accept))
          if (outcome._tag === "Success") {
            const { collection } = outcome.success
            sources.push(`gRPC ${grpcWhere} (Falco ${collection.falcoVersion})`)
            coverage.push(outcome.success.coverage)
            if (collection.error !== undefined) failure = { reason: collection.error.reason, message: visibleText(collection.error.message) }
          } else {
            const error = outcome.failure
            const failedAt = yield* Clock.currentTimeMillis
            coverage.push(grpcCoverage({
              from: startedAt,
              to: startedAt + windowMillis,
              seenTo: startedAt,
              cutShort: `nothing collected from ${grpcWhere}: ${error.message}`
            }))
            if (error instanceof FalcoEndpointUnreachable) {
              checks.push(endpointUnreachableCheck(`Falco gRPC endpoint ${grpcWhere} unreachable: ${error.message}`))
              yield* Effect.logWarning(`Falco gRPC endpoint unreachable: ${error.message}`)
            } else {
              failure = { reason: error.reason, message: visibleText(error.message) }
              yield* Effect.logWarning(`Falco gRPC source failed at ${new Date(failedAt).toISOString()}: ${error.message}`)
            }
          }
        }
        if (receiver.address !== undefined) {
          const endedAt = yield* Clock.currentTimeMillis
          const read = yield* receiver.read(startedAt - windowMillis, endedAt)
          for (const event of read.events) accept(event)
          sources.push(`the HTTPS receiver on port ${receiver.address.port}`)
          coverage.push(receiverCoverage(read.coverage))
        }

        if (sources.length > 0) {
          if (builder.size() === 0) {
            checks.push(noEventsCheck(
              `No Falco alerts${describeFilter(filter)} in ${formatMillis(windowMillis)} from ${sources.join(" and ")}.`,
              isComplete(coverage)
            ))
          } else {
            checks.unshift(...builder.checks()) // a check per rule: far fewer than alerts
          }
          checks.push(coverageCheck(coverage))
        }
        yield* Effect.logInfo(
          `Falco: ${collected} alerts collected, ${builder.size()} matching, ${checks.length} checks`
        )
        return failure === undefined ? { checks } : { checks, failure }
      })

    return {
      name: "falco",
      scan: (request) =>
        scan(request).pipe(Effect.mapError(ScanFailed.from))
    } satisfies Scanner
  })

/** The Falco backend as a service (needs OperatorConfig, Metrics and FalcoReceiver). */
export class FalcoScanner extends Context.Service<FalcoScanner, Scanner>()(
  "compliance-scan/backends/falco/FalcoScanner"
) {
  static readonly layer = (options: FalcoScannerOptions = {}) => Layer.effect(FalcoScanner, makeFalcoScanner(options))
}
