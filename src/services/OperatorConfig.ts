import { Context, Layer } from "effect"
import type { ReportApiChoice } from "../reports/ReportApis.ts"

/**
 * Everything the operator is configured with (flags of `run`, each also an environment
 * variable). main.ts fills it from the command line; tests build it with `make`.
 */
export interface OperatorConfigShape {
  readonly clusterID: string
  readonly clusterName: string
  /** Namespace of kube-bench Jobs (privileged Pod Security level). */
  readonly jobNamespace: string
  readonly kubeBenchImage: string
  /** Falco gRPC outputs endpoint (Falco <= 0.43); unset disables the gRPC pull. */
  readonly falcoHost: string | undefined
  readonly falcoPort: number
  readonly falcoCertFile: string | undefined
  readonly falcoKeyFile: string | undefined
  readonly falcoCARootFile: string | undefined
  /** HTTPS receiver for Falco http_output / Falcosidekick (Falco 0.44+); unset = off. */
  readonly falcoReceiverBindAddress: string | undefined
  readonly falcoReceiverCertFile: string | undefined
  readonly falcoReceiverKeyFile: string | undefined
  readonly falcoReceiverClientCAFile: string | undefined
  readonly falcoReceiverBufferSize: number
  /** Bytes the receiver's buffered alerts may take (each alert accounted by AlertBudget.alertBytes). */
  readonly falcoReceiverBufferBytes: number
  /**
   * Selector-less Service Falco posts to: the leader points its EndpointSlice at itself
   * (LeaderEndpointSlice.ts); unset = no EndpointSlice management.
   */
  readonly falcoReceiverService: string | undefined
  /** This Pod as the downward API gives it (POD_IP, POD_NAME, POD_NAMESPACE); unset outside a Pod. */
  readonly pod: { readonly ip: string | undefined; readonly name: string | undefined; readonly namespace: string | undefined }
  readonly metricsBindAddress: string
  readonly healthProbeBindAddress: string
  readonly leaderElect: boolean
  readonly leaderElectionNamespace: string
  readonly leaderElectionID: string
  /** Lease timings in milliseconds. */
  readonly leaseDurationMillis: number
  readonly renewDeadlineMillis: number
  readonly retryPeriodMillis: number
  readonly maxConcurrentRuns: number
  /** Interval of the periodic re-list of runs (controller-runtime's sync period). */
  readonly resyncPeriodMillis: number
  /** Namespace to watch; undefined = all namespaces. */
  readonly watchNamespace: string | undefined
  /** Identity written into the Lease and SecurityEvent sources (defaults to the hostname). */
  readonly identity: string
  readonly version: string
  /** The operator's namespace: ComplianceExceptions there are cluster-wide (POD_NAMESPACE). */
  readonly operatorNamespace: string
  /** Longest a ComplianceException may run from its creation (the admission policy's cap too). */
  readonly maxExceptionDurationMillis: number
  /** An exception that matched nothing in this many of the last runs it could apply to is Unused. */
  readonly exceptionUnusedAfterRuns: number
  /** Which report APIs findings are written to (`auto`: OpenReports when served, else wgpolicyk8s when served). */
  readonly reportApi: ReportApiChoice
}

export const defaultKubeBenchImage = "docker.io/aquasec/kube-bench:v0.15.6"

export const defaultOperatorConfig: OperatorConfigShape = {
  clusterID: "",
  clusterName: "",
  jobNamespace: "ugallu-system-privileged",
  kubeBenchImage: defaultKubeBenchImage,
  falcoHost: undefined,
  falcoPort: 5060,
  falcoCertFile: undefined,
  falcoKeyFile: undefined,
  falcoCARootFile: undefined,
  falcoReceiverBindAddress: undefined,
  falcoReceiverCertFile: undefined,
  falcoReceiverKeyFile: undefined,
  falcoReceiverClientCAFile: undefined,
  falcoReceiverBufferSize: 10_000,
  falcoReceiverBufferBytes: 32 * 1024 * 1024,
  falcoReceiverService: undefined,
  pod: { ip: undefined, name: undefined, namespace: undefined },
  metricsBindAddress: ":8080",
  healthProbeBindAddress: ":8081",
  leaderElect: true,
  leaderElectionNamespace: "ugallu-system",
  leaderElectionID: "ugallu-compliance-scan-leader",
  leaseDurationMillis: 15_000,
  renewDeadlineMillis: 10_000,
  retryPeriodMillis: 2_000,
  maxConcurrentRuns: 10,
  resyncPeriodMillis: 5 * 60_000,
  watchNamespace: undefined,
  identity: "compliance-scan",
  version: "0.1.0",
  operatorNamespace: "ugallu-system",
  maxExceptionDurationMillis: 90 * 24 * 3_600_000,
  exceptionUnusedAfterRuns: 3,
  reportApi: "auto"
}

export class OperatorConfig extends Context.Service<OperatorConfig, OperatorConfigShape>()(
  "compliance-scan/services/OperatorConfig"
) {
  static readonly make = (overrides: Partial<OperatorConfigShape> = {}): OperatorConfigShape => ({
    ...defaultOperatorConfig,
    ...overrides
  })

  static readonly layer = (overrides: Partial<OperatorConfigShape> = {}) =>
    Layer.succeed(OperatorConfig, OperatorConfig.make(overrides))
}
