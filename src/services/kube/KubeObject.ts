import { Schema } from "effect"

/**
 * A Kubernetes object as JSON. The client moves objects as they are on the wire; typed
 * views (ComplianceScanRun, Job, ...) are decoded where they are used.
 */
export interface KubeObject {
  readonly apiVersion?: string
  readonly kind?: string
  readonly metadata: KubeMetadata
  readonly [key: string]: unknown
}

export interface KubeMetadata {
  readonly name: string
  readonly namespace?: string
  readonly uid?: string
  readonly resourceVersion?: string
  readonly generation?: number
  readonly creationTimestamp?: string
  readonly deletionTimestamp?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: Readonly<Record<string, string>>
  readonly ownerReferences?: ReadonlyArray<{
    readonly apiVersion: string
    readonly kind: string
    readonly name: string
    readonly uid: string
    readonly controller?: boolean
    readonly blockOwnerDeletion?: boolean
  }>
  readonly [key: string]: unknown
}

export type WatchEvent =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly object: KubeObject }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }

/**
 * One page of a list whose objects are parsed one at a time as `objects()` reaches them, so a
 * caller that uses each object and drops it never holds a page of parsed objects (see
 * KubeClient.listPage). A malformed object throws when it is reached.
 */
export interface ObjectPage {
  readonly size: number
  readonly objects: () => Iterable<KubeObject>
  readonly resourceVersion: string
  /** Set when more pages follow (the `continue` token). */
  readonly continue?: string
  /** The answer's size in bytes, when the client read it as such (sizes the next page). */
  readonly bytes?: number
  /** How the API server encoded it, when the client read it off the wire (ListOptions.protobuf). */
  readonly encoding?: "json" | "protobuf"
}

/**
 * An object of an ObjectPage that is not a Kubernetes object (malformed JSON from the server).
 * Thrown, not failed: the page's objects are parsed while the caller iterates them.
 */
export class MalformedObject extends Error {
  override readonly name = "MalformedObject"
}

/**
 * An object of an ObjectPage that the client cannot read exactly in the encoding the API
 * server chose (protobuf from a server newer than the client's schema, say). The client reads
 * that resource as JSON from then on, so the caller lists it again: it fails its page with
 * ListAgain, and `forEachPage` starts over. Thrown, like MalformedObject.
 */
export class UnreadableEncoding extends Error {
  override readonly name = "UnreadableEncoding"
}

/** A page's consumer met UnreadableEncoding: `forEachPage` lists the resource again from the start. */
export class ListAgain extends Schema.TaggedError<ListAgain>()("ListAgain", { message: Schema.String }) {}

export const isListAgain = (error: unknown): error is ListAgain => error instanceof ListAgain

/** A page of objects already parsed. */
export const pageOfList = (list: ObjectList): ObjectPage => ({
  size: list.items.length,
  objects: () => list.items,
  resourceVersion: list.resourceVersion,
  ...(list.continue === undefined ? {} : { continue: list.continue })
})

export interface ObjectList {
  readonly items: ReadonlyArray<KubeObject>
  readonly resourceVersion: string
  /** Set when more pages follow (the `continue` token). */
  readonly continue?: string
  /** The answer's size in bytes, when the client read it as such (sizes the next page). */
  readonly bytes?: number
}
