import { Effect, Layer } from "effect"
import { LeaderElection } from "../LeaderElection.ts"
import { KubeClient } from "./KubeClient.ts"
import { type KubeError, NotLeader } from "./KubeErrors.ts"
import { Resources, type ResourceType } from "./Resources.ts"

/**
 * The KubeClient of everything but leader election: writes pass only while this process
 * leads; reads and Lease writes always pass. So nothing the old leader still has in flight
 * (a scanner's finalizer deleting Jobs, a retried status patch) writes once it stepped down,
 * even if its network comes back after a standby took over.
 */
export const FencedKubeClient = {
  layer: Layer.effect(
    KubeClient,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const { isLeader } = yield* LeaderElection
      const guard = <A>(resource: ResourceType, write: Effect.Effect<A, KubeError>): Effect.Effect<A, KubeError> =>
        resource.kind === Resources.Lease.kind
          ? write
          : Effect.flatMap(isLeader, (leader) =>
            leader ? write : Effect.fail(new NotLeader({ message: `not the leader: ${resource.plural} write refused` })))
      return KubeClient.of({
        ...kube,
        create: (resource, object) => guard(resource, kube.create(resource, object)),
        replace: (resource, object) => guard(resource, kube.replace(resource, object)),
        replaceStatus: (resource, object) => guard(resource, kube.replaceStatus(resource, object)),
        patch: (resource, namespace, name, patch, options) =>
          guard(resource, kube.patch(resource, namespace, name, patch, options)),
        delete: (resource, namespace, name, options) => guard(resource, kube.delete(resource, namespace, name, options))
      })
    })
  )
} as const
