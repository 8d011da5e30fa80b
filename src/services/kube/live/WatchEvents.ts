import { Effect, Option, Predicate, Schema } from "effect"
import { type KubeError, Transient } from "../KubeErrors.ts"
import type { KubeObject, WatchEvent } from "../KubeObject.ts"
import type { ResourceType } from "../Resources.ts"
import { errorFromStatusObject } from "./StatusError.ts"

/** One line of a watch response: `{"type": ..., "object": ...}`. */
const RawWatchEvent = Schema.fromJsonString(Schema.Struct({ type: Schema.String, object: Schema.Unknown }))
const decodeRawWatchEvent = Schema.decodeUnknownOption(RawWatchEvent)

/** A JSON object with `metadata.name`: what every object-carrying answer must look like. */
export const isKubeObject = (value: unknown): value is KubeObject =>
  Predicate.isObject(value) &&
  Predicate.isObject((value as { metadata?: unknown }).metadata) &&
  Predicate.isString((value as { metadata: { name?: unknown } }).metadata.name)

/** Servers may leave `apiVersion`/`kind` out of watched and listed items; the resource knows them. */
export const withTypeMeta = (object: KubeObject, apiVersion: string, kind: string): KubeObject =>
  object.apiVersion !== undefined && object.kind !== undefined ? object : { apiVersion, kind, ...object }

/**
 * `withTypeMeta` on an object the client has just parsed and hands out as its own: filled
 * in place, not copied. A list's items must not be copied with an object literal: V8 learns
 * from the first objects made at a literal whether they live long, and the Namespaces a CEL
 * scan keeps came through it first. It then made every later copy in the old generation,
 * where each copied Pod held its parsed tree past every young collection: about a third of
 * what a 100,000-Pod scan allocated was promoted, and garbage collection took 3 s of its CPU
 * (bench/scale-cel.ts, with --trace-gc).
 */
export const adoptTypeMeta = (object: KubeObject, apiVersion: string, kind: string): KubeObject => {
  const typed = object as { apiVersion?: string; kind?: string }
  typed.apiVersion ??= apiVersion
  typed.kind ??= kind
  return object
}

const malformed = (line: string) =>
  new Transient({ message: `malformed watch event from the API server: ${line.slice(0, 200)}` })

/**
 * Decodes one line of a watch stream. An `ERROR` event becomes the KubeError its Status
 * names (410 Expired -> Gone, so the caller re-lists); a BOOKMARK keeps only its
 * resourceVersion.
 */
export const decodeWatchLine = (resource: ResourceType, line: string): Effect.Effect<WatchEvent, KubeError> => {
  const event = Option.getOrUndefined(decodeRawWatchEvent(line))
  if (event === undefined) return Effect.fail(malformed(line))
  switch (event.type) {
    case "ADDED":
    case "MODIFIED":
    case "DELETED":
      return isKubeObject(event.object)
        ? Effect.succeed({ type: event.type, object: withTypeMeta(event.object, resource.apiVersion, resource.kind) })
        : Effect.fail(malformed(line))
    case "BOOKMARK": {
      const metadata = Predicate.isObject(event.object) ? (event.object as { metadata?: unknown }).metadata : undefined
      const resourceVersion = Predicate.isObject(metadata)
        ? (metadata as { resourceVersion?: unknown }).resourceVersion
        : undefined
      return Predicate.isString(resourceVersion)
        ? Effect.succeed({ type: "BOOKMARK", resourceVersion })
        : Effect.fail(malformed(line))
    }
    case "ERROR":
      return Effect.fail(errorFromStatusObject(event.object))
    default:
      return Effect.fail(malformed(line))
  }
}
