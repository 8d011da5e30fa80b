import { Config, Effect, Option } from "effect"
import { CliError, Flag } from "effect/cli"
import { reportApiChoices } from "../reports/ReportApis.ts"
import { defaultOperatorConfig } from "../services/OperatorConfig.ts"

/**
 * Every flag of `run` is also an environment variable: the flag name upper-cased with
 * dashes as underscores (`--job-namespace` = JOB_NAMESPACE, `--kubeconfig` = KUBECONFIG).
 * A flag on the command line wins over the variable.
 */
export const envName = (flag: string) => flag.toUpperCase().replaceAll("-", "_")

const describe = (flag: string, description: string) => `${description} [env ${envName(flag)}]`

/** A value read from a flag's environment variable, decoded by `withEnvFallback`. */
class EnvValue {
  readonly raw: string
  constructor(raw: string) {
    this.raw = raw
  }
}

/**
 * The flag's environment variable as its fallback. The variable is read as text and decoded
 * here, not by a typed `Config`, because the CLI library reports a bad typed value as
 * `"config"`; this error names the variable and the value it holds.
 */
const withEnvFallback = <A>(name: string, decode: (raw: string) => A | undefined, expected: string) =>
  (self: Flag.Flag<A>): Flag.Flag<A> =>
    self.pipe(
      Flag.withFallbackConfig(Config.String(envName(name)).pipe(Config.map((raw) => new EnvValue(raw)))),
      Flag.mapEffect((value) => {
        if (!(value instanceof EnvValue)) return Effect.succeed(value)
        const decoded = decode(value.raw)
        return decoded === undefined
          ? Effect.fail(
            new CliError.InvalidValue({
              option: name,
              value: value.raw,
              expected: `${expected} (from environment variable ${envName(name)})`,
              kind: "flag"
            })
          )
          : Effect.succeed(decoded)
      })
    )

const asText = (raw: string) => raw
const asInteger = (raw: string) => (/^-?\d+$/u.test(raw.trim()) ? Number(raw.trim()) : undefined)
const asBoolean = (raw: string) => {
  const word = raw.trim().toLowerCase()
  if (["true", "yes", "on", "1"].includes(word)) return true
  if (["false", "no", "off", "0"].includes(word)) return false
  return undefined
}

export const stringFlag = (name: string, description: string, fallback: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${JSON.stringify(fallback)})`)),
    withEnvFallback(name, asText, "a string"),
    Flag.withDefault(fallback)
  )

export const optionalStringFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(describe(name, description)),
    withEnvFallback(name, asText, "a string"),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  )

export const intFlag = (name: string, description: string, fallback: number) =>
  Flag.Int(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${fallback})`)),
    withEnvFallback(name, asInteger, "an integer"),
    Flag.withDefault(fallback)
  )

export const booleanFlag = (name: string, description: string, fallback: boolean) =>
  Flag.Boolean(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${fallback})`)),
    withEnvFallback(name, asBoolean, "true or false"),
    Flag.withDefault(fallback)
  )

/** One of a fixed set of words, e.g. `--log-level`. */
export const choiceFlag = <const Choices extends ReadonlyArray<string>>(
  name: string,
  choices: Choices,
  description: string,
  fallback: Choices[number]
) =>
  Flag.Literals(name, choices).pipe(
    Flag.withDescription(describe(name, `${description} (default ${fallback})`)),
    withEnvFallback(
      name,
      (raw): Choices[number] | undefined => choices.find((choice) => choice === raw.trim()),
      `one of ${choices.join(", ")}`
    ),
    Flag.withDefault(fallback)
  )

/** Durations as Kubernetes spells them (`15s`), in milliseconds. */
export const durationFlag = (name: string, description: string, fallbackMillis: number) =>
  Flag.String(name).pipe(
    Flag.withDescription(describe(name, `${description} (default ${fallbackMillis / 1000}s)`)),
    withEnvFallback(name, asText, "a duration"),
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
  maxExceptionDuration: durationFlag(
    "max-exception-duration",
    "Longest a ComplianceException may run from its creation; longer ones are not applied (keep in step with the admission policy)",
    d.maxExceptionDurationMillis
  ),
  exceptionUnusedAfterRuns: intFlag(
    "exception-unused-after-runs",
    "A ComplianceException that matched nothing in this many of the last runs it could apply to is Unused",
    d.exceptionUnusedAfterRuns
  ),
  kubeconfig: optionalStringFlag("kubeconfig", "kubeconfig file (default: in-cluster config, then ~/.kube/config)"),
  logLevel: choiceFlag("log-level", ["debug", "info", "warn", "error"], "Minimum level of log lines", "info"),
  logFormat: choiceFlag("log-format", ["json", "text"], "Log line format", "json"),
  reportApi: choiceFlag(
    "report-api",
    reportApiChoices,
    "Where findings are also written as reports: auto (OpenReports when its CRDs are served, else wgpolicyk8s when served), openreports, wgpolicyk8s, both, none",
    d.reportApi
  )
}
