import { Clock, Context, DateTime, Duration, Effect, Fiber, Layer, Ref } from "effect"
import { KubeClient } from "./kube/KubeClient.ts"
import type { KubeObject } from "./kube/KubeObject.ts"
import { Resources } from "./kube/Resources.ts"
import { Metrics } from "./Metrics.ts"
import { OperatorConfig } from "./OperatorConfig.ts"

interface LeaseSpec {
  readonly holderIdentity?: string
  readonly leaseDurationSeconds?: number
  readonly acquireTime?: string
  readonly renewTime?: string
  readonly leaseTransitions?: number
}

/** Lease times are metav1.MicroTime: RFC 3339 with microseconds. */
const microTime = (millis: number) => DateTime.formatIso(DateTime.makeUnsafe(millis)).replace(/\.(\d{3})Z$/u, ".$1000Z")

/**
 * Lease-based leader election, as client-go does it: the holder renews every retry period;
 * a candidate takes the Lease once it has seen the same record unchanged for a whole lease
 * duration (measured on its own clock, so clock skew between nodes does not matter); the
 * leader that cannot renew within the renew deadline steps down and stops all its work.
 */
export class LeaderElection extends Context.Service<
  LeaderElection,
  {
    /**
     * Runs `work` while this process holds the Lease, interrupts it when leadership is lost,
     * then campaigns again. On interruption (shutdown) a held Lease is released at once.
     */
    readonly whileLeader: <E, R>(work: Effect.Effect<never, E, R>) => Effect.Effect<never, E, R>
    readonly isLeader: Effect.Effect<boolean>
  }
>()("compliance-scan/services/LeaderElection") {
  static readonly layer = Layer.effect(
    LeaderElection,
    Effect.gen(function*() {
      const config = yield* OperatorConfig
      const kube = yield* KubeClient
      const metrics = yield* Metrics
      const leading = yield* Ref.make(false)
      const namespace = config.leaderElectionNamespace
      const name = config.leaderElectionID
      const me = config.identity
      const leaseSeconds = Math.ceil(config.leaseDurationMillis / 1000)
      // The last record we saw and when (our clock): the basis of "expired".
      let observed: { readonly key: string; readonly at: number } | undefined

      const setLeading = (value: boolean) =>
        Ref.set(leading, value).pipe(Effect.tap(() => Effect.sync(() => metrics.isLeader.set(value ? 1 : 0))))

      const leaseObject = (spec: LeaseSpec, existing?: KubeObject): KubeObject => ({
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: existing === undefined ? { name, namespace } : existing.metadata,
        spec
      })

      /** One attempt to take or keep the Lease: true when we hold it afterwards. */
      const tryAcquireOrRenew = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const fresh: LeaseSpec = {
          holderIdentity: me,
          leaseDurationSeconds: leaseSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0
        }
        const existing = yield* kube.get(Resources.Lease, namespace, name).pipe(
          Effect.catchTag("NotFound", () => Effect.succeed(undefined))
        )
        if (existing === undefined) {
          yield* kube.create(Resources.Lease, leaseObject(fresh))
          observed = { key: `${me}@${fresh.renewTime}`, at: now }
          return true
        }
        const spec = (existing.spec ?? {}) as LeaseSpec
        const holder = spec.holderIdentity ?? ""
        const key = `${holder}@${spec.renewTime ?? ""}`
        if (observed?.key !== key) observed = { key, at: now }
        const duration = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000
        const heldByOther = holder !== "" && holder !== me
        if (heldByOther && now < observed.at + duration) return false
        const next: LeaseSpec = holder === me
          ? { ...spec, renewTime: microTime(now), leaseDurationSeconds: leaseSeconds }
          : { ...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === "" ? 0 : 1) }
        yield* kube.replace(Resources.Lease, leaseObject(next, existing))
        observed = { key: `${me}@${next.renewTime}`, at: now }
        return true
      }).pipe(
        Effect.catch((error) =>
          Effect.logDebug("leader election attempt failed", { error: error._tag, message: error.message }).pipe(
            Effect.as(false)
          )
        )
      )

      /** Gives the Lease up so that a standby takes over at once instead of after a lease duration. */
      const release = Effect.gen(function*() {
        const existing = yield* kube.get(Resources.Lease, namespace, name)
        const spec = (existing.spec ?? {}) as LeaseSpec
        if (spec.holderIdentity !== me) return
        const now = yield* Clock.currentTimeMillis
        yield* kube.replace(
          Resources.Lease,
          leaseObject({ ...spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(now) }, existing)
        )
        yield* Effect.logInfo("released the leader Lease")
      }).pipe(Effect.ignore)

      const retryPeriod = Duration.millis(config.retryPeriodMillis)

      const campaign = Effect.gen(function*() {
        while (!(yield* tryAcquireOrRenew)) yield* Effect.sleep(retryPeriod)
      })

      /** Renews until a renewal has not succeeded for the renew deadline; then returns. */
      const keepLeading = Effect.gen(function*() {
        let lastRenewal = yield* Clock.currentTimeMillis
        while (true) {
          yield* Effect.sleep(retryPeriod)
          const now = yield* Clock.currentTimeMillis
          if (yield* tryAcquireOrRenew) lastRenewal = now
          else if (now - lastRenewal >= config.renewDeadlineMillis) return
        }
      })

      const whileLeader = <E, R>(work: Effect.Effect<never, E, R>): Effect.Effect<never, E, R> => {
        if (!config.leaderElect) return work
        const term = Effect.gen(function*() {
          yield* campaign
          yield* setLeading(true)
          yield* Effect.logInfo("became the leader", { lease: `${namespace}/${name}`, identity: me })
          const worker = yield* Effect.forkChild(work)
          yield* keepLeading.pipe(
            Effect.raceFirst(Fiber.join(worker)),
            // Shutdown: stop the runs first (their finalizers clean up), then hand the Lease over.
            Effect.onInterrupt(() => Fiber.interrupt(worker).pipe(Effect.andThen(release)))
          )
          yield* Effect.logWarning("lost the leader Lease; stopping all runs")
          yield* Fiber.interrupt(worker)
        }).pipe(Effect.ensuring(setLeading(false)))
        return Effect.forever(term)
      }

      return LeaderElection.of({ whileLeader, isLeader: Ref.get(leading) })
    })
  )
}
