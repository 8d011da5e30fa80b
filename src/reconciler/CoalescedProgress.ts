import { Duration, Effect, Fiber, Option, Queue, Ref, type Scope } from "effect"
import type { BackendStatus, ScanRequest } from "../backends/Scanner.ts"

/**
 * How long after one progress write the next may follow, by the number of status entries
 * (kube-bench: nodes). Each write carries the whole list (about 150 bytes a node), so the
 * interval grows with it: 10 ms an entry keeps the run's progress writes near 15 KB/s
 * whatever the node count (a 1,000-node run writes every 10 s), and a run's number of
 * progress writes no longer grows with its nodes. At least 2 s (small runs still look
 * live), at most 30 s (a large run's status never lags further behind).
 */
export const progressInterval = (status: BackendStatus): Duration.Duration =>
  Duration.millis(Math.min(30_000, Math.max(2_000, (status.nodes?.length ?? 0) * 10)))

/** The longest the last progress write may hold up the end of a scan (shutdown, lost leadership). */
const finalWriteTimeout = Duration.seconds(10)

export interface CoalescedProgress {
  readonly reportProgress: ScanRequest["reportProgress"]
  /** The scan returned a backend status that the reconciler writes next: the pending write is redundant. */
  readonly supersede: Effect.Effect<void>
}

/**
 * The scan's `reportProgress`, coalesced: the first change is written at once, later ones at
 * most once per `intervalOf` after the previous write, each write reading the backend's
 * latest status (so N changes within an interval cost one write). Writes are serialised
 * (never out of order). When the Scope closes the last unwritten state is written, unless
 * the scan succeeded with a backend status of its own, which the reconciler's next status
 * write carries anyway: nothing is lost when the scan ends, fails or is interrupted.
 */
export const coalescedProgress = (
  write: (status: BackendStatus) => Effect.Effect<void>,
  intervalOf: (status: BackendStatus) => Duration.Duration = progressInterval
): Effect.Effect<CoalescedProgress, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pending = yield* Ref.make(Option.none<Effect.Effect<BackendStatus>>())
    const superseded = yield* Ref.make(false)
    const wake = yield* Queue.sliding<void>(1)

    /** Writes the pending state if there is one; an interrupted write leaves it pending. */
    const writePending = Effect.gen(function*() {
      const current = yield* Ref.getAndSet(pending, Option.none())
      if (Option.isNone(current)) return Option.none<BackendStatus>()
      const status = yield* current.value
      yield* write(status).pipe(
        Effect.onInterrupt(() => Ref.update(pending, (newer) => Option.orElse(newer, () => current)))
      )
      return Option.some(status)
    })

    const writer = yield* Queue.take(wake).pipe(
      Effect.andThen(writePending),
      Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: (status) => Effect.sleep(intervalOf(status)) })),
      Effect.forever,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() =>
      Fiber.interrupt(writer).pipe(
        Effect.andThen(Ref.get(superseded)),
        Effect.flatMap((skip) =>
          skip ? Effect.void : writePending.pipe(Effect.timeoutOption(finalWriteTimeout), Effect.asVoid)
        )
      )
    )

    return {
      reportProgress: (current) => Ref.set(pending, Option.some(current)).pipe(Effect.andThen(Queue.offer(wake, undefined)), Effect.asVoid),
      supersede: Ref.set(superseded, true)
    } satisfies CoalescedProgress
  })
