import { Context, Effect, Layer } from "effect"
import * as Prometheus from "prom-client"
import { severities } from "../api/Severity.ts"
import { failureReasonsOf, knownBenchmarks, runOutcomes, scannerNames } from "./KnownLabelValues.ts"

/** What a metric factory needs: the name, the help text and the label names. */
export interface MetricSpec<L extends string> {
  readonly name: string
  readonly help: string
  readonly labelNames?: ReadonlyArray<L>
}

/**
 * What the operator's code may do with a metric: record and read values. Narrowed from
 * prom-client's classes so nothing outside this module registers or re-labels
 * metrics behind the registry's back.
 */
export type Counter<L extends string = never> = Pick<Prometheus.Counter<L>, "inc" | "get" | "remove">
export type Gauge<L extends string = never> = Pick<Prometheus.Gauge<L>, "inc" | "dec" | "set" | "get" | "remove" | "reset">
export type Histogram<L extends string = never> = Pick<Prometheus.Histogram<L>, "observe" | "zero" | "get">

/**
 * The operator's Prometheus metrics, on a registry of its own (no module-level state, so
 * each test and each simulated operator gets a fresh one). Backends make their own metrics
 * with `counter` and `gauge` when their Layer is built.
 */
export class Metrics extends Context.Service<
  Metrics,
  {
    readonly registry: Prometheus.Registry
    /** ugallu_compliance_scan_runs_total{backend,outcome}: runs that reached a terminal phase. */
    readonly runsTotal: Counter<"backend" | "outcome">
    /** ugallu_compliance_scan_findings_total{benchmark,severity}: failed checks written to Results. */
    readonly findingsTotal: Counter<"benchmark" | "severity">
    /** ugallu_compliance_scan_duration_seconds{backend}: start to terminal phase. */
    readonly durationSeconds: Histogram<"backend">
    readonly activeRuns: Gauge<"backend">
    readonly backendErrorsTotal: Counter<"backend" | "reason">
    readonly securityEventsTotal: Counter<"type" | "class">
    readonly apiRequestsTotal: Counter<"verb" | "resource" | "code">
    readonly isLeader: Gauge
    readonly securityEventsSquattedTotal: Counter<"type">
    /**
     * The counter of that name, made on first use: idempotent, since one Metrics can outlive
     * a backend's Layer (tests build several scanners on one Metrics).
     */
    readonly counter: <L extends string = never>(spec: MetricSpec<L>) => Counter<L>
    /** The gauge of that name, made on first use (idempotent, like `counter`). */
    readonly gauge: <L extends string = never>(spec: MetricSpec<L>) => Gauge<L>
    /** The Prometheus text exposition of every metric. */
    readonly render: Effect.Effect<{ readonly contentType: string; readonly body: string }>
  }
>()("compliance-scan/services/Metrics") {
  static readonly make = (options: { readonly processMetrics: boolean }) =>
    Effect.sync(() => {
      const registry = new Prometheus.Registry()
      if (options.processMetrics) Prometheus.collectDefaultMetrics({ register: registry })
      const registers = [registry]
      // Per instance, never module-level: each Metrics has its own.
      const counters = new Map<string, Prometheus.Counter<string>>()
      const gauges = new Map<string, Prometheus.Gauge<string>>()
      const counter = <L extends string = never>(spec: MetricSpec<L>): Counter<L> => {
        const made = counters.get(spec.name) ?? new Prometheus.Counter<L>({ ...spec, labelNames: spec.labelNames ?? [], registers })
        counters.set(spec.name, made)
        return made
      }
      const gauge = <L extends string = never>(spec: MetricSpec<L>): Gauge<L> => {
        const made = gauges.get(spec.name) ?? new Prometheus.Gauge<L>({ ...spec, labelNames: spec.labelNames ?? [], registers })
        gauges.set(spec.name, made)
        return made
      }
      return initialiseKnownSeries(Metrics.of({
        counter,
        gauge,
        registry,
        runsTotal: new Prometheus.Counter({
          name: "ugallu_compliance_scan_runs_total",
          help: "ComplianceScanRuns that reached a terminal phase, by backend and outcome (Succeeded or Failed).",
          labelNames: ["backend", "outcome"],
          registers
        }),
        findingsTotal: new Prometheus.Counter({
          name: "ugallu_compliance_scan_findings_total",
          help: "Failed checks written to ComplianceScanResults, by benchmark (or profile) and severity.",
          labelNames: ["benchmark", "severity"],
          registers
        }),
        durationSeconds: new Prometheus.Histogram({
          name: "ugallu_compliance_scan_duration_seconds",
          help: "Time from a run's start to its terminal phase, in seconds.",
          labelNames: ["backend"],
          buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800],
          registers
        }),
        activeRuns: new Prometheus.Gauge({
          name: "ugallu_compliance_scan_active_runs",
          help: "Runs being scanned right now by this operator.",
          labelNames: ["backend"],
          registers
        }),
        backendErrorsTotal: new Prometheus.Counter({
          name: "ugallu_compliance_scan_backend_errors_total",
          help: "Runs that ended Failed, by backend and status.reason.",
          labelNames: ["backend", "reason"],
          registers
        }),
        securityEventsTotal: new Prometheus.Counter({
          name: "ugallu_compliance_scan_security_events_total",
          help: "SecurityEvents created (or found already created), by type and class.",
          labelNames: ["type", "class"],
          registers
        }),
        securityEventsSquattedTotal: new Prometheus.Counter({
          name: "ugallu_compliance_scan_security_events_squatted_total",
          help: "SecurityEvent names found taken by an object the operator did not write (its event went under another name), by type.",
          labelNames: ["type"],
          registers
        }),
        apiRequestsTotal: new Prometheus.Counter({
          name: "ugallu_compliance_scan_api_requests_total",
          help: "Requests to the Kubernetes API, by verb, resource and result code.",
          labelNames: ["verb", "resource", "code"],
          registers
        }),
        isLeader: new Prometheus.Gauge({
          name: "ugallu_compliance_scan_leader",
          help: "1 while this process holds the leader Lease.",
          registers
        }),
        render: Effect.promise(async () => ({ contentType: registry.contentType, body: await registry.metrics() }))
      }))
    })

  /** Fresh metrics without process collectors: tests and simulated operators. */
  static readonly layerTest = Layer.effect(Metrics, Metrics.make({ processMetrics: false }))
  static readonly layer = Layer.effect(Metrics, Metrics.make({ processMetrics: true }))
}

/**
 * A series at 0 for every known label value, from start-up: prom-client creates a labelled
 * series on its first increment, at 1, and `increase()` cannot see that first event (the
 * alerts of deploy/monitoring would miss the first failure or finding after each restart).
 */
const initialiseKnownSeries = (metrics: Metrics["Service"]): Metrics["Service"] => {
  for (const backend of scannerNames) {
    for (const outcome of runOutcomes) metrics.runsTotal.inc({ backend, outcome }, 0)
    for (const reason of failureReasonsOf(backend)) metrics.backendErrorsTotal.inc({ backend, reason }, 0)
    metrics.activeRuns.set({ backend }, 0)
    metrics.durationSeconds.zero({ backend })
  }
  for (const benchmark of knownBenchmarks) {
    for (const severity of severities) metrics.findingsTotal.inc({ benchmark, severity }, 0)
  }
  metrics.isLeader.set(0)
  return metrics
}
