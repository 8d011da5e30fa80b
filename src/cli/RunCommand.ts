import { Effect, Layer, Ref } from "effect"
import { Command } from "effect/cli"
import { hostname } from "node:os"
import { randomUUID } from "node:crypto"
import { parseDurationMillis } from "../api/Duration.ts"
import { FalcoReceiver } from "../backends/falco/FalcoReceiver.ts"
import { LeaderEndpointSlice } from "../backends/falco/LeaderEndpointSlice.ts"
import { scannersLayer } from "../backends/ScannersLayer.ts"
import { operatorLayer, runOperator } from "../Operator.ts"
import { ApiHealth } from "../services/ApiHealth.ts"
import { HttpEndpoints } from "../services/HttpEndpoints.ts"
import { leaseTimingsProblem } from "../services/LeaderElection.ts"
import { LiveKubeClient } from "../services/kube/LiveKubeClient.ts"
import { Metrics } from "../services/Metrics.ts"
import { defaultOperatorConfig, OperatorConfig, type OperatorConfigShape } from "../services/OperatorConfig.ts"
import { loggingLayer } from "./Logging.ts"
import { operatorFlags } from "./OperatorFlags.ts"

export type Flags = Command.Command.Config.Infer<typeof operatorFlags>

const millis = (flag: string, value: string) => {
  const parsed = parseDurationMillis(value)
  if (parsed === undefined) throw new Error(`--${flag}: ${JSON.stringify(value)} is not a duration such as 15s`)
  return parsed
}

/** The operator's configuration from its flags (and their environment variables). */
export const configFromFlags = (flags: Flags): OperatorConfigShape => ({
  ...defaultOperatorConfig,
  clusterID: flags.clusterID,
  clusterName: flags.clusterName,
  jobNamespace: flags.jobNamespace,
  kubeBenchImage: flags.kubeBenchImage,
  falcoHost: flags.falcoHost,
  falcoPort: flags.falcoPort,
  falcoCertFile: flags.falcoCertFile,
  falcoKeyFile: flags.falcoKeyFile,
  falcoCARootFile: flags.falcoCARootFile,
  falcoReceiverBindAddress: flags.falcoReceiverBindAddress,
  falcoReceiverCertFile: flags.falcoReceiverCertFile,
  falcoReceiverKeyFile: flags.falcoReceiverKeyFile,
  falcoReceiverClientCAFile: flags.falcoReceiverClientCAFile,
  falcoReceiverBufferSize: flags.falcoReceiverBufferSize,
  falcoReceiverBufferBytes: flags.falcoReceiverBufferBytes,
  falcoReceiverService: flags.falcoReceiverService,
  pod: { ip: process.env.POD_IP, name: process.env.POD_NAME, namespace: process.env.POD_NAMESPACE },
  metricsBindAddress: flags.metricsBindAddress,
  healthProbeBindAddress: flags.healthProbeBindAddress,
  leaderElect: flags.leaderElect,
  leaderElectionNamespace: flags.leaderElectionNamespace ?? process.env.POD_NAMESPACE ?? defaultOperatorConfig.leaderElectionNamespace,
  leaderElectionID: flags.leaderElectionID,
  leaseDurationMillis: millis("lease-duration", flags.leaseDuration),
  renewDeadlineMillis: millis("renew-deadline", flags.renewDeadline),
  retryPeriodMillis: millis("retry-period", flags.retryPeriod),
  maxConcurrentRuns: flags.maxConcurrentRuns,
  watchNamespace: flags.watchNamespace,
  operatorNamespace: process.env.POD_NAMESPACE ?? flags.leaderElectionNamespace ?? defaultOperatorConfig.operatorNamespace,
  maxExceptionDurationMillis: millis("max-exception-duration", flags.maxExceptionDuration),
  exceptionUnusedAfterRuns: flags.exceptionUnusedAfterRuns,
  reportApi: flags.reportApi,
  // client-go's convention: unique per process, readable in the Lease.
  identity: `${process.env.POD_NAME ?? hostname()}_${randomUUID().slice(0, 8)}`
})

/** What `compliance-scan run` does: the operator against the cluster of the kubeconfig or the Pod. */
export const runWithFlags = (flags: Flags) =>
  Effect.gen(function*() {
    const config = yield* Effect.try({
      try: () => configFromFlags(flags),
      catch: (error) => new Error(String((error as Error).message))
    })
    if (config.maxConcurrentRuns < 1) return yield* Effect.fail(new Error("--max-concurrent-runs must be at least 1"))
    const leaseProblem = config.leaderElect ? leaseTimingsProblem(config) : undefined
    if (leaseProblem !== undefined) return yield* Effect.fail(new Error(leaseProblem))
    const ready = yield* Ref.make(false)
    const platform = Layer.mergeAll(
      Metrics.layer,
      OperatorConfig.layer(config)
    )
    // `--kubeconfig` falls back to KUBECONFIG, which kubectl reads as a list of files to merge:
    // a value that came from the variable is left to the loader, which reads it as that list.
    const fromVariable = flags.kubeconfig === undefined || flags.kubeconfig === process.env.KUBECONFIG
    const kube = LiveKubeClient.layer(fromVariable ? {} : { kubeconfig: flags.kubeconfig })
    // Ready once started and while the API server answers the operator (docs/operations.md).
    const readiness = Effect.gen(function*() {
      const apiHealth = yield* ApiHealth
      return (yield* Ref.get(ready)) && (yield* apiHealth.reachable)
    })
    const services = LeaderEndpointSlice.layer.pipe(
      Layer.provide(FalcoReceiver.layer),
      Layer.provideMerge(operatorLayer(scannersLayer)),
      Layer.provideMerge(HttpEndpoints.layer(readiness)),
      Layer.provideMerge(ApiHealth.layer),
      Layer.provideMerge(kube),
      Layer.provideMerge(platform)
    )
    return yield* Effect.gen(function*() {
      yield* Ref.set(ready, true)
      return yield* runOperator
    }).pipe(Effect.provide(services))
  }).pipe(Effect.provide(loggingLayer(flags.logFormat, flags.logLevel)))
