import { Cause, Clock, Context, DateTime, Duration, Effect, Layer, Option, Ref, Schema } from "effect"
import type { Check } from "../api/Check.ts"
import {
  type ComplianceScanRun,
  ComplianceScanRun as RunSchema,
  type ComplianceScanRunStatus,
  checkedAgainst,
  isTerminal,
  scannerNameOf,
  withDefaults
} from "../api/ComplianceScanRun.ts"
import { parseDurationMillis } from "../api/Duration.ts"
import type { Condition } from "../api/ObjectMeta.ts"
import { emptyCounts, type OutcomeCounts } from "../api/Outcome.ts"
import type { Drift } from "../api/Drift.ts"
import { isFailureReason, scanCompleted } from "../api/RunReason.ts"
import { highestSeverity, isAtLeast, type Severity } from "../api/Severity.ts"
import type { ComplianceScanResult } from "../api/ComplianceScanResult.ts"
import { type BackendStatus, backendStatusOf, type RunFailure, Scanners } from "../backends/Scanner.ts"
import { ReportWriter } from "../reports/ReportWriter.ts"
import { EventRecorder } from "../services/EventRecorder.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import type { KubeError } from "../services/kube/KubeErrors.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { Resources } from "../services/kube/Resources.ts"
import { retryTransient, retryTransientUntil } from "../services/kube/Retry.ts"
import { Metrics } from "../services/Metrics.ts"
import { OperatorConfig } from "../services/OperatorConfig.ts"
import { SecurityEvents } from "../services/SecurityEvents.ts"
import { countsTowardAlerts } from "../exceptions/ExceptionApplication.ts"
import { ExceptionCache } from "../exceptions/ExceptionCache.ts"
import { subjectLabelsWith } from "../exceptions/SubjectLabels.ts"
import { coalescedProgress } from "./CoalescedProgress.ts"
import { buildResult } from "./ResultBuilder.ts"
import { driftOfRun } from "./SeriesDrift.ts"

/** namespace/name of a run: the queue key and the FiberMap key. */
export interface RunKey {
  readonly namespace: string
  readonly name: string
}
export const runKeyString = (key: RunKey) => `${key.namespace}/${key.name}`

/**
 * The steps of a run recorded as conditions of its status (besides `Succeeded`), so that a
 * retry or another leader resumes at the first one not done.
 */
export const runSteps = ["Scanned", "ResultWritten", "EventsEmitted", "ReportsWritten"] as const
type RunStep = (typeof runSteps)[number]

const isTrue = (conditions: ReadonlyArray<Condition> | undefined, type: RunStep) =>
  conditions?.some((condition) => condition.type === type && condition.status === "True") === true

/** `conditions` with each of `updates` replacing the condition of its type (a list-map keyed by type). */
const withConditions = (conditions: ReadonlyArray<Condition> | undefined, updates: ReadonlyArray<Condition>) => [
  ...(conditions ?? []).map((condition) => updates.find((update) => update.type === condition.type) ?? condition),
  ...updates.filter((update) => !(conditions ?? []).some((condition) => condition.type === update.type))
]

/** What a run has written once its Result step is done: enough to finish it without the checks. */
interface Written {
  readonly summary: OutcomeCounts
  readonly worstSeverity: Severity | undefined
  readonly backendStatus: BackendStatus | undefined
  readonly failure: RunFailure | undefined
  readonly resultName: string | undefined
  readonly conditions: ReadonlyArray<Condition>
  /** The ComplianceExceptions the Result applied (the run's `status.exceptions`). */
  readonly exceptions?: ComplianceScanRunStatus["exceptions"]
  /** The Result as this pass stored it (the reports are built from it without reading it back). */
  readonly result?: ComplianceScanResult
}

/** What the scan produced, whether it finished, failed, timed out or crashed. */
interface ScanOutcome {
  readonly checks: ReadonlyArray<Check>
  readonly backendStatus: BackendStatus | undefined
  readonly failure: RunFailure | undefined
  /**
   * The run's resourceVersion after the scan's last progress write, when its answer showed
   * the same run, not finished: the terminal write is conditional on it (not on the version
   * the pass read, which that write made stale).
   */
  readonly runVersion?: string
}

const decodeRun = Schema.decodeUnknownEffect(RunSchema)

const isoNow = Effect.map(Clock.currentTimeMillis, (millis) => DateTime.formatIso(DateTime.makeUnsafe(millis)))

const stepCondition = (
  type: RunStep,
  status: Condition["status"],
  reason: string,
  message: string,
  now: string,
  run: ComplianceScanRun
): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: now,
  ...(run.metadata.generation === undefined ? {} : { observedGeneration: run.metadata.generation })
})

const succeededCondition = (
  status: Condition["status"],
  reason: string,
  message: string,
  now: string,
  generation: number | undefined
): Condition => ({
  type: "Succeeded",
  status,
  reason,
  message,
  lastTransitionTime: now,
  ...(generation === undefined ? {} : { observedGeneration: generation })
})

/**
 * The reconcile contract of the API (docs/api.md): one call drives a run from wherever it
 * is to its terminal phase. Every step is idempotent, so a crash or a lost leadership at any
 * point is repaired by calling it again: the Running patch is conditional, SecurityEvents and
 * Results have deterministic names, and the terminal patch is the last write.
 */
export class RunReconciler extends Context.Service<
  RunReconciler,
  {
    /**
     * `seen`: the run as the watch last delivered it. A run not started yet is started from it
     * (the Running patch is conditional on its resourceVersion, so a stale copy only costs a
     * Conflict and a read); any other run is read first.
     */
    readonly reconcile: (key: RunKey, seen?: KubeObject) => Effect.Effect<void, KubeError>
    /**
     * A run deleted before it finished (its last known state): emits ComplianceScanFailed
     * with reason Deleted, once (the event's name is deterministic), best effort.
     */
    readonly deleted: (object: KubeObject) => Effect.Effect<void>
    /** Ends a run that cannot be driven (repeated defects) Failed/InternalError with `message`. */
    readonly failInternal: (key: RunKey, message: string) => Effect.Effect<void, KubeError>
  }
>()("compliance-scan/reconciler/RunReconciler") {
  static readonly layer = Layer.effect(
    RunReconciler,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const scanners = yield* Scanners
      const securityEvents = yield* SecurityEvents
      const recorder = yield* EventRecorder
      const metrics = yield* Metrics
      const config = yield* OperatorConfig
      const reports = yield* ReportWriter
      const exceptionCache = yield* ExceptionCache

      /**
       * Status writes go through the subresource. With `ifVersion` the write is conditional
       * (Conflict when the run changed since that version); without, it always applies.
       */
      const patchStatus = (run: ComplianceScanRun, status: ComplianceScanRunStatus, ifVersion: string | undefined) =>
        retryTransient(
          kube.patch(
            Resources.ComplianceScanRun,
            run.metadata.namespace,
            run.metadata.name,
            ifVersion === undefined ? { status } : { metadata: { resourceVersion: ifVersion }, status },
            { subresource: "status" }
          )
        )

      const signalsOf = (run: ComplianceScanRun, extra: Record<string, string> = {}) => ({
        run: run.metadata.name,
        namespace: run.metadata.namespace!,
        backend: run.spec.backend,
        profile: checkedAgainst(run.spec) ?? "",
        ...extra
      })

      const emitStarted = (run: ComplianceScanRun) =>
        securityEvents.emit({
          run,
          type: "ComplianceScanStarted",
          class: "Compliance",
          severity: "info",
          signals: signalsOf(run)
        })

      /** "" -> Running, once: a Conflict means someone else moved it; the caller re-reads. */
      const start = Effect.fn("RunReconciler.start")(function*(run: ComplianceScanRun) {
        const now = yield* isoNow
        const patched = yield* patchStatus(run, {
          phase: "Running",
          startTime: now,
          ...(run.metadata.generation === undefined ? {} : { observedGeneration: run.metadata.generation }),
          conditions: [succeededCondition("Unknown", "Running", "The scan is running.", now, run.metadata.generation)]
        }, run.metadata.resourceVersion)
        yield* recorder.record(run, { type: "Normal", reason: "Started", message: `Started the ${run.spec.backend} scan.` })
        return patched
      })

      const scan = Effect.fn("RunReconciler.scan")(function*(run: ComplianceScanRun, deadline: number) {
        const backend = scannerNameOf(run.spec.backend)
        const scanner = scanners.get(backend)
        if (scanner === undefined) {
          return {
            checks: [],
            backendStatus: undefined,
            failure: { reason: "BackendUnavailable", message: `This operator has no ${backend} backend.` }
          } satisfies ScanOutcome
        }
        const remaining = Math.max(0, deadline - (yield* Clock.currentTimeMillis))
        const timeout = withDefaults(run.spec).timeout
        let runVersion: string | undefined
        const writeProgress = (backendStatus: BackendStatus) =>
          patchStatus(run, backendStatus, undefined).pipe(
            Effect.tap((written) =>
              Effect.sync(() => {
                const phase = (written.status as ComplianceScanRunStatus | undefined)?.phase
                runVersion = written.metadata.uid === run.metadata.uid && !isTerminal(phase) ? written.metadata.resourceVersion : undefined
              })
            ),
            Effect.ignore
          )
        metrics.activeRuns.inc({ backend })
        const scanWithProgress = Effect.gen(function*() {
          const progress = yield* coalescedProgress(writeProgress)
          const report = yield* scanner.scan({ run, deadline, reportProgress: progress.reportProgress })
          // The next status write (ResultWritten) carries the final backend status.
          if (report.backendStatus !== undefined) yield* progress.supersede
          return report
        })
        const outcome = yield* Effect.scoped(scanWithProgress).pipe(
          Effect.timeoutOption(Duration.millis(remaining)),
          Effect.map((report): ScanOutcome =>
            Option.match(report, {
              onNone: () => ({
                checks: [],
                backendStatus: undefined,
                failure: { reason: "Timeout", message: `The scan did not finish within its timeout of ${timeout}.` }
              }),
              onSome: (report) => ({ checks: report.checks, backendStatus: report.backendStatus, failure: report.failure })
            })
          ),
          Effect.catchTag("ScanFailed", (error) =>
            Effect.succeed<ScanOutcome>({
              checks: [],
              backendStatus: undefined,
              failure: { reason: error.reason, message: error.message }
            })),
          // A bug in a scanner fails its run, never the operator. Interruption (shutdown,
          // lost leadership) is not a failure of the run: it propagates and the run resumes
          // wherever the operator runs next.
          Effect.catchCause((cause) =>
            Cause.hasInterrupts(cause)
              ? Effect.failCause(cause)
              : Effect.logError("scanner defect", Cause.pretty(cause)).pipe(
                Effect.as<ScanOutcome>({
                  checks: [],
                  backendStatus: undefined,
                  failure: {
                    reason: "InternalError",
                    message: `The ${backend} backend failed unexpectedly: ${String(Cause.squash(cause))}`
                  }
                })
              )
          ),
          Effect.ensuring(Effect.sync(() => metrics.activeRuns.dec({ backend })))
        )
        return runVersion === undefined ? outcome : { ...outcome, runVersion }
      })

      /**
       * Create, or overwrite after a restart: an upsert; status through the subresource.
       * Answers the stored Result.
       * `onTransient` sees each transient failure of the create before it is retried.
       */
      const upsertResult = Effect.fn("RunReconciler.upsertResult")(function*(
        result: KubeObject & { status?: unknown },
        deadline: number,
        onTransient: (error: KubeError) => Effect.Effect<void>
      ) {
        const { status, ...main } = result
        const namespace = main.metadata.namespace
        const create = kube.create(Resources.ComplianceScanResult, main).pipe(
          Effect.tapError((error) => (error._tag === "Transient" ? onTransient(error) : Effect.void))
        )
        const written = yield* retryTransientUntil(create, deadline).pipe(
          Effect.catchTag("AlreadyExists", () =>
            retryTransientUntil(kube.get(Resources.ComplianceScanResult, namespace, main.metadata.name), deadline).pipe(
              Effect.flatMap((existing) =>
                retryTransientUntil(
                  kube.replace(Resources.ComplianceScanResult, {
                    ...main,
                    metadata: { ...main.metadata, resourceVersion: existing.metadata.resourceVersion }
                  }),
                  deadline
                )
              )
            )),
          Effect.retry({ times: 5, while: (error) => error._tag === "Conflict" })
        )
        // The stored Result, as the API server answers the last write.
        return yield* retryTransientUntil(
          kube.patch(Resources.ComplianceScanResult, namespace, written.metadata.name, { status }, {
            subresource: "status"
          }),
          deadline
        )
      })

      /**
       * The terminal write. Conditional on the version this pass read or last wrote the run at
       * (unchanged since, it is still this run and not terminal: no read needed); without one,
       * or on a Conflict (a label change meanwhile, a progress write still in flight when the
       * scan ended), on a fresh read.
       */
      const writeTerminal = (run: ComplianceScanRun, status: ComplianceScanRunStatus, knownVersion: string | undefined) =>
        knownVersion === undefined
          ? writeTerminalAfterRead(run, status)
          : patchStatus(run, status, knownVersion).pipe(
            Effect.as(true),
            Effect.catchTag("Conflict", () => writeTerminalAfterRead(run, status))
          )

      const writeTerminalAfterRead = (run: ComplianceScanRun, status: ComplianceScanRunStatus) =>
        retryTransient(kube.get(Resources.ComplianceScanRun, run.metadata.namespace, run.metadata.name)).pipe(
          Effect.flatMap((latest) => {
            const phase = (latest.status as ComplianceScanRunStatus | undefined)?.phase
            if (latest.metadata.uid !== run.metadata.uid || isTerminal(phase)) return Effect.succeed(false)
            return patchStatus(run, status, latest.metadata.resourceVersion)
              .pipe(Effect.as(true))
          }),
          Effect.retry({ times: 10, while: (error: KubeError) => error._tag === "Conflict" })
        )

      /**
       * A write that failed for good, or ran past the run's deadline, as the run's failure;
       * undefined for errors that are no answer about this run (the caller's policy retries).
       */
      const writeFailure = (what: string, error: KubeError, run: ComplianceScanRun): RunFailure | undefined => {
        switch (error._tag) {
          case "TooLarge":
            return { reason: what === "Result" ? "ResultTooLarge" : "EventRejected", message: `The API server refused the ${what} as too large: ${error.message}` }
          case "Invalid":
            return { reason: what === "Result" ? "ResultInvalid" : "EventRejected", message: `The API server refused the ${what}: ${error.message}` }
          case "Forbidden":
            return { reason: "Forbidden", message: `The operator may not write the ${what}: ${error.message}` }
          case "AlreadyExists":
            // Every name of the event is squatted (see SecurityEvents).
            return { reason: "EventRejected", message: error.message }
          case "Transient":
            return {
              reason: "Timeout",
              message: `The ${what} could not be written within the run's timeout of ${withDefaults(run.spec).timeout}: ${error.message}`
            }
          default:
            return undefined
        }
      }

      /**
       * One ComplianceDriftDetected per regressing run (deterministic name, so a retry finds it
       * sent), once the Result is written; again by a pass that resumes from the stored Result.
       * Best effort: the Result already carries the drift.
       */
      const emitDrift = (run: ComplianceScanRun, drift: Drift, resultName: string, deadline: number) => {
        const worst = highestSeverity(drift.regressed.map((entry) => entry.severity)) ?? "info"
        return retryTransientUntil(
          securityEvents.emit({
            run,
            type: "ComplianceDriftDetected",
            class: isAtLeast(worst, withDefaults(run.spec).alertOn) ? "Detection" : "Compliance",
            severity: worst,
            signals: signalsOf(run, {
              resultRef: resultName,
              previousResult: drift.previous.name,
              regressed: String(drift.counts.regressed),
              new: String(drift.counts.new),
              resolved: String(drift.counts.resolved),
              improved: String(drift.counts.improved),
              regressedChecks: drift.regressed.slice(0, 5).map((entry) => entry.subject === undefined ? entry.checkID : `${entry.checkID} ${entry.subject}`).join(", ")
            })
          }),
          deadline
        ).pipe(Effect.catch((error) => Effect.logWarning("could not emit ComplianceDriftDetected", { error: error.message })))
      }

      /** Writes the Result; on success records the steps Scanned and ResultWritten with the scan's outcome. */
      const writeResult = Effect.fn("RunReconciler.writeResult")(function*(
        run: ComplianceScanRun,
        outcome: ScanOutcome,
        deadline: number
      ) {
        const now = yield* isoNow
        // From the watch's store (a list only while it is not synced): no request per run.
        const exceptions = yield* retryTransientUntil(exceptionCache.current, deadline)
        const labelsOf = yield* retryTransientUntil(
          subjectLabelsWith(kube, outcome.checks, exceptions, {
            backend: scannerNameOf(run.spec.backend),
            now: Date.parse(now),
            maxDurationMillis: config.maxExceptionDurationMillis
          }),
          deadline
        )
        const built = buildResult(run, outcome.checks, outcome.failure, now, undefined, outcome.backendStatus, {
          exceptions,
          operatorNamespace: config.operatorNamespace,
          maxDurationMillis: config.maxExceptionDurationMillis,
          labelsOf
        })
        const { summary, worstSeverity, checks } = built
        // A successful scan of a series is compared with the series' previous success.
        const drift = outcome.failure === undefined
          ? yield* driftOfRun(run, outcome.checks).pipe(
            Effect.provideService(KubeClient, kube),
            Effect.catch((error) => Effect.logWarning("could not compute drift; the Result goes without it", { error: error.message }).pipe(Effect.as(undefined)))
          )
          : undefined
        const scannedCondition = stepCondition("Scanned", "True", outcome.failure?.reason ?? scanCompleted, outcome.failure?.message ?? "The scan finished.", now, run)
        // The Result's status (written last) carries the run's Scanned condition: the resume
        // point of a pass after a crash, which finishes the run from the stored Result.
        const result = {
          ...built.result,
          status: {
            ...built.result.status,
            ...(drift === undefined ? {} : { drift }),
            conditions: withConditions(built.result.status?.conditions, [scannedCondition])
          }
        }
        const base = { summary, worstSeverity, backendStatus: outcome.backendStatus }
        // Made visible once the write fails and is retried: the scan is done (its outcome is
        // held in memory until the Result is written). Not written when the Result goes through
        // at once (a request per run saved); it is no step to resume from either way.
        const scannedOnly = withConditions(run.status?.conditions, [scannedCondition])
        const retrying = yield* Ref.make(false)
        const onTransient = (error: KubeError) =>
          Effect.gen(function*() {
            yield* Effect.logWarning("writing the Result failed; retrying it until the run's deadline", { message: error.message })
            // The first failure only: the status says the scan is done and the write is being retried, and why.
            if (yield* Ref.getAndSet(retrying, true)) return
            const retryingCondition = stepCondition("ResultWritten", "False", "Retrying", `Retrying the Result write: ${error.message}`, now, run)
            yield* patchStatus(run, { conditions: withConditions(scannedOnly, [retryingCondition]) }, undefined).pipe(Effect.ignore)
          })
        const upserted = yield* Effect.result(upsertResult(result as unknown as KubeObject, deadline, onTransient))
        if (upserted._tag === "Failure") {
          const failure = writeFailure("Result", upserted.failure, run)
          if (failure === undefined) return yield* Effect.fail(upserted.failure)
          yield* Effect.logError("writing the Result failed; the run ends Failed", { reason: failure.reason, message: failure.message })
          const conditions = withConditions(run.status?.conditions, [
            scannedCondition,
            stepCondition("ResultWritten", "False", failure.reason, failure.message, now, run)
          ])
          return { ...base, failure, resultName: undefined, conditions } satisfies Written
        }
        if (drift !== undefined && drift.counts.regressed > 0) yield* emitDrift(run, drift, result.metadata.name, deadline)
        const backend = scannerNameOf(run.spec.backend)
        const benchmark = checkedAgainst(run.spec) ?? backend
        // As written (exceptions applied): waived and alert-only findings are not counted.
        for (const check of checks) {
          if (countsTowardAlerts(check)) metrics.findingsTotal.inc({ benchmark, severity: check.severity })
        }
        // Not recorded in the run's status (a request per run saved): a pass after a crash
        // finds the stored Result instead (resultWritten below).
        const conditions = withConditions(run.status?.conditions, [
          scannedCondition,
          stepCondition("ResultWritten", "True", "ResultWritten", `ComplianceScanResult ${result.metadata.name} written.`, now, run)
        ])
        return {
          ...base,
          failure: outcome.failure,
          resultName: result.metadata.name,
          conditions,
          ...(result.spec.exceptions === undefined ? {} : { exceptions: result.spec.exceptions }),
          result: upserted.success as unknown as ComplianceScanResult
        } satisfies Written
      })

      /**
       * What an earlier pass wrote, found by the Result's deterministic name: a Result of this
       * run (`derivedFromRun.uid`) whose status, written last, carries the Scanned condition.
       * None when the earlier pass did not get that far: the run is scanned again.
       */
      const resultWritten = Effect.fn("RunReconciler.resultWritten")(function*(run: ComplianceScanRun, deadline: number) {
        const stored = yield* retryTransientUntil(kube.get(Resources.ComplianceScanResult, run.metadata.namespace, run.metadata.name), deadline).pipe(
          Effect.map((object) => Option.some(object as unknown as ComplianceScanResult)),
          Effect.catchTag("NotFound", () => Effect.succeed(Option.none<ComplianceScanResult>()))
        )
        if (Option.isNone(stored)) return Option.none<Written>()
        const result = stored.value
        const scanned = result.status?.conditions?.find((condition) => condition.type === "Scanned")
        if (result.spec.derivedFromRun.uid !== run.metadata.uid || scanned === undefined) return Option.none<Written>()
        // Sent at most once (deterministic name): repeated in case the crash came before it.
        const drift = result.status?.drift
        if (drift !== undefined && drift.counts.regressed > 0) yield* emitDrift(run, drift, result.metadata.name, deadline)
        const failed = scanned.reason !== scanCompleted
        return Option.some<Written>({
          summary: result.spec.summary,
          worstSeverity: result.status?.worstSeverity,
          backendStatus: result.spec.nodes === undefined ? undefined : { nodes: result.spec.nodes },
          // A reason this operator did not write (an older version's) reads as InternalError.
          failure: failed
            ? { reason: isFailureReason(scanned.reason) ? scanned.reason : "InternalError", message: scanned.message }
            : undefined,
          resultName: result.metadata.name,
          conditions: withConditions(run.status?.conditions, [
            scanned,
            stepCondition("ResultWritten", "True", "ResultWritten", `ComplianceScanResult ${result.metadata.name} written.`, scanned.lastTransitionTime, run)
          ]),
          ...(result.spec.exceptions === undefined ? {} : { exceptions: result.spec.exceptions })
        })
      })

      /** What the status says a previous pass wrote (the step ResultWritten is True: written by older versions). */
      const writtenFromStatus = (run: ComplianceScanRun): Written => {
        const status = run.status ?? {}
        const scanned = status.conditions?.find((condition) => condition.type === "Scanned")
        const failed = scanned !== undefined && scanned.reason !== scanCompleted
        return {
          summary: status.summary ?? emptyCounts(),
          worstSeverity: status.worstSeverity,
          backendStatus: backendStatusOf(status),
          // A reason this operator did not write (an older version's) reads as InternalError.
          failure: failed
            ? { reason: isFailureReason(scanned.reason) ? scanned.reason : "InternalError", message: scanned.message }
            : undefined,
          resultName: status.resultRef?.name,
          conditions: status.conditions ?? []
        }
      }

      const finish = Effect.fn("RunReconciler.finish")(function*(run: ComplianceScanRun, written: Written, deadline: number) {
        const now = yield* isoNow
        const { summary, worstSeverity } = written
        let failure = written.failure
        let conditions = written.conditions
        if (!isTrue(conditions, "ReportsWritten") && written.resultName !== undefined) {
          // Built from the stored Result, so a pass resumed after a crash writes the same reports.
          const scannedAt = conditions.find((condition) => condition.type === "Scanned")?.lastTransitionTime ?? now
          const outcome = yield* reports.write(run, written.resultName, scannedAt, deadline, written.result)
          conditions = withConditions(conditions, [stepCondition("ReportsWritten", outcome.status, outcome.reason, outcome.message, now, run)])
        }
        if (!isTrue(conditions, "EventsEmitted")) {
          const { alertOn } = withDefaults(run.spec)
          const counts = Object.fromEntries(Object.entries(summary).map(([key, value]) => [key, String(value)]))
          const signals = signalsOf(run, {
            worstSeverity: worstSeverity ?? "",
            ...counts,
            ...(written.resultName === undefined ? {} : { resultRef: written.resultName }),
            ...(failure === undefined ? {} : { reason: failure.reason })
          })
          const severity = worstSeverity ?? "info"
          const emitted = yield* Effect.result(
            retryTransientUntil(
              failure === undefined
                ? securityEvents.emit({
                  run,
                  type: "ComplianceScanCompleted",
                  class: isAtLeast(severity, alertOn) && worstSeverity !== undefined ? "Detection" : "Compliance",
                  severity,
                  signals
                })
                : securityEvents.emit({ run, type: "ComplianceScanFailed", class: "Anomaly", severity: "high", signals }),
              deadline
            )
          )
          if (emitted._tag === "Failure") {
            const eventFailure = writeFailure("SecurityEvent", emitted.failure, run)
            if (eventFailure === undefined) return yield* Effect.fail(emitted.failure)
            yield* Effect.logError("emitting the SecurityEvent failed", { reason: eventFailure.reason, message: eventFailure.message })
            failure ??= eventFailure
            conditions = withConditions(conditions, [stepCondition("EventsEmitted", "False", eventFailure.reason, eventFailure.message, now, run)])
          } else {
            conditions = withConditions(conditions, [stepCondition("EventsEmitted", "True", "EventsEmitted", "SecurityEvents written.", now, run)])
          }
        }

        const phase = failure === undefined ? "Succeeded" : "Failed"
        const reason = failure?.reason ?? scanCompleted
        const message = failure?.message ??
          `${summary.fail} failed, ${summary.warn} to review, ${summary.pass} passed${
            worstSeverity === undefined ? "" : `; worst severity ${worstSeverity}`
          }.`
        // The last write, conditional on the version it was read at (or the backend's last
        // progress write left). A Conflict (a label change meanwhile) re-reads and tries again;
        // if another actor finished the run meanwhile, its terminal phase stands.
        const done = yield* writeTerminal(run, {
          phase,
          completionTime: now,
          reason,
          message,
          summary,
          ...(written.resultName === undefined ? {} : { resultRef: { name: written.resultName } }),
          ...(worstSeverity === undefined ? {} : { worstSeverity }),
          ...written.backendStatus,
          ...(written.exceptions === undefined ? {} : { exceptions: written.exceptions }),
          conditions: withConditions(conditions, [
            succeededCondition(phase === "Succeeded" ? "True" : "False", reason, message, now, run.metadata.generation)
          ])
        }, run.metadata.resourceVersion)
        if (!done) return
        yield* recorder.record(run, { type: phase === "Succeeded" ? "Normal" : "Warning", reason: phase, message })

        const backend = scannerNameOf(run.spec.backend)
        metrics.runsTotal.inc({ backend, outcome: phase })
        if (failure !== undefined) metrics.backendErrorsTotal.inc({ backend, reason })
        const started = Date.parse(run.status?.startTime ?? now)
        metrics.durationSeconds.observe({ backend }, Math.max(0, (Date.parse(now) - started) / 1000))
      })

      /** A run whose stored form does not decode (only possible without the CRD's validation). */
      const rejectInvalid = Effect.fn("RunReconciler.rejectInvalid")(function*(raw: KubeObject, message: string) {
        const status = raw.status as { phase?: string } | undefined
        if (status?.phase === "Succeeded" || status?.phase === "Failed") return
        const now = yield* isoNow
        yield* retryTransient(
          kube.patch(Resources.ComplianceScanRun, raw.metadata.namespace, raw.metadata.name, {
            status: { phase: "Failed", reason: "InvalidSpec", message, completionTime: now }
          }, { subresource: "status" })
        )
      })

      /** The run to drive: `seen` when it is a run not started yet, else a fresh read. */
      const currentRun = Effect.fn("RunReconciler.currentRun")(function*(key: RunKey, seen: KubeObject | undefined) {
        if (seen !== undefined && !(seen.status as { phase?: string } | undefined)?.phase) {
          const decoded = yield* Effect.result(decodeRun(seen))
          if (decoded._tag === "Success") return Option.some(decoded.success)
        }
        const raw = yield* retryTransient(kube.get(Resources.ComplianceScanRun, key.namespace, key.name)).pipe(
          Effect.map(Option.some),
          Effect.catchTag("NotFound", () => Effect.succeed(Option.none<KubeObject>()))
        )
        if (Option.isNone(raw)) return Option.none<ComplianceScanRun>()
        const decoded = yield* Effect.result(decodeRun(raw.value))
        if (decoded._tag === "Failure") {
          yield* rejectInvalid(raw.value, decoded.failure.message)
          return Option.none<ComplianceScanRun>()
        }
        return Option.some(decoded.success)
      })

      const reconcileOnce = Effect.fn("RunReconciler.reconcileOnce")(function*(key: RunKey, seen: KubeObject | undefined) {
        const current = yield* currentRun(key, seen)
        if (Option.isNone(current)) return
        let run = current.value
        if (isTerminal(run.status?.phase)) return

        const starting = !run.status?.phase
        if (starting) run = (yield* decodeRun(yield* start(run)).pipe(Effect.orDie))
        // Again on every pass: covers a crash between the Running patch and the first emit.
        yield* emitStarted(run)

        const timeoutMillis = parseDurationMillis(withDefaults(run.spec).timeout) ?? 0
        const deadline = Date.parse(run.status!.startTime!) + timeoutMillis
        // Resumes at the first step not done: a finished scan whose Result is written is never
        // run again. A run this pass started has no Result yet: nothing to look for.
        const stored = isTrue(run.status?.conditions, "ResultWritten")
          ? Option.some(writtenFromStatus(run))
          : starting
          ? Option.none<Written>()
          : yield* resultWritten(run, deadline)
        if (Option.isSome(stored)) return yield* finish(run, stored.value, deadline)
        const outcome = yield* scan(run, deadline)
        const written = yield* writeResult(run, outcome, deadline)
        // The backend's progress writes moved the run's version; the terminal write expects the last.
        yield* finish(outcome.runVersion === undefined ? run : { ...run, metadata: { ...run.metadata, resourceVersion: outcome.runVersion } }, written, deadline)
      })

      const reconcile = (key: RunKey, seen?: KubeObject) =>
        reconcileOnce(key, seen).pipe(
          // Conflict: someone wrote the run since we read it (or the watch's copy was stale).
          // Read again and carry on.
          Effect.catchTag("Conflict", () =>
            reconcileOnce(key, undefined).pipe(
              Effect.retry({ times: 9, while: (error: KubeError) => error._tag === "Conflict" })
            )),
          Effect.annotateLogs({ run: runKeyString(key) })
        )

      const failInternal = (key: RunKey, message: string) =>
        Effect.gen(function*() {
          const raw = yield* retryTransient(kube.get(Resources.ComplianceScanRun, key.namespace, key.name))
          const decoded = yield* Effect.result(decodeRun(raw))
          if (decoded._tag === "Failure") return yield* rejectInvalid(raw, decoded.failure.message)
          const run = decoded.success
          if (isTerminal(run.status?.phase)) return
          const now = yield* isoNow
          const failure: RunFailure = { reason: "InternalError", message }
          const written: Written = {
            summary: run.status?.summary ?? emptyCounts(),
            worstSeverity: run.status?.worstSeverity,
            backendStatus: backendStatusOf(run.status),
            failure,
            resultName: run.status?.resultRef?.name,
            conditions: withConditions(run.status?.conditions, [
              stepCondition("Scanned", "False", "InternalError", message, now, run)
            ])
          }
          // Best effort beyond the terminal write: the deadline is now.
          yield* finish(run, written, yield* Clock.currentTimeMillis)
        }).pipe(
          Effect.catchTag("NotFound", () => Effect.void),
          Effect.annotateLogs({ run: runKeyString(key) })
        )

      const deleted = (object: KubeObject) =>
        Effect.gen(function*() {
          const decoded = yield* Effect.result(decodeRun(object))
          if (decoded._tag === "Failure") return
          const run = decoded.success
          // Reports outside the run's namespace have no owner the garbage collector follows.
          yield* reports.removeRun(run)
          // Never started (nothing was announced) or already finished: nothing to say.
          if (run.status?.phase !== "Running") return
          yield* securityEvents.emit({
            run,
            type: "ComplianceScanFailed",
            class: "Anomaly",
            severity: "high",
            signals: signalsOf(run, { reason: "Deleted", message: "The run was deleted before it finished." })
          }).pipe(retryTransient)
          metrics.backendErrorsTotal.inc({ backend: scannerNameOf(run.spec.backend), reason: "Deleted" })
        }).pipe(
          Effect.catch((error) => Effect.logWarning("could not report the deleted run", { error: error._tag, message: error.message })),
          Effect.annotateLogs({ run: `${object.metadata.namespace}/${object.metadata.name}` })
        )

      return RunReconciler.of({ reconcile, deleted, failInternal })
    })
  )
}
