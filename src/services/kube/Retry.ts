import { Clock, Duration, Effect, Schedule } from "effect"
import type { KubeError } from "./KubeErrors.ts"

/** Exponential back-off with jitter, capped: the shape of every retry against the API server. */
export const backoff = (options: { readonly base?: Duration.Input; readonly cap?: Duration.Input } = {}) => {
  const cap = Duration.fromInputUnsafe(options.cap ?? "5 seconds")
  return Schedule.exponential(options.base ?? "100 millis").pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, cap))),
    Schedule.jittered
  )
}

/**
 * Retries Transient API errors (network, 429, 5xx) with back-off; every other error is an
 * answer and is returned at once. After `times` attempts the last error propagates and the
 * caller's own policy (the controller requeues the run) takes over.
 */
export const retryTransient = <A, E extends KubeError, R>(effect: Effect.Effect<A, E, R>, times = 12) =>
  effect.pipe(
    Effect.retry({
      schedule: backoff(),
      times,
      while: (error: E) => error._tag === "Transient"
    })
  )

/**
 * Retries Transient API errors with back-off for as long as the clock is before `deadline`
 * (epoch millis): an outage shorter than what is left of a run's timeout never fails it.
 */
export const retryTransientUntil = <A, E extends KubeError, R>(effect: Effect.Effect<A, E, R>, deadline: number) =>
  effect.pipe(
    Effect.retry({
      schedule: backoff(),
      while: (error: E) =>
        error._tag === "Transient" ? Effect.map(Clock.currentTimeMillis, (now) => now < deadline) : Effect.succeed(false)
    })
  )
