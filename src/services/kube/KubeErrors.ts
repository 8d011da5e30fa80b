import { Schema } from "effect"

/**
 * The API server's answers, mapped once, next to the client (both Layers produce exactly
 * these). Everything above the client matches on `_tag`, never on status codes or text.
 */
const fields = { message: Schema.String }

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", fields) {}
/** A write carried a stale resourceVersion: re-read and try again. */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", fields) {}
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", fields) {}
/** The object was rejected by validation (422) or was a bad request (400). */
export class Invalid extends Schema.TaggedError<Invalid>()("Invalid", fields) {}
/** 401 or 403: the operator lacks a permission. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", fields) {}
/**
 * 413, or etcd's "request is too large" (which older API servers pass on as a 500): the
 * object will never fit; retrying cannot help.
 */
export class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", fields) {}
/** 410: a watch or list resumed from a resourceVersion the server no longer has. */
export class Gone extends Schema.TaggedError<Gone>()("Gone", fields) {}
/** Network errors, timeouts, 429 and 5xx: worth retrying with back-off. */
export class Transient extends Schema.TaggedError<Transient>()("Transient", fields) {}

/**
 * Refused before it was sent: this process no longer holds the leader Lease, so it must not
 * write (fencing; the new leader may already be acting on the same objects).
 */
export class NotLeader extends Schema.TaggedError<NotLeader>()("NotLeader", fields) {}

export type KubeError = NotFound | Conflict | AlreadyExists | Invalid | Forbidden | Gone | Transient | NotLeader | TooLarge

export const isTransient = (error: KubeError): boolean => error._tag === "Transient"

/** etcd's and gRPC's wording for an object over their limits (answered as 500 by some versions). */
const tooLargeMessage = /request is too large|message too large|entity too large/iu

/**
 * Maps an HTTP status code, the server's message and the metav1.Status `reason` to the typed
 * error. A 409 is told apart by the reason (exact); without one, by the message's wording.
 */
export const errorFromStatus = (status: number, message: string, reason?: string): KubeError => {
  if (status === 413 || reason === "RequestEntityTooLarge" || tooLargeMessage.test(message)) return new TooLarge({ message })
  switch (status) {
    case 404:
      return new NotFound({ message })
    case 409:
      if (reason === "AlreadyExists") return new AlreadyExists({ message })
      if (reason === "Conflict") return new Conflict({ message })
      return /already exists/i.test(message) ? new AlreadyExists({ message }) : new Conflict({ message })
    case 400:
    case 422:
      return new Invalid({ message })
    case 401:
    case 403:
      return new Forbidden({ message })
    case 410:
      return new Gone({ message })
    default:
      return new Transient({ message: `HTTP ${status}: ${message}` })
  }
}

const kubeErrorTags: ReadonlySet<string> = new Set<KubeError["_tag"]>([
  "NotFound",
  "Conflict",
  "AlreadyExists",
  "Invalid",
  "Forbidden",
  "Gone",
  "Transient",
  "NotLeader",
  "TooLarge"
])

/** Tells the client's errors apart from a caller's own in a union. */
export const isKubeError = (error: unknown): error is KubeError =>
  typeof error === "object" && error !== null && kubeErrorTags.has((error as { readonly _tag?: string })._tag ?? "")
