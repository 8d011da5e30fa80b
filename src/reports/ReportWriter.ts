import { Clock, Context, Effect, Layer, Ref } from "effect"
import type { ComplianceScanResult } from "../api/ComplianceScanResult.ts"
import type { ComplianceScanRun } from "../api/ComplianceScanRun.ts"
import { resultByteBudget } from "../reconciler/ResultBuilder.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import type { KubeError } from "../services/kube/KubeErrors.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { Resources, type ResourceType } from "../services/kube/Resources.ts"
import { retryTransient, retryTransientUntil } from "../services/kube/Retry.ts"
import { OperatorConfig } from "../services/OperatorConfig.ts"
import { annotations, buildReports, labels, managedBy, reportKeyOf, reportName } from "./OpenReports.ts"
import { type ReportApiName, reportApiNames, reportApis, selectReportApis } from "./ReportApis.ts"

/** How the reports step of a run ended: the run's `ReportsWritten` condition. */
export interface ReportsOutcome {
  readonly status: "True" | "False"
  readonly reason: string
  readonly message: string
}

/**
 * With `--report-api=auto`, how long what was served stays the answer before a run asks again
 * (until OpenReports is found: nothing can change the choice after that). Bounds the probes
 * to 2 lists per interval however many runs finish in it.
 */
export const reportApiReprobeMillis = 15_000

/** Time the reports step gets even when the run's own deadline has passed (a resumed run). */
const minimumWindowMillis = 30_000

const keyOf = (object: KubeObject) => `${object.metadata.namespace ?? ""}/${object.metadata.name}`

/**
 * Writes the OpenReports (and/or wgpolicyk8s PolicyReports) of a run's Result and removes
 * them with the run. Which APIs it writes is `--report-api`; `auto` asks the API server
 * which are served (a one-item list of each cluster report kind: 404 means not served) at
 * start-up and again at a run once the last answer is `reportApiReprobeMillis` old, so
 * installing the CRDs later turns reports on without a restart. Each change of what is
 * served is logged.
 */
export class ReportWriter extends Context.Service<
  ReportWriter,
  {
    /**
     * Writes the reports of the run's Result `resultName`; `finishedAt` is every result's
     * timestamp. `written`: the Result as this pass stored it (create and status accepted),
     * used instead of reading it back.
     */
    readonly write: (
      run: ComplianceScanRun,
      resultName: string,
      finishedAt: string,
      deadline: number,
      written?: ComplianceScanResult
    ) => Effect.Effect<ReportsOutcome, KubeError>
    /** Deletes every report the run wrote (best effort: a report elsewhere has no owner to collect it). */
    readonly removeRun: (run: ComplianceScanRun) => Effect.Effect<void>
    /**
     * Deletes the reports of runs that no longer exist (deleted while no operator watched):
     * run once by each new leader.
     */
    readonly sweepOrphans: Effect.Effect<void>
    /** The report APIs the API server serves now (and logs when that changed). */
    readonly detect: Effect.Effect<ReadonlySet<ReportApiName>>
  }
>()("compliance-scan/reports/ReportWriter") {
  static readonly layer = Layer.effect(
    ReportWriter,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const config = yield* OperatorConfig
      const lastServed = yield* Ref.make<ReadonlySet<ReportApiName> | undefined>(undefined)
      // When lastServed was asked (epoch milliseconds).
      const lastProbeAt = yield* Ref.make(0)

      const isServed = (name: ReportApiName) =>
        retryTransient(kube.list(reportApis[name].cluster, { limit: 1 }), 3).pipe(
          Effect.as(true),
          Effect.catchTag("NotFound", () => Effect.succeed(false)),
          Effect.catch((error) =>
            Effect.logWarning("could not tell whether a report API is served", { api: name, error: error._tag, message: error.message })
              .pipe(Effect.as(false))
          )
        )

      const detect = Effect.gen(function*() {
        yield* Ref.set(lastProbeAt, yield* Clock.currentTimeMillis)
        const served = new Set<ReportApiName>()
        for (const name of reportApiNames) if (yield* isServed(name)) served.add(name)
        const previous = yield* Ref.getAndSet(lastServed, served)
        const same = previous !== undefined && previous.size === served.size && [...served].every((name) => previous.has(name))
        if (!same) {
          yield* Effect.logInfo("report APIs detected", {
            served: [...served].join(",") || "none",
            reportApi: config.reportApi,
            writing: selectReportApis(config.reportApi, served).join(",") || "none"
          })
        }
        return served as ReadonlySet<ReportApiName>
      })

      /**
       * The APIs a run writes, probing only what could change them: nothing for an explicit
       * --report-api (it names its APIs), and for `auto` nothing once OpenReports is known to
       * be served (it wins over wgpolicyk8s), else at most once per `reportApiReprobeMillis`.
       * A write refused with NotFound forgets what was known, so the next run probes again.
       */
      const apisForWrite = Effect.gen(function*() {
        if (config.reportApi !== "auto") return selectReportApis(config.reportApi, new Set())
        const known = yield* Ref.get(lastServed)
        const fresh = (yield* Clock.currentTimeMillis) - (yield* Ref.get(lastProbeAt)) < reportApiReprobeMillis
        return selectReportApis("auto", known !== undefined && (known.has("openreports") || fresh) ? known : yield* detect)
      })

      const upsert = (resource: ResourceType, report: KubeObject, deadline: number) =>
        retryTransientUntil(kube.create(resource, report), deadline).pipe(
          Effect.catchTag("AlreadyExists", () =>
            retryTransientUntil(kube.get(resource, report.metadata.namespace, report.metadata.name), deadline).pipe(
              Effect.flatMap((existing) =>
                retryTransientUntil(
                  kube.replace(resource, {
                    ...report,
                    metadata: { ...report.metadata, resourceVersion: existing.metadata.resourceVersion }
                  }),
                  deadline
                )
              )
            )),
          Effect.retry({ times: 5, while: (error) => error._tag === "Conflict" })
        )

      /** Every object of `resource` (matching `selector`), all pages, in all namespaces. */
      const listAll = (resource: ResourceType, selector: string | undefined, deadline: number) =>
        Effect.gen(function*() {
          const found: Array<KubeObject> = []
          let token: string | undefined
          do {
            const page = yield* retryTransientUntil(
              kube.list(resource, {
                limit: 500,
                ...(selector === undefined ? {} : { labelSelector: selector }),
                ...(token === undefined ? {} : { continue: token })
              }),
              deadline
            )
            found.push(...page.items)
            token = page.continue
          } while (token !== undefined)
          return found
        })

      /** Every report of `api` matching `selector`, in all namespaces and cluster-wide. */
      const listReports = (name: ReportApiName, selector: string, deadline: number) =>
        Effect.gen(function*() {
          const api = reportApis[name]
          const found: Array<{ resource: ResourceType; object: KubeObject }> = []
          for (const resource of [api.namespaced, api.cluster]) {
            for (const object of yield* listAll(resource, selector, deadline)) found.push({ resource, object })
          }
          return found
        })

      const deleteQuietly = (resource: ResourceType, object: KubeObject, deadline: number) =>
        retryTransientUntil(kube.delete(resource, object.metadata.namespace, object.metadata.name), deadline).pipe(
          Effect.catchTag("NotFound", () => Effect.void)
        )

      /** A newer run of the same series already wrote its reports: this run's are history. */
      const superseded = (name: ReportApiName, run: ComplianceScanRun, deadline: number) =>
        retryTransientUntil(kube.get(reportApis[name].cluster, undefined, reportName(run, 1)), deadline).pipe(
          Effect.map((existing) => {
            const theirs = existing.metadata.annotations?.[annotations.runCreated]
            const ours = run.metadata.creationTimestamp
            return existing.metadata.labels?.[labels.runUID] !== run.metadata.uid && theirs !== undefined &&
              ours !== undefined && Date.parse(theirs) > Date.parse(ours)
          }),
          Effect.catchTag("NotFound", () => Effect.succeed(false))
        )

      const writeApi = (name: ReportApiName, run: ComplianceScanRun, result: ComplianceScanResult, finishedAt: string, deadline: number) =>
        Effect.gen(function*() {
          const api = reportApis[name]
          if (yield* superseded(name, run, deadline)) return { written: 0, superseded: true }
          // Which namespaces exist matters only for findings about namespaced objects.
          const namespaced = result.spec.checks.some((check) => check.subjects?.some((subject) => subject.namespace !== undefined) === true)
          const namespaces = namespaced
            ? new Set((yield* listAll(Resources.Namespace, undefined, deadline)).map((object) => object.metadata.name))
            : undefined
          const reports = buildReports(api, { run, result, finishedAt, budget: resultByteBudget, ...(namespaces === undefined ? {} : { namespaces }) })
          for (const report of reports) {
            yield* upsert(report.metadata.namespace === undefined ? api.cluster : api.namespaced, report, deadline)
          }
          // What an earlier write of the same run or series left that this one did not write
          // (a namespace without findings now, fewer parts): removed, so only the latest is current.
          const written = new Set(reports.map(keyOf))
          const stale = (yield* listReports(name, `${labels.managedBy}=${managedBy},${labels.reportKey}=${reportKeyOf(run)}`, deadline))
            .filter(({ object }) => !written.has(keyOf(object)))
          for (const { resource, object } of stale) yield* deleteQuietly(resource, object, deadline)
          return { written: reports.length, superseded: false }
        })

      const refusal = (error: KubeError): ReportsOutcome | undefined => {
        switch (error._tag) {
          case "NotFound":
            return { status: "False", reason: "ReportApiMissing", message: `The report API is not served: ${error.message}` }
          case "Invalid":
          case "TooLarge":
            return { status: "False", reason: "ReportRejected", message: `The API server refused a report: ${error.message}` }
          case "Forbidden":
            return { status: "False", reason: "Forbidden", message: `The operator may not write reports: ${error.message}` }
          case "Transient":
            return { status: "False", reason: "Timeout", message: `The reports could not be written in time: ${error.message}` }
          default:
            return undefined
        }
      }

      const write = Effect.fn("ReportWriter.write")(function*(
        run: ComplianceScanRun,
        resultName: string,
        finishedAt: string,
        runDeadline: number,
        written?: ComplianceScanResult
      ) {
        const apis = yield* apisForWrite
        if (apis.length === 0) {
          return {
            status: "True",
            reason: config.reportApi === "none" ? "ReportsDisabled" : "NoReportApi",
            message: config.reportApi === "none"
              ? "Reports are turned off (--report-api=none)."
              : "Neither OpenReports nor wgpolicyk8s is served: no reports written."
          } satisfies ReportsOutcome
        }
        const deadline = Math.max(runDeadline, (yield* Clock.currentTimeMillis) + minimumWindowMillis)
        const attempt = Effect.gen(function*() {
          const stored = written ?? (yield* retryTransientUntil(kube.get(Resources.ComplianceScanResult, run.metadata.namespace, resultName), deadline).pipe(
            Effect.map((object) => object as unknown as ComplianceScanResult),
            Effect.catchTag("NotFound", () => Effect.succeed(undefined))
          ))
          if (stored === undefined) {
            return {
              status: "False",
              reason: "ResultMissing",
              message: `The Result ${resultName} the reports are built from is gone.`
            } satisfies ReportsOutcome
          }
          const result = stored
          const outcomes: Array<string> = []
          for (const name of apis) {
            const { written, superseded } = yield* writeApi(name, run, result, finishedAt, deadline)
            outcomes.push(superseded ? `${name}: a newer run of the series wrote its reports` : `${name}: ${written} reports`)
          }
          return { status: "True", reason: "ReportsWritten", message: `Reports written (${outcomes.join("; ")}).` } satisfies ReportsOutcome
        })
        return yield* attempt.pipe(
          Effect.catch((error) => {
            const outcome = refusal(error)
            if (outcome === undefined) return Effect.fail(error)
            return Effect.logError("writing the reports failed", { reason: outcome.reason, message: outcome.message }).pipe(
              Effect.andThen(error._tag === "NotFound" ? Ref.set(lastServed, undefined) : Effect.void),
              Effect.as(outcome)
            )
          })
        )
      })

      const removeRun = (run: ComplianceScanRun) =>
        Effect.gen(function*() {
          if (run.metadata.uid === undefined) return
          const deadline = (yield* Clock.currentTimeMillis) + minimumWindowMillis
          for (const name of reportApiNames) {
            const found = yield* listReports(name, `${labels.managedBy}=${managedBy},${labels.runUID}=${run.metadata.uid}`, deadline).pipe(
              Effect.catchTag("NotFound", () => Effect.succeed([]))
            )
            for (const { resource, object } of found) yield* deleteQuietly(resource, object, deadline)
          }
        }).pipe(
          Effect.catch((error) => Effect.logWarning("could not remove the reports of a deleted run", { error: error._tag, message: error.message }))
        )

      const sweepOrphans = Effect.gen(function*() {
        const deadline = (yield* Clock.currentTimeMillis) + minimumWindowMillis
        const served = yield* detect
        for (const name of reportApiNames) {
          if (!served.has(name)) continue
          const byRun = new Map<string, Array<{ resource: ResourceType; object: KubeObject }>>()
          for (const found of yield* listReports(name, `${labels.managedBy}=${managedBy}`, deadline)) {
            const uid = found.object.metadata.labels?.[labels.runUID]
            if (uid === undefined) continue
            byRun.set(uid, [...(byRun.get(uid) ?? []), found])
          }
          for (const [uid, reports] of byRun) {
            // "namespace/name" of the run that wrote them.
            const [runNamespace, runName] = (reports[0]!.object.metadata.annotations?.[annotations.run] ?? "").split("/")
            if (runNamespace === undefined || runName === undefined) continue
            const alive = yield* retryTransientUntil(kube.get(Resources.ComplianceScanRun, runNamespace, runName), deadline).pipe(
              Effect.map((run) => run.metadata.uid === uid),
              Effect.catchTag("NotFound", () => Effect.succeed(false))
            )
            if (alive) continue
            yield* Effect.logInfo("removing the reports of a run that no longer exists", { run: `${runNamespace}/${runName}`, uid, reports: reports.length })
            for (const { resource, object } of reports) yield* deleteQuietly(resource, object, deadline)
          }
        }
      }).pipe(
        Effect.catch((error) => Effect.logWarning("could not look for reports of deleted runs", { error: error._tag, message: error.message }))
      )

      // At start-up, without holding it up: an API server that does not answer yet is asked again at the first run.
      yield* Effect.forkScoped(detect)

      return ReportWriter.of({ write, removeRun, sweepOrphans, detect })
    })
  )
}
