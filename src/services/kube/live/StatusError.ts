import { Option, Schema } from "effect"
import { errorFromStatus, type KubeError } from "../KubeErrors.ts"

/** The fields we read from a metav1.Status (error bodies and watch ERROR events). */
const Status = Schema.Struct({
  code: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String)
})
type Status = typeof Status.Type

const decodeStatus = Schema.decodeUnknownOption(Status)
const decodeStatusJson = Schema.decodeUnknownOption(Schema.fromJsonString(Status))

/** Longest piece of a non-Status error body quoted in a message. */
const maxQuotedBody = 300

/** An API server answer as a KubeError, with the server's own message and Status reason. */
const fromStatus = (httpStatus: number, status: Status | undefined, fallbackMessage: string): KubeError => {
  const message = status?.message !== undefined && status.message !== "" ? status.message : fallbackMessage
  return errorFromStatus(httpStatus, message, status?.reason)
}

/** Maps a non-2xx response (its status code and raw body) to a KubeError. */
export const errorFromResponse = (httpStatus: number, body: string, statusText = ""): KubeError => {
  const status = Option.getOrUndefined(decodeStatusJson(body))
  const quoted = body.trim().slice(0, maxQuotedBody)
  const fallback = quoted !== "" ? quoted : statusText !== "" ? statusText : `HTTP ${httpStatus}`
  return fromStatus(httpStatus, status, fallback)
}

/** Maps the Status object of a watch `ERROR` event (its `code` says what went wrong). */
export const errorFromStatusObject = (object: unknown): KubeError => {
  const status = Option.getOrUndefined(decodeStatus(object))
  return fromStatus(status?.code ?? 500, status, "watch failed with an ERROR event")
}
