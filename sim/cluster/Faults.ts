import { Duration, Effect } from "effect"
import { type KubeError, Transient } from "../../src/services/kube/KubeErrors.ts"
import { seededRandom } from "./SeededRandom.ts"

/** The API calls the simulation counts and can fail: the KubeClient methods. */
export const verbs = ["get", "list", "create", "replace", "replaceStatus", "patch", "delete", "watch", "podLogs"] as const
export type Verb = (typeof verbs)[number]

export type RequestCounts = Readonly<Record<Verb, number>>

export interface FaultSettings {
  /** Fraction (0..1) of API calls that fail with Transient before reaching the store. */
  readonly errorRate?: number
  /** Restarts the sequence of injected failures from this seed (the cluster's seed otherwise). */
  readonly seed?: number
  /** Added to every API call. */
  readonly latency?: Duration.Input
}

const zeroCounts = (): Record<Verb, number> =>
  Object.fromEntries(verbs.map((verb) => [verb, 0])) as Record<Verb, number>

/** Fault injection and request accounting in front of the simulated API server. */
export const makeFaults = (initial: FaultSettings | undefined, clusterRandom: () => number) => {
  let errorRate = 0
  let latencyMillis = 0
  let random = clusterRandom
  const queued = new Map<Verb, Array<KubeError>>()
  let counts = zeroCounts()

  const configure = (settings: FaultSettings): void => {
    if (settings.errorRate !== undefined) errorRate = Math.min(1, Math.max(0, settings.errorRate))
    if (settings.seed !== undefined) random = seededRandom(settings.seed)
    if (settings.latency !== undefined) latencyMillis = Duration.toMillis(settings.latency)
  }
  if (initial !== undefined) configure(initial)

  const failNext = (verb: Verb, error: KubeError): void => {
    const errors = queued.get(verb) ?? []
    errors.push(error)
    queued.set(verb, errors)
  }

  /** Counts the call, waits the configured latency, then fails it or lets it through. */
  const admit = (verb: Verb): Effect.Effect<void, KubeError> =>
    Effect.suspend(() => {
      counts[verb]++
      const pass = Effect.suspend(() => {
        const targeted = queued.get(verb)?.shift()
        if (targeted !== undefined) return Effect.fail(targeted)
        if (errorRate > 0 && random() < errorRate) {
          return Effect.fail(
            new Transient({ message: `HTTP 503: the server is currently unable to handle the request (simulated fault on ${verb})` })
          )
        }
        return Effect.void
      })
      return latencyMillis > 0 ? Effect.andThen(Effect.sleep(latencyMillis), pass) : pass
    })

  return {
    configure,
    failNext,
    admit,
    counts: (): RequestCounts => ({ ...counts }),
    resetCounts: (): void => {
      counts = zeroCounts()
    }
  }
}

export type Faults = ReturnType<typeof makeFaults>
