import { Clock, Context, Duration, Effect, Layer, Queue, Schema } from "effect"
import { type ComplianceException, kind as exceptionKind, modeOf } from "../api/ComplianceException.ts"
import { ComplianceScanRun as RunSchema, isTerminal } from "../api/ComplianceScanRun.ts"
import { apiVersion } from "../api/ObjectMeta.ts"
import { kind as eventKind, type SecurityEvent } from "../api/SecurityEvent.ts"
import { seriesOf } from "../api/SeriesLabels.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import type { KubeError } from "../services/kube/KubeErrors.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { listAll } from "../services/kube/ListWatch.ts"
import { Resources } from "../services/kube/Resources.ts"
import { retryTransient } from "../services/kube/Retry.ts"
import { exceptionStates } from "../services/KnownLabelValues.ts"
import { Metrics } from "../services/Metrics.ts"
import { OperatorConfig } from "../services/OperatorConfig.ts"
import { ExceptionCache } from "./ExceptionCache.ts"
import { listExceptions } from "./ExceptionList.ts"
import { assessException, type ExceptionEventType, type RunView } from "./ExceptionStatus.ts"

/** How often statuses are refreshed at most apart (sooner when an exception starts expiring or expires). */
export const exceptionSyncMillis = 60_000

/**
 * The one name of an exception's event of a type for one expiry: written once (AlreadyExists
 * means sent); a renewed exception (new expiresAt) gets its own events.
 */
export const exceptionEventName = (exception: ComplianceException, type: ExceptionEventType): string =>
  `compliance-scan-exception-${exception.metadata.uid}-${type === "ComplianceExceptionExpired" ? "expired" : "expiring"}-${
    Math.floor(Date.parse(exception.spec.expiresAt) / 1000).toString(36)
  }`

const decodeRun = Schema.decodeUnknownOption(RunSchema)

/** Finished runs that wrote a Result: the history exceptions are judged by. */
const runViews = (objects: ReadonlyArray<KubeObject>): ReadonlyArray<RunView> =>
  objects.flatMap((object): ReadonlyArray<RunView> => {
    const decoded = decodeRun(object)
    if (decoded._tag === "None") return []
    const run = decoded.value
    if (!isTerminal(run.status?.phase) || run.status?.resultRef === undefined) return []
    return [{
      namespace: run.metadata.namespace!,
      name: run.metadata.name,
      backend: run.spec.backend,
      series: seriesOf(run.metadata.labels),
      finishedAt: Date.parse(run.status.completionTime ?? run.metadata.creationTimestamp ?? "1970-01-01T00:00:00Z"),
      exceptions: run.status.exceptions ?? []
    }]
  })

/** JSON with object keys sorted: the API server answers keys in its own order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value ?? {}, (_, entry: unknown) =>
    entry !== null && typeof entry === "object" && !Array.isArray(entry)
      ? Object.fromEntries(Object.entries(entry).sort(([a], [b]) => a.localeCompare(b)))
      : entry)

const sameStatus = (a: unknown, b: unknown) => canonical(a) === canonical(b)

/**
 * Keeps every ComplianceException's status (matched, lastMatchedTime, Active/Expired/Unused)
 * and the ugallu_compliance_scan_exceptions gauge current, and writes the Expiring (7 days
 * before) and Expired SecurityEvents, each once. It only reads exceptions and writes their
 * status: creating or changing one is the approvers' business (docs/api.md).
 */
export class ExceptionStatusController extends Context.Service<
  ExceptionStatusController,
  {
    /** One pass over every exception; answers when the next pass is due (epoch milliseconds). */
    readonly syncOnce: Effect.Effect<number, KubeError>
    /** Passes until interrupted (while leading). */
    readonly run: Effect.Effect<never>
  }
>()("compliance-scan/exceptions/ExceptionStatusController") {
  static readonly layer = Layer.effect(
    ExceptionStatusController,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const metrics = yield* Metrics
      const config = yield* OperatorConfig
      const cache = yield* ExceptionCache
      const gauge = metrics.gauge({
        name: "ugallu_compliance_scan_exceptions",
        help: "ComplianceExceptions by state (active, expiring within 7 days, expired, unused in the last runs); an exception can count in several.",
        labelNames: ["state"]
      })
      // Every state at 0 from start-up (see KnownLabelValues).
      for (const state of exceptionStates) gauge.set({ state }, 0)

      const emit = Effect.fn("ExceptionStatusController.emit")(function*(exception: ComplianceException, type: ExceptionEventType, now: number) {
        const event: SecurityEvent = {
          apiVersion,
          kind: eventKind,
          metadata: {
            name: exceptionEventName(exception, type),
            labels: {
              "app.kubernetes.io/managed-by": "compliance-scan",
              "security.ugallu.io/exception-uid": exception.metadata.uid ?? "",
              "security.ugallu.io/event-type": type
            }
          },
          spec: {
            class: "Compliance",
            type,
            severity: type === "ComplianceExceptionExpired" ? "medium" : "low",
            clusterIdentity: { clusterName: config.clusterName, clusterID: config.clusterID },
            source: { apiVersion, kind: "Operator", name: "compliance-scan", version: config.version, instance: config.identity },
            subject: {
              apiVersion,
              kind: exceptionKind,
              name: exception.metadata.name,
              namespace: exception.metadata.namespace!,
              ...(exception.metadata.uid === undefined ? {} : { uid: exception.metadata.uid })
            },
            detectedAt: new Date(now).toISOString(),
            signals: {
              exception: exception.metadata.name,
              namespace: exception.metadata.namespace!,
              mode: modeOf(exception.spec),
              expiresAt: exception.spec.expiresAt,
              approvedBy: exception.spec.approvedBy,
              ...(exception.spec.ticket === undefined ? {} : { ticket: exception.spec.ticket })
            },
            ...(exception.metadata.uid === undefined ? {} : { correlationID: exception.metadata.uid })
          }
        }
        const created = yield* Effect.result(retryTransient(kube.create(Resources.SecurityEvent, event)))
        if (created._tag === "Success") {
          metrics.securityEventsTotal.inc({ type, class: "Compliance" })
          yield* Effect.logInfo("ComplianceException event written", { type, exception: `${exception.metadata.namespace}/${exception.metadata.name}` })
        } else if (created.failure._tag !== "AlreadyExists") {
          return yield* Effect.fail(created.failure)
        }
      })

      const syncOnce = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // With --watch-namespace another operator may own the rest: only this namespace's
        // exceptions and the cluster-wide ones (the runs it sees are this namespace's too).
        const exceptions = (yield* listExceptions).filter((exception) =>
          config.watchNamespace === undefined ||
          exception.metadata.namespace === config.watchNamespace ||
          exception.metadata.namespace === config.operatorNamespace
        )
        const runs = runViews((yield* listAll(Resources.ComplianceScanRun, {
          ...(config.watchNamespace === undefined ? {} : { namespace: config.watchNamespace })
        })).items)
        const counts = new Map<string, number>(exceptionStates.map((state) => [state, 0]))
        let next = now + exceptionSyncMillis
        for (const exception of exceptions) {
          const assessment = assessException(exception, runs, {
            now,
            maxDurationMillis: config.maxExceptionDurationMillis,
            unusedAfterRuns: config.exceptionUnusedAfterRuns
          })
          for (const state of assessment.states) counts.set(state, counts.get(state)! + 1)
          if (assessment.nextChange !== undefined) next = Math.min(next, assessment.nextChange)
          if (assessment.event !== undefined) yield* emit(exception, assessment.event, now)
          if (!sameStatus(exception.status, assessment.status)) {
            yield* retryTransient(
              kube.patch(Resources.ComplianceException, exception.metadata.namespace, exception.metadata.name, { status: assessment.status }, {
                subresource: "status"
              })
            ).pipe(Effect.catchTag("NotFound", () => Effect.void))
          }
        }
        for (const [state, value] of counts) gauge.set({ state }, value)
        return next
      }).pipe(Effect.provideService(KubeClient, kube))

      const run = Effect.scoped(Effect.gen(function*() {
        // Any change of an exception (created, renewed, deleted) wakes the loop at once, so
        // a new exception's status and its Expiring event do not wait for the next pass.
        // The watch also keeps the ExceptionCache that runs read.
        const changed = yield* Queue.sliding<void>(1)
        yield* cache.follow(Queue.offer(changed, undefined).pipe(Effect.asVoid)).pipe(Effect.forkScoped)
        while (true) {
          const next = yield* syncOnce.pipe(
            Effect.catch((error) =>
              Effect.logWarning("refreshing ComplianceException statuses failed; retrying", { error: error._tag, message: error.message }).pipe(
                Effect.andThen(Effect.map(Clock.currentTimeMillis, (now) => now + exceptionSyncMillis))
              )
            )
          )
          const now = yield* Clock.currentTimeMillis
          // Just past the next boundary (expiresAt is exclusive), or at the next change.
          yield* Effect.raceFirst(Effect.sleep(Duration.millis(Math.max(1, next - now + 1))), Queue.take(changed))
          // Our own status writes come back as changes too: at most two passes a second.
          yield* Effect.sleep("500 millis")
        }
      })) as Effect.Effect<never>

      return ExceptionStatusController.of({ syncOnce, run })
    })
  )
}
