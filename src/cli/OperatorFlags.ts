import { Config, Option } from "effect"
import { Flag } from "effect/cli"
import { reportApiChoices } from "../reports/ReportApis.ts"
import { defaultOperatorConfig } from "../services/OperatorConfig.ts"

/**
 * Every flag of `run` is also an environment variable: the flag name upper-cased with
 * dashes as underscores (`--job-namespace` = JOB_NAMESPACE, `--kubeconfig` = KUBECONFIG).
 * A flag on the command line wins over the variable.
 */
export const envName = (flag: string) => flag.toUpperCase().replaceAll("-", "_")

const describe = (flag: string, description: string) => `${description} [env ${envName(flag)}]`

export const stringFlag = (name: string, description: string, fallback: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${JSON.stringify(fallback)})`)),
    Flag.withFallbackConfig(Config.String(envName(name))),
    Flag.withDefault(fallback)
  )

export const optionalStringFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(describe(name, description)),
    Flag.withFallbackConfig(Config.String(envName(name))),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  )

export const intFlag = (name: string, description: string, fallback: number) =>
  Flag.Int(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${fallback})`)),
    Flag.withFallbackConfig(Config.Int(envName(name))),
    Flag.withDefault(fallback)
  )

export const booleanFlag = (name: string, description: string, fallback: boolean) =>
  Flag.Boolean(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${fallback})`)),
    Flag.withFallbackConfig(Config.Boolean(envName(name))),
    Flag.withDefault(fallback)
  )

/** Durations as Kubernetes spells them (`15s`), in milliseconds. */
export const durationFlag = (name: string, description: string, fallbackMillis: number) =>
  Flag.String(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${fallbackMillis / 1000}s)`)),
    Flag.withFallbackConfig(Config.String(envName(name))),
    Flag.withDefault(`${fallbackMillis / 1000}s`)
  )

const d = defaultOperatorConfig

export const operatorFlags = {
  clusterID: stringFlag("cluster-id", "Cluster identity written into every SecurityEvent", d.clusterID),
  clusterName: stringFlag("cluster-name", "Cluster name written into every SecurityEvent", d.clusterName),
  jobNamespace: stringFlag("job-namespace", "Namespace of the privileged kube-bench Jobs", d.jobNamespace),
  kubeBenchImage: stringFlag("kube-bench-image", "kube-bench container image", d.kubeBenchImage),
  falcoHost: optionalStringFlag("falco-host", "Falco gRPC outputs host (Falco <= 0.43); unset: no gRPC pull"),
  falcoPort: intFlag("falco-port", "Falco gRPC port", d.falcoPort),
  falcoCertFile: optionalStringFlag("falco-cert-file", "Client certificate (PEM) for Falco gRPC mTLS"),
  falcoKeyFile: optionalStringFlag("falco-key-file", "Client key (PEM) for Falco gRPC mTLS"),
  falcoCARootFile: optionalStringFlag("falco-ca-root-file", "CA bundle (PEM) that signed Falco's server certificate"),
  falcoReceiverBindAddress: optionalStringFlag(
    "falco-receiver-bind-address",
    "host:port of the HTTPS receiver for Falco http_output / Falcosidekick (Falco 0.44+); unset: off"
  ),
  falcoReceiverCertFile: optionalStringFlag("falco-receiver-cert-file", "Receiver server certificate (PEM)"),
  falcoReceiverKeyFile: optionalStringFlag("falco-receiver-key-file", "Receiver server key (PEM)"),
  falcoReceiverClientCAFile: optionalStringFlag(
    "falco-receiver-client-ca-file",
    "CA (PEM) that clients posting to the receiver must present certificates from"
  ),
  falcoReceiverBufferSize: intFlag("falco-receiver-buffer-size", "Events the receiver keeps", d.falcoReceiverBufferSize),
  falcoReceiverBufferBytes: intFlag(
    "falco-receiver-buffer-bytes",
    "Bytes the receiver's buffered events may take (oldest dropped beyond)",
    d.falcoReceiverBufferBytes
  ),
  falcoReceiverService: optionalStringFlag(
    "falco-receiver-service",
    "Selector-less Service of the receiver: the leader points its EndpointSlice at its POD_IP (needs POD_IP); unset: not managed"
  ),
  metricsBindAddress: stringFlag("metrics-bind-address", "Address of /metrics; 0 disables", d.metricsBindAddress),
  healthProbeBindAddress: stringFlag(
    "health-probe-bind-address",
    "Address of /healthz and /readyz; 0 disables",
    d.healthProbeBindAddress
  ),
  leaderElect: booleanFlag("leader-elect", "Elect a leader through a Lease before reconciling", d.leaderElect),
  leaderElectionNamespace: optionalStringFlag(
    "leader-election-namespace",
    "Namespace of the leader Lease (default: POD_NAMESPACE, else ugallu-system)"
  ),
  leaderElectionID: stringFlag("leader-election-id", "Name of the leader Lease", d.leaderElectionID),
  leaseDuration: durationFlag("lease-duration", "How long a Lease is valid without renewal", d.leaseDurationMillis),
  renewDeadline: durationFlag("renew-deadline", "How long the leader retries renewing before it steps down", d.renewDeadlineMillis),
  retryPeriod: durationFlag("retry-period", "Interval of Lease renewals and acquisition attempts", d.retryPeriodMillis),
  maxConcurrentRuns: intFlag("max-concurrent-runs", "Runs scanned at once", d.maxConcurrentRuns),
  watchNamespace: optionalStringFlag("watch-namespace", "Only reconcile runs in this namespace (default: all)"),
  kubeconfig: optionalStringFlag("kubeconfig", "kubeconfig file (default: in-cluster config, then ~/.kube/config)"),
  logLevel: Flag.Literals("log-level", ["debug", "info", "warn", "error"]).pipe(
    Flag.withDescription(describe("log-level", "Minimum level of log lines (default info)")),
    Flag.withFallbackConfig(Config.Literals(["debug", "info", "warn", "error"], envName("log-level"))),
    Flag.withDefault("info" as const)
  ),
  logFormat: Flag.Literals("log-format", ["json", "text"]).pipe(
    Flag.withDescription(describe("log-format", "Log line format (default json)")),
    Flag.withFallbackConfig(Config.Literals(["json", "text"], envName("log-format"))),
    Flag.withDefault("json" as const)
  ),
  reportApi: Flag.Literals("report-api", reportApiChoices).pipe(
    Flag.withDescription(describe(
      "report-api",
      "Where findings are also written as reports: auto (OpenReports when its CRDs are served, else wgpolicyk8s when served), openreports, wgpolicyk8s, both, none (default auto)"
    )),
    Flag.withFallbackConfig(Config.Literals(reportApiChoices, envName("report-api"))),
    Flag.withDefault(d.reportApi)
  )
}
