import { Clock, Context, DateTime, Duration, Effect, Fiber, Layer, Option, Ref } from "effect"
import { KubeClient } from "./kube/KubeClient.ts"
import type { KubeObject } from "./kube/KubeObject.ts"
import { Metrics } from "./Metrics.ts"
import { OperatorConfig, type OperatorConfigShape } from "./OperatorConfig.ts"
import { Resources } from "./kube/Resources.ts"

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
 * client-go's rules for the timings: a leader must give up (renew deadline) before a standby
 * may take over (lease duration), and must get more than one renewal attempt in that time.
 * Undefined when they hold; otherwise what is wrong.
 */
export const leaseTimingsProblem = (
  timings: Pick<OperatorConfigShape, "leaseDurationMillis" | "renewDeadlineMillis" | "retryPeriodMillis">
): string | undefined => {
  if (timings.renewDeadlineMillis >= timings.leaseDurationMillis) {
    return `--renew-deadline (${timings.renewDeadlineMillis} ms) must be shorter than --lease-duration (${timings.leaseDurationMillis} ms)`
  }
  if (timings.renewDeadlineMillis <= 1.2 * timings.retryPeriodMillis) {
    return `--renew-deadline (${timings.renewDeadlineMillis} ms) must be longer than 1.2 x --retry-period (${timings.retryPeriodMillis} ms)`
  }
  return undefined
}

/**
 * Lease-based leader election, as client-go does it: the holder renews every retry period;
 * a candidate takes the Lease once it has seen the same record unchanged for a whole lease
 * duration (measured on its own clock, so clock skew between nodes does not matter). Every
 * renewal attempt is cut at the renew deadline counted from the start of the last successful
 * one; then the leader steps down (writes fenced, leader metric 0, runs interrupted). Since a
 * record is written after its attempt started, and the renew deadline is shorter than the
 * lease duration, the leader has stopped before any standby can take the Lease.
 * `isLeader` is always true with leader election off; FencedKubeClient refuses writes while
 * it is false.
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
      if (config.leaderElect) {
        const problem = leaseTimingsProblem(config)
        if (problem !== undefined) return yield* Effect.die(new Error(`invalid leader election timings: ${problem}`))
      }
      const leading = yield* Ref.make(!config.leaderElect)
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

      /**
       * One attempt to take or keep the Lease. When we hold it afterwards: the time the attempt
       * started (no standby can have seen our record before then); otherwise undefined.
       */
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
          return now
        }
        const spec = (existing.spec ?? {}) as LeaseSpec
        const holder = spec.holderIdentity ?? ""
        const key = `${holder}@${spec.renewTime ?? ""}`
        if (observed?.key !== key) observed = { key, at: now }
        const duration = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000
        const heldByOther = holder !== "" && holder !== me
        if (heldByOther && now < observed.at + duration) return undefined
        const next: LeaseSpec = holder === me
          ? { ...spec, renewTime: microTime(now), leaseDurationSeconds: leaseSeconds }
          : { ...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === "" ? 0 : 1) }
        yield* kube.replace(Resources.Lease, leaseObject(next, existing))
        observed = { key: `${me}@${next.renewTime}`, at: now }
        return now
      }).pipe(
        Effect.catch((error) => {
          const fields = { lease: `${namespace}/${name}`, error: error._tag, message: error.message }
          // A bad token or missing RBAC never heals by itself: say so loudly.
          return (error._tag === "Forbidden"
            ? Effect.logError("leader election: the API server refused the Lease", fields)
            : Effect.logDebug("leader election attempt failed", fields)).pipe(Effect.as(undefined))
        })
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

      /** Tries until it holds the Lease; returns when the successful attempt started. */
      const campaign = Effect.gen(function*() {
        while (true) {
          const acquiredAt = yield* tryAcquireOrRenew
          if (acquiredAt !== undefined) return acquiredAt
          yield* Effect.sleep(retryPeriod)
        }
      })

      /**
       * Renews every retry period. Each attempt is cut at the renew deadline counted from the
       * start of the last successful one (a hung request cannot keep us leading); returns then.
       */
      const keepLeading = (acquiredAt: number) =>
        Effect.gen(function*() {
          let lastRenewal = acquiredAt
          const left = Effect.map(Clock.currentTimeMillis, (now) => lastRenewal + config.renewDeadlineMillis - now)
          while (true) {
            const wait = Math.min(config.retryPeriodMillis, yield* left)
            if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
            const remaining = yield* left
            if (remaining <= 0) return
            const renewed = yield* tryAcquireOrRenew.pipe(Effect.timeoutOption(Duration.millis(remaining)))
            if (Option.isSome(renewed) && renewed.value !== undefined) lastRenewal = renewed.value
          }
        })

      const whileLeader = <E, R>(work: Effect.Effect<never, E, R>): Effect.Effect<never, E, R> => {
        if (!config.leaderElect) return work
        const term = Effect.gen(function*() {
          const acquiredAt = yield* campaign
          yield* setLeading(true)
          yield* Effect.logInfo("became the leader", { lease: `${namespace}/${name}`, identity: me })
          const worker = yield* Effect.forkChild(work)
          yield* keepLeading(acquiredAt).pipe(
            Effect.raceFirst(Fiber.join(worker)),
            // Shutdown: stop the runs first (their finalizers clean up), then hand the Lease over.
            Effect.onInterrupt(() => Fiber.interrupt(worker).pipe(Effect.andThen(release)))
          )
          // Fence first: from here on nothing of this process writes, whatever still runs.
          yield* setLeading(false)
          yield* Effect.logWarning("lost the leader Lease; stopping all runs")
          yield* Fiber.interrupt(worker)
        }).pipe(Effect.ensuring(setLeading(false)))
        return Effect.forever(term)
      }

      return LeaderElection.of({ whileLeader, isLeader: Ref.get(leading) })
    })
  )
}
