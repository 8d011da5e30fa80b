import { Clock, Effect, Layer, Result, Schedule, Schema } from "effect"
import type { KubeError } from "../../services/kube/KubeErrors.ts"
import { KubeClient } from "../../services/kube/KubeClient.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"
import { Resources } from "../../services/kube/Resources.ts"
import { LeaderElection } from "../../services/LeaderElection.ts"
import { OperatorConfig, type OperatorConfigShape } from "../../services/OperatorConfig.ts"
import { parseBindAddress } from "../../services/BindAddress.ts"
import { FalcoReceiver } from "./FalcoReceiver.ts"

/** The `endpointslice.kubernetes.io/managed-by` value: tells the EndpointSlice controllers to leave the slice alone. */
export const endpointSliceManager = "compliance-scan.security.ugallu.io"

/** The receiver Service's port name: a selector-less Service is matched to slice ports by name. */
export const receiverPortName = "https"

/** --falco-receiver-service set but unusable (no POD_IP, no fixed port): the operator does not start. */
export class LeaderEndpointConfigInvalid extends Schema.TaggedError<LeaderEndpointConfigInvalid>()("LeaderEndpointConfigInvalid", {
  message: Schema.String
}) {}

export interface LeaderEndpoint {
  readonly service: string
  readonly namespace: string
  readonly podIP: string
  readonly podName: string | undefined
  readonly port: number
}

/** One slice per Service, always the same name: every replica writes the same object. */
export const leaderSliceName = (service: string) => `${service}-leader`

/** The EndpointSlice that sends everything of `service` to this replica's receiver. */
export const leaderEndpointSlice = (endpoint: LeaderEndpoint): KubeObject => ({
  apiVersion: "discovery.k8s.io/v1",
  kind: "EndpointSlice",
  metadata: {
    name: leaderSliceName(endpoint.service),
    namespace: endpoint.namespace,
    labels: {
      "kubernetes.io/service-name": endpoint.service,
      "endpointslice.kubernetes.io/managed-by": endpointSliceManager
    }
  },
  addressType: endpoint.podIP.includes(":") ? "IPv6" : "IPv4",
  endpoints: [{
    addresses: [endpoint.podIP],
    conditions: { ready: true, serving: true, terminating: false },
    ...(endpoint.podName === undefined ? {} : { targetRef: { kind: "Pod", namespace: endpoint.namespace, name: endpoint.podName } })
  }],
  ports: [{ name: receiverPortName, port: endpoint.port, protocol: "TCP" }]
})

/**
 * Where the leader's EndpointSlice goes, from the configuration; undefined when it is not
 * managed (no --falco-receiver-service, or the receiver is off). Throws on a configuration
 * that cannot work (a Service but no POD_IP): better at startup than a Service that never routes.
 */
export const leaderEndpointFromConfig = (config: OperatorConfigShape): LeaderEndpoint | undefined => {
  if (config.falcoReceiverService === undefined || config.falcoReceiverService === "") return undefined
  if (config.falcoReceiverBindAddress === undefined || config.falcoReceiverBindAddress === "") return undefined
  const parsed = parseBindAddress(config.falcoReceiverBindAddress)
  const bind = Result.isSuccess(parsed) ? parsed.success : undefined
  if (bind === undefined || bind.port === 0) {
    throw new Error(`--falco-receiver-service needs a fixed receiver port, not ${JSON.stringify(config.falcoReceiverBindAddress)}`)
  }
  if (config.pod.ip === undefined || config.pod.ip === "") {
    throw new Error("--falco-receiver-service needs POD_IP (the downward API's status.podIP)")
  }
  return {
    service: config.falcoReceiverService,
    namespace: config.pod.namespace ?? config.leaderElectionNamespace,
    podIP: config.pod.ip,
    podName: config.pod.name,
    port: bind.port
  }
}

/** Whether `existing` already routes exactly as `desired` (labels, address, port). */
const routesAs = (existing: KubeObject, desired: KubeObject): boolean => {
  const pick = (object: KubeObject) =>
    JSON.stringify([object.metadata.labels ?? {}, object.addressType, object.endpoints, object.ports])
  return pick(existing) === pick(desired)
}

/**
 * Makes the slice name this replica: create it, or replace it at the version read. A
 * Conflict or AlreadyExists (another writer in between) fails, and the caller tries again.
 */
export const writeLeaderEndpointSlice = (
  kube: KubeClient["Service"],
  endpoint: LeaderEndpoint
): Effect.Effect<"created" | "updated" | "unchanged", KubeError> =>
  Effect.gen(function*() {
    const desired = leaderEndpointSlice(endpoint)
    const existing = yield* kube.get(Resources.EndpointSlice, endpoint.namespace, desired.metadata.name!).pipe(
      Effect.catchTag("NotFound", () => Effect.succeed(undefined))
    )
    if (existing === undefined) {
      yield* kube.create(Resources.EndpointSlice, desired)
      return "created" as const
    }
    if (routesAs(existing, desired)) return "unchanged" as const
    yield* kube.replace(Resources.EndpointSlice, {
      ...desired,
      metadata: { ...existing.metadata, labels: { ...existing.metadata.labels, ...desired.metadata.labels } }
    })
    return "updated" as const
  })

/**
 * Leader-only routing for the Falco receiver: the receiver Service has no selector, and
 * the replica that leads points the Service's EndpointSlice at its own Pod IP, so every
 * alert sent through the Service reaches the one replica that scans. A standby never
 * writes. Leadership is read from LeaderElection.isLeader and the receiver's own serving
 * state (polled: both are in-memory flags); while leading, the slice is checked again every
 * lease duration and repaired if changed. The receiver comes from FalcoReceiver.layer, the
 * same Layer value scannersLayer uses, so one build shares one receiver.
 */
export class LeaderEndpointSlice {
  static readonly layer: Layer.Layer<never, LeaderEndpointConfigInvalid, OperatorConfig | KubeClient | LeaderElection | FalcoReceiver> = Layer.effectDiscard(
    Effect.gen(function*() {
      const config = yield* OperatorConfig
      const endpoint = yield* Effect.try({
        try: () => leaderEndpointFromConfig(config),
        catch: (error) => new LeaderEndpointConfigInvalid({ message: (error as Error).message })
      })
      if (endpoint === undefined) return
      const kube = yield* KubeClient
      const election = yield* LeaderElection
      const receiver = yield* FalcoReceiver
      // With leader election off this process is the only one: it always leads. The slice
      // follows the receiver too, so the Service never points at a replica still refusing.
      const leading = Effect.all([config.leaderElect ? election.isLeader : Effect.succeed(true), receiver.serving]).pipe(
        Effect.map(([leader, serving]) => leader && serving)
      )
      const where = `${endpoint.namespace}/${leaderSliceName(endpoint.service)}`
      let pointsHere = false
      // Next write attempt: a lease duration after a success (a check), a retry period after a failure.
      let nextAttempt = 0

      const step = Effect.gen(function*() {
        if (!(yield* leading)) {
          pointsHere = false
          nextAttempt = 0
          return
        }
        const now = yield* Clock.currentTimeMillis
        if (now < nextAttempt) return
        nextAttempt = now + config.retryPeriodMillis
        const outcome = yield* writeLeaderEndpointSlice(kube, endpoint)
        if (!pointsHere || outcome !== "unchanged") {
          yield* Effect.logInfo(`Falco receiver: EndpointSlice ${where} points at this replica`, {
            address: `${endpoint.podIP}:${endpoint.port}`,
            outcome
          })
        }
        pointsHere = true
        nextAttempt = now + config.leaseDurationMillis
      }).pipe(
        Effect.catch((error) =>
          Effect.logWarning(`Falco receiver: could not point EndpointSlice ${where} at this replica; retrying`, {
            error: error._tag,
            message: error.message
          })
        )
      )
      // Polling the in-memory flag often keeps a takeover's repointing well within one lease.
      yield* step.pipe(
        Effect.repeat(Schedule.spaced(Math.min(250, config.retryPeriodMillis))),
        Effect.forkScoped
      )
    })
  )
}
