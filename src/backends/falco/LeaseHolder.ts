import { Effect, Ref } from "effect"
import type { KubeClient } from "../../services/kube/KubeClient.ts"
import { Resources } from "../../services/kube/Resources.ts"

/**
 * Whether the leader-election Lease names this replica: the receiver takes alerts only
 * there, because only the leader scans and reads its own buffer. It reads the Lease the
 * election writes (no second election, no extra RBAC); while the API server cannot be
 * read, the last answer stands (the leader steps down by itself if it cannot renew, and
 * the Lease then names the next one).
 */
export const makeLeaseHolderProbe = (
  kube: KubeClient["Service"],
  lease: { readonly namespace: string; readonly name: string; readonly identity: string }
): Effect.Effect<Effect.Effect<boolean>> =>
  Effect.gen(function*() {
    const last = yield* Ref.make(false)
    return kube.get(Resources.Lease, lease.namespace, lease.name).pipe(
      Effect.map((object) => ((object.spec ?? {}) as { holderIdentity?: string }).holderIdentity === lease.identity),
      Effect.catchTag("NotFound", () => Effect.succeed(false)),
      Effect.tap((holds) => Ref.set(last, holds)),
      Effect.catch(() => Ref.get(last))
    )
  })
