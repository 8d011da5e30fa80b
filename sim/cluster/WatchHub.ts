import type { KubeObject, WatchEvent } from "../../src/services/kube/KubeObject.ts"
import { matchesRequirements, type parseSelector } from "../../src/services/kube/LabelSelector.ts"

/** One committed write, as etcd's watch history keeps it. */
export interface Change {
  readonly resourceVersion: number
  readonly resourceKey: string
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  /** The new object; for DELETED the last state, carrying the deletion's resourceVersion. */
  readonly object: KubeObject
  /** The state before a MODIFIED, so selector watches can see objects leave and enter. */
  readonly previous: KubeObject | undefined
}

export interface WatchFilter {
  readonly resourceKey: string
  readonly namespace: string | undefined
  readonly requirements: ReturnType<typeof parseSelector>
}

/** Where a watch delivers: the open stream's queue. */
export interface WatchSink {
  readonly emit: (event: WatchEvent) => void
  readonly end: () => void
}

interface Watcher {
  readonly filter: WatchFilter
  readonly sink: WatchSink
}

const matches = (filter: WatchFilter, object: KubeObject | undefined): boolean =>
  object !== undefined &&
  (filter.namespace === undefined || object.metadata.namespace === filter.namespace) &&
  matchesRequirements(filter.requirements, object.metadata.labels)

/**
 * What a watcher sees of a change. Like the API server, a label-selector watch reports an
 * object that stops matching as DELETED and one that starts matching as ADDED.
 */
export const eventFor = (filter: WatchFilter, change: Change): WatchEvent | undefined => {
  if (change.resourceKey !== filter.resourceKey) return undefined
  const now = matches(filter, change.object)
  if (change.type !== "MODIFIED") return now ? { type: change.type, object: change.object } : undefined
  const before = matches(filter, change.previous)
  if (now) return { type: before ? "MODIFIED" : "ADDED", object: change.object }
  return before ? { type: "DELETED", object: change.object } : undefined
}

/** A watch event with its own copy of the object, so one consumer cannot disturb another. */
const delivered = (event: WatchEvent): WatchEvent =>
  event.type === "BOOKMARK" ? event : { type: event.type, object: event.object }

/**
 * The bounded history of recent changes (a ring buffer of `capacity` entries) and the open
 * watches. A watch may resume from any resourceVersion still covered by the history;
 * older ones are "compacted", as etcd does, and the caller answers Gone.
 */
export const makeWatchHub = (capacity: number) => {
  const ring: Array<Change | undefined> = new Array(Math.max(1, capacity))
  let start = 0
  let size = 0
  /** Highest resourceVersion no longer in the history (0: nothing evicted yet). */
  let compactedThrough = 0
  const watchers = new Set<Watcher>()

  const at = (index: number) => ring[(start + index) % ring.length]!

  const record = (change: Change): void => {
    if (size === ring.length) {
      compactedThrough = at(0).resourceVersion
      ring[start] = undefined
      start = (start + 1) % ring.length
      size--
    }
    ring[(start + size) % ring.length] = change
    size++
    for (const watcher of watchers) {
      const event = eventFor(watcher.filter, change)
      if (event !== undefined) watcher.sink.emit(delivered(event))
    }
  }

  /** Whether changes after `resourceVersion` are all still in the history. */
  const covers = (resourceVersion: number): boolean => resourceVersion >= compactedThrough

  /** Index of the first change newer than `resourceVersion` (binary search: versions only grow). */
  const firstAfter = (resourceVersion: number): number => {
    let low = 0
    let high = size
    while (low < high) {
      const middle = (low + high) >>> 1
      if (at(middle).resourceVersion <= resourceVersion) low = middle + 1
      else high = middle
    }
    return low
  }

  /**
   * Replays what the watcher missed since `resourceVersion`, then registers it for live
   * changes; returns the unsubscribe function. Replay and registration happen in one
   * synchronous step, so no change can fall between them.
   */
  const subscribe = (filter: WatchFilter, resourceVersion: number, sink: WatchSink): (() => void) => {
    for (let index = firstAfter(resourceVersion); index < size; index++) {
      const event = eventFor(filter, at(index))
      if (event !== undefined) sink.emit(delivered(event))
    }
    const watcher: Watcher = { filter, sink }
    watchers.add(watcher)
    return () => {
      watchers.delete(watcher)
    }
  }

  /** Ends every open watch, as an API server restart does; returns how many were open. */
  const dropAll = (): number => {
    const open = [...watchers]
    watchers.clear()
    for (const watcher of open) watcher.sink.end()
    return open.length
  }

  const oldestAvailable = (): number => compactedThrough

  return { record, covers, subscribe, dropAll, oldestAvailable, openCount: () => watchers.size }
}

export type WatchHub = ReturnType<typeof makeWatchHub>

export { matches as matchesWatchFilter }
