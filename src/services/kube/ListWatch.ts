import { Clock, Duration, Effect, Fiber, Queue, Random, Stream } from "effect"
import { KubeClient, type ListOptions } from "./KubeClient.ts"
import type { KubeError } from "./KubeErrors.ts"
import { isListAgain, type KubeObject, type ListAgain, type ObjectPage, pageOfList } from "./KubeObject.ts"
import type { ResourceType } from "./Resources.ts"

/**
 * The list/watch loop both KubeClient layers share: an informer without a cache of its own
 * beyond what it needs to report deletions across a re-list.
 */

/** The page size of `listAll` (client-go's default). */
const defaultPageSize = 500

/**
 * Every page of a list (following `continue`). If a continue token expires mid-way (Gone),
 * it falls back to one unpaged list, as client-go's pager does.
 */
export const listAll = Effect.fnUntraced(function*(
  resource: ResourceType,
  options: Omit<ListOptions, "continue"> = {}
): Effect.fn.Return<{ readonly items: ReadonlyArray<KubeObject>; readonly resourceVersion: string }, KubeError, KubeClient> {
  const kube = yield* KubeClient
  const limit = options.limit ?? defaultPageSize
  const items: Array<KubeObject> = []
  let page = yield* kube.list(resource, { ...options, limit })
  let resourceVersion = page.resourceVersion
  items.push(...page.items)
  while (page.continue !== undefined && page.continue !== "") {
    const next = yield* Effect.result(kube.list(resource, { ...options, limit, continue: page.continue }))
    if (next._tag === "Failure") {
      if (next.failure._tag !== "Gone") return yield* Effect.fail(next.failure)
      const { limit: _unpaged, ...unpaged } = options
      const whole = yield* kube.list(resource, unpaged)
      return { items: whole.items, resourceVersion: whole.resourceVersion }
    }
    page = next.success
    resourceVersion = page.resourceVersion
    items.push(...page.items)
  }
  return { items, resourceVersion }
})

/** Pages sized by their bytes (`forEachPage`'s `budget`): see `nextPageLimit`. */
export interface PageBudget {
  /** The answer size to aim for: about what one page holds in memory. */
  readonly bytes: number
  /** No more objects than this in a page, whatever their size. */
  readonly maxLimit: number
}

/**
 * The next page's limit under a byte budget: as many objects as fit at the last page's
 * average size, at least one and at most `maxLimit`. The API server's cost per page grows
 * with the objects it skips to reach the continue token, so a list of small objects is
 * cheaper to serve in fewer, larger pages (at 100,000 Pods, 2,000 per page took it about a
 * fifth less time than 500); large objects get smaller pages so memory stays bounded. A
 * page whose size the client does not know keeps the limit.
 */
export const nextPageLimit = (limit: number, page: Pick<ObjectPage, "size" | "bytes">, budget: PageBudget): number =>
  page.bytes === undefined || page.size === 0
    ? limit
    : Math.max(1, Math.min(budget.maxLimit, Math.floor(budget.bytes / (page.bytes / page.size))))

/** Lists started again (a continue token expired, a page could not be read as it came) before `forEachPage` gives up. */
const maxListRestarts = 3

/**
 * Every page of a list handed to `onPage` as it arrives, so the caller holds one page at a
 * time (two while the next one is on its way: it is requested before `onPage` runs, so the
 * API server encodes it while the caller works on this one). When a continue token expires
 * (Gone), or `onPage` fails with ListAgain (the client could not read the page in the
 * encoding it came in and reads the resource as JSON from then on), the list starts again
 * from the first page, after `onRestart` has undone what the pages already seen did (so
 * nothing is counted twice); after a few restarts that error is returned. `request` wraps
 * each page's request (retries). With a `budget`, each page after the first asks for as
 * many objects as the budget's bytes hold (`nextPageLimit`).
 */
export const forEachPage = <E, R>(
  resource: ResourceType,
  options: Omit<ListOptions, "continue">,
  handlers: {
    /** The page's objects, parsed one by one as they are iterated (KubeClient.listPage), and how many there are. */
    readonly onPage: (objects: Iterable<KubeObject>, size: number) => Effect.Effect<void, E, R>
    readonly onRestart: () => void
    readonly request?: (page: Effect.Effect<ObjectPage, KubeError>) => Effect.Effect<ObjectPage, KubeError>
    readonly budget?: PageBudget
  }
): Effect.Effect<void, E | KubeError, KubeClient | R> =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const request = handlers.request ?? ((page) => page)
    const listPage = kube.listPage ?? ((resource, options) => Effect.map(kube.list(resource, options), pageOfList))
    const fetch = (token: string | undefined, limit: number | undefined) =>
      Effect.result(request(listPage(resource, token === undefined ? options : { ...options, limit, continue: token })))
    for (let restarts = 0;; restarts++) {
      /** Why the list starts over: a continue token expired (Gone), or a page could not be read as it came (ListAgain). */
      let again: { readonly error: KubeError | E; readonly why: string } | undefined
      /** The continue token `page` was fetched with (none for the first page). */
      let token: string | undefined
      let limit = options.limit
      let page = yield* fetch(token, limit)
      for (;;) {
        if (page._tag === "Failure") {
          if (page.failure._tag !== "Gone" || token === undefined) return yield* Effect.fail(page.failure)
          again = { error: page.failure, why: "list continue token expired" }
          break
        }
        const nextToken = page.success.continue === "" ? undefined : page.success.continue
        // A child fiber (interrupted with this one when `onPage` fails or the scan is interrupted),
        // started at once: its request is on the wire before `onPage` takes the thread.
        if (handlers.budget !== undefined && limit !== undefined) limit = nextPageLimit(limit, page.success, handlers.budget)
        const next = nextToken === undefined ? undefined : yield* Effect.forkChild(fetch(nextToken, limit), { startImmediately: true })
        const unread = yield* handlers.onPage(page.success.objects(), page.success.size).pipe(
          Effect.as(undefined),
          Effect.catchIf((error: E): boolean => isListAgain(error), (error) => Effect.succeed({ error, why: (error as ListAgain).message }))
        )
        if (unread !== undefined) {
          if (next !== undefined) yield* Fiber.interrupt(next)
          again = unread
          break
        }
        if (next === undefined) break
        token = nextToken
        page = yield* Fiber.join(next)
      }
      if (again === undefined) return
      if (restarts >= maxListRestarts) return yield* Effect.fail(again.error)
      yield* Effect.logInfo(`${again.why}; listing again from the start`).pipe(
        Effect.annotateLogs({ resource: resource.plural, restarts: restarts + 1 })
      )
      handlers.onRestart()
    }
  })

/**
 * What `watchResource` emits. Applying the events in order to a map keyed by
 * namespace/name always yields the API server's state:
 * - ADDED / MODIFIED: the object as it now is (after a re-list, ADDED for objects not seen
 *   before and MODIFIED for ones that changed; the same state may be delivered twice);
 * - DELETED: the object is gone (its last known state; after a re-list, deletions that
 *   happened while the watch was down are reported this way too);
 * - SYNCED: every object present at `resourceVersion` has been delivered (after the first
 *   list and after each re-list): the consumer's map is complete.
 */
export type ListWatchEvent =
  | { readonly type: "ADDED"; readonly object: KubeObject }
  | { readonly type: "MODIFIED"; readonly object: KubeObject }
  | { readonly type: "DELETED"; readonly object: KubeObject }
  | { readonly type: "SYNCED"; readonly resourceVersion: string }

export interface WatchResourceOptions {
  readonly namespace?: string
  readonly labelSelector?: string
  /** First retry delay; doubles per consecutive failure, with jitter. Default 200 ms. */
  readonly initialBackoff?: Duration.Input
  /** Longest retry delay. Default 30 s. */
  readonly maxBackoff?: Duration.Input
  /** Server-side timeout of each watch request (the live server closes it then). Default: none. */
  readonly watchTimeoutSeconds?: number
}

/** A watch that stayed open this long was healthy, even if nothing happened. */
const healthyWatchMillis = 10_000

/** Consecutive failures after which each further one is logged at warning level. */
const quietFailures = 3

const keyOf = (object: KubeObject) => `${object.metadata.namespace ?? ""}/${object.metadata.name}`

/**
 * The current state of a kind and every change to it, as a Stream that never ends on its
 * own (interrupt it to stop): lists, then watches from the list's resourceVersion, resumes
 * from the last seen resourceVersion when a watch ends or fails, and re-lists when the
 * server answers Gone. Failures are retried with capped exponential back-off and jitter
 * (reset by progress); Transient ones quietly, others (Forbidden: RBAC not there yet)
 * logged as errors, because the operator must outlive them.
 */
export const watchResource = (
  resource: ResourceType,
  options: WatchResourceOptions = {}
): Stream.Stream<ListWatchEvent, never, KubeClient> =>
  Stream.callback<ListWatchEvent, never, KubeClient>(
    (queue) =>
      Effect.gen(function*() {
        const kube = yield* KubeClient
        const initialMillis = Duration.toMillis(options.initialBackoff ?? "200 millis")
        const maxMillis = Duration.toMillis(options.maxBackoff ?? "30 seconds")
        const selection = {
          ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
          ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector })
        }
        const emit = (event: ListWatchEvent) => Queue.offer(queue, event)

        /** What the consumer has been told exists: key -> last delivered state. */
        const known = new Map<string, KubeObject>()
        let resourceVersion: string | undefined
        let failures = 0
        /** The next watch starts from a list's version (not from an event's). */
        let fromFreshList = false

        const backOff = Effect.fnUntraced(function*(what: string, error: KubeError | undefined) {
          const exponent = Math.min(failures, 30)
          failures++
          const ceiling = Math.min(maxMillis, initialMillis * 2 ** exponent)
          const delay = Math.round(ceiling * (0.5 + (yield* Random.next) / 2))
          const fields = {
            resource: resource.plural,
            ...selection,
            failures,
            retryInMillis: delay,
            ...(error === undefined ? {} : { error: error._tag, message: error.message })
          }
          if (error !== undefined && error._tag !== "Transient" && error._tag !== "Gone") {
            yield* Effect.logError(`${what} failed; retrying`, fields)
          } else if (failures > quietFailures) {
            yield* Effect.logWarning(`${what} keeps failing; retrying`, fields)
          } else {
            yield* Effect.logDebug(`${what} failed; retrying`, fields)
          }
          yield* Effect.sleep(delay)
        })

        /** Lists and reports the difference to what the consumer knows, then SYNCED. */
        const relist = Effect.gen(function*() {
          const listed = yield* listAll(resource, selection).pipe(Effect.provideService(KubeClient, kube))
          failures = 0
          const seen = new Set<string>()
          for (const object of listed.items) {
            const key = keyOf(object)
            seen.add(key)
            const previous = known.get(key)
            known.set(key, object)
            if (previous === undefined) yield* emit({ type: "ADDED", object })
            else if (previous.metadata.resourceVersion !== object.metadata.resourceVersion) {
              yield* emit({ type: "MODIFIED", object })
            }
          }
          for (const [key, object] of [...known]) {
            if (seen.has(key)) continue
            known.delete(key)
            yield* emit({ type: "DELETED", object })
          }
          resourceVersion = listed.resourceVersion
          fromFreshList = true
          yield* emit({ type: "SYNCED", resourceVersion: listed.resourceVersion })
        })

        /** One watch request; returns whether it made progress (events, or a long healthy life). */
        const watchOnce = (from: string) =>
          Effect.gen(function*() {
            const openedAt = yield* Clock.currentTimeMillis
            let delivered = 0
            const outcome = yield* kube.watch(resource, {
              ...selection,
              resourceVersion: from,
              ...(options.watchTimeoutSeconds === undefined ? {} : { timeoutSeconds: options.watchTimeoutSeconds })
            }).pipe(
              Stream.runForEach((event) =>
                Effect.gen(function*() {
                  delivered++
                  if (event.type === "BOOKMARK") {
                    resourceVersion = event.resourceVersion
                    return
                  }
                  const object = event.object
                  resourceVersion = object.metadata.resourceVersion ?? resourceVersion
                  const key = keyOf(object)
                  const previous = known.get(key)
                  if (event.type === "DELETED") {
                    if (previous === undefined) return
                    known.delete(key)
                    yield* emit({ type: "DELETED", object })
                    return
                  }
                  // The exact state the consumer already has (a replay): nothing new.
                  if (previous?.metadata.resourceVersion === object.metadata.resourceVersion) return
                  known.set(key, object)
                  yield* emit({ type: previous === undefined ? "ADDED" : "MODIFIED", object })
                })
              ),
              Effect.result
            )
            const lived = (yield* Clock.currentTimeMillis) - openedAt
            return { outcome, progressed: delivered > 0 || lived >= healthyWatchMillis }
          })

        while (true) {
          if (resourceVersion === undefined) {
            const listed = yield* Effect.result(relist)
            if (listed._tag === "Failure") yield* backOff("list", listed.failure)
            continue
          }
          const startedFromList = fromFreshList
          fromFreshList = false
          const { outcome, progressed } = yield* watchOnce(resourceVersion)
          if (progressed) failures = 0
          const error = outcome._tag === "Failure" ? outcome.failure : undefined
          if (error?._tag === "Gone") {
            // The history no longer reaches back to our version: only a new list helps, at
            // once, unless even a fresh list's version was already gone (then back off).
            resourceVersion = undefined
            if (startedFromList && !progressed) yield* backOff("watch", error)
          } else if (error !== undefined || !progressed) {
            yield* backOff(error === undefined ? "watch (closed without progress)" : "watch", error)
          }
        }
      }),
    { bufferSize: 256, strategy: "suspend" }
  )
