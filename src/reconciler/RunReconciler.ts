import { Cause, Clock, Context, DateTime, Duration, Effect, Layer, Option, Schema } from "effect"
import type { Check } from "../api/Check.ts"
import {
  type ComplianceScanRun,
  ComplianceScanRun as RunSchema,
  type ComplianceScanRunStatus,
  isTerminal,
  type NodeScanStatus,
  scannerNameOf,
  withDefaults
} from "../api/ComplianceScanRun.ts"
import { parseDurationMillis } from "../api/Duration.ts"
import type { Condition } from "../api/ObjectMeta.ts"
import { isAtLeast } from "../api/Severity.ts"
import { Scanners } from "../backends/Scanner.ts"
import { EventRecorder } from "../services/EventRecorder.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import type { KubeError } from "../services/kube/KubeErrors.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { Resources } from "../services/kube/Resources.ts"
import { retryTransient } from "../services/kube/Retry.ts"
import { Metrics } from "../services/Metrics.ts"
import { SecurityEvents } from "../services/SecurityEvents.ts"
import { buildResult, type RunFailure } from "./ResultBuilder.ts"

/** namespace/name of a run: the queue key and the FiberMap key. */
export interface RunKey {
  readonly namespace: string
  readonly name: string
}
export const runKeyString = (key: RunKey) => `${key.namespace}/${key.name}`

/** What the scan produced, whether it finished, failed, timed out or crashed. */
interface ScanOutcome {
  readonly checks: ReadonlyArray<Check>
  readonly nodes: ReadonlyArray<NodeScanStatus> | undefined
  readonly failure: RunFailure | undefined
}

const decodeRun = Schema.decodeUnknownEffect(RunSchema)

const isoNow = Effect.map(Clock.currentTimeMillis, (millis) => DateTime.formatIso(DateTime.makeUnsafe(millis)))

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
  { readonly reconcile: (key: RunKey) => Effect.Effect<void, KubeError> }
>()("compliance-scan/reconciler/RunReconciler") {
  static readonly layer = Layer.effect(
    RunReconciler,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const scanners = yield* Scanners
      const securityEvents = yield* SecurityEvents
      const recorder = yield* EventRecorder
      const metrics = yield* Metrics

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
        profile: run.spec.benchmark ?? run.spec.profile ?? "",
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
            nodes: undefined,
            failure: { reason: "BackendUnavailable", message: `This operator has no ${backend} backend.` }
          } satisfies ScanOutcome
        }
        const remaining = Math.max(0, deadline - (yield* Clock.currentTimeMillis))
        const timeout = withDefaults(run.spec).timeout
        const reportNodes = (nodes: ReadonlyArray<NodeScanStatus>) =>
          patchStatus(run, { nodes }, undefined).pipe(
            Effect.ignore
          )
        metrics.activeRuns.inc({ backend })
        const outcome = yield* Effect.scoped(scanner.scan({ run, deadline, reportNodes })).pipe(
          Effect.timeoutOption(Duration.millis(remaining)),
          Effect.map((report): ScanOutcome =>
            Option.match(report, {
              onNone: () => ({
                checks: [],
                nodes: undefined,
                failure: { reason: "Timeout", message: `The scan did not finish within its timeout of ${timeout}.` }
              }),
              onSome: (report) => ({ checks: report.checks, nodes: report.nodes, failure: report.failure })
            })
          ),
          Effect.catchTag("ScanFailed", (error) =>
            Effect.succeed<ScanOutcome>({
              checks: [],
              nodes: undefined,
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
                  nodes: undefined,
                  failure: {
                    reason: "InternalError",
                    message: `The ${backend} backend failed unexpectedly: ${String(Cause.squash(cause))}`
                  }
                })
              )
          ),
          Effect.ensuring(Effect.sync(() => metrics.activeRuns.dec({ backend })))
        )
        return outcome
      })

      /** Create, or overwrite after a restart: an upsert; status through the subresource. */
      const upsertResult = Effect.fn("RunReconciler.upsertResult")(function*(result: KubeObject & { status?: unknown }) {
        const { status, ...main } = result
        const namespace = main.metadata.namespace
        const written = yield* retryTransient(kube.create(Resources.ComplianceScanResult, main)).pipe(
          Effect.catchTag("AlreadyExists", () =>
            retryTransient(kube.get(Resources.ComplianceScanResult, namespace, main.metadata.name)).pipe(
              Effect.flatMap((existing) =>
                retryTransient(
                  kube.replace(Resources.ComplianceScanResult, {
                    ...main,
                    metadata: { ...main.metadata, resourceVersion: existing.metadata.resourceVersion }
                  })
                )
              )
            )),
          Effect.retry({ times: 5, while: (error) => error._tag === "Conflict" })
        )
        yield* retryTransient(
          kube.patch(Resources.ComplianceScanResult, namespace, written.metadata.name, { status }, {
            subresource: "status"
          })
        )
      })

      const writeTerminal = (run: ComplianceScanRun, status: ComplianceScanRunStatus) =>
        retryTransient(kube.get(Resources.ComplianceScanRun, run.metadata.namespace, run.metadata.name)).pipe(
          Effect.flatMap((latest) => {
            const phase = (latest.status as ComplianceScanRunStatus | undefined)?.phase
            if (latest.metadata.uid !== run.metadata.uid || isTerminal(phase)) return Effect.succeed(false)
            return patchStatus(run, status, latest.metadata.resourceVersion)
              .pipe(Effect.as(true))
          }),
          Effect.retry({ times: 10, while: (error: KubeError) => error._tag === "Conflict" })
        )

      const finish = Effect.fn("RunReconciler.finish")(function*(run: ComplianceScanRun, outcome: ScanOutcome) {
        const now = yield* isoNow
        const { result, summary, worstSeverity } = buildResult(run, outcome.checks, outcome.failure, now, undefined, outcome.nodes)
        yield* upsertResult(result as unknown as KubeObject)

        const { alertOn } = withDefaults(run.spec)
        const counts = Object.fromEntries(Object.entries(summary).map(([key, value]) => [key, String(value)]))
        const signals = signalsOf(run, {
          worstSeverity: worstSeverity ?? "",
          ...counts,
          resultRef: result.metadata.name,
          ...(outcome.failure === undefined ? {} : { reason: outcome.failure.reason })
        })
        if (outcome.failure === undefined) {
          const severity = worstSeverity ?? "info"
          yield* securityEvents.emit({
            run,
            type: "ComplianceScanCompleted",
            class: isAtLeast(severity, alertOn) && worstSeverity !== undefined ? "Detection" : "Compliance",
            severity,
            signals
          })
        } else {
          yield* securityEvents.emit({ run, type: "ComplianceScanFailed", class: "Anomaly", severity: "high", signals })
        }

        const phase = outcome.failure === undefined ? "Succeeded" : "Failed"
        const reason = outcome.failure?.reason ?? "ScanCompleted"
        const message = outcome.failure?.message ??
          `${summary.fail} failed, ${summary.warn} to review, ${summary.pass} passed${
            worstSeverity === undefined ? "" : `; worst severity ${worstSeverity}`
          }.`
        // The last write, conditional on the version it was read at. A Conflict (a label
        // change, a status.nodes write) re-reads and tries again; if another actor finished the
        // run meanwhile, its terminal phase stands.
        const written = yield* writeTerminal(run, {
          phase,
          completionTime: now,
          reason,
          message,
          summary,
          resultRef: { name: result.metadata.name },
          ...(worstSeverity === undefined ? {} : { worstSeverity }),
          ...(outcome.nodes === undefined ? {} : { nodes: outcome.nodes }),
          conditions: [
            succeededCondition(phase === "Succeeded" ? "True" : "False", reason, message, now, run.metadata.generation)
          ]
        })
        if (!written) return
        yield* recorder.record(run, { type: phase === "Succeeded" ? "Normal" : "Warning", reason: phase, message })

        const backend = scannerNameOf(run.spec.backend)
        metrics.runsTotal.inc({ backend, outcome: phase })
        if (outcome.failure !== undefined) metrics.backendErrorsTotal.inc({ backend, reason })
        const benchmark = run.spec.benchmark ?? run.spec.profile ?? backend
        for (const check of result.spec.checks) {
          if (check.outcome === "fail") metrics.findingsTotal.inc({ benchmark, severity: check.severity })
        }
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

      const reconcileOnce = Effect.fn("RunReconciler.reconcileOnce")(function*(key: RunKey) {
        const raw = yield* retryTransient(kube.get(Resources.ComplianceScanRun, key.namespace, key.name)).pipe(
          Effect.map(Option.some),
          Effect.catchTag("NotFound", () => Effect.succeed(Option.none<KubeObject>()))
        )
        if (Option.isNone(raw)) return
        const decoded = yield* Effect.result(decodeRun(raw.value))
        if (decoded._tag === "Failure") return yield* rejectInvalid(raw.value, decoded.failure.message)
        let run = decoded.success
        if (isTerminal(run.status?.phase)) return

        if (!run.status?.phase) run = (yield* decodeRun(yield* start(run)).pipe(Effect.orDie))
        // Again on every pass: covers a crash between the Running patch and the first emit.
        yield* emitStarted(run)

        const timeoutMillis = parseDurationMillis(withDefaults(run.spec).timeout) ?? 0
        const deadline = Date.parse(run.status!.startTime!) + timeoutMillis
        const outcome = yield* scan(run, deadline)
        yield* finish(run, outcome)
      })

      const reconcile = (key: RunKey) =>
        reconcileOnce(key).pipe(
          // Conflict: someone wrote the run since we read it. Read again and carry on.
          Effect.retry({ times: 10, while: (error: KubeError) => error._tag === "Conflict" }),
          Effect.annotateLogs({ run: runKeyString(key) })
        )

      return RunReconciler.of({ reconcile })
    })
  )
}
