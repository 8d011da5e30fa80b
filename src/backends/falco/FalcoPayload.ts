import { Predicate, Result, Schema } from "effect"
import { type FalcoEvent, fieldText, parseEventTime, parsePriority } from "./FalcoEvent.ts"

/**
 * The JSON alerts Falco 0.44+ POSTs with `json_output` + `http_output`, and Falcosidekick's
 * webhook output (the same fields plus `uuid`). One alert per request from Falco; an array
 * of alerts (a batch) is accepted too.
 */
const HttpAlert = Schema.Struct({
  time: Schema.String,
  rule: Schema.String,
  priority: Schema.String,
  output: Schema.optionalKey(Schema.NullOr(Schema.String)),
  source: Schema.optionalKey(Schema.NullOr(Schema.String)),
  hostname: Schema.optionalKey(Schema.NullOr(Schema.String)),
  tags: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
  output_fields: Schema.optionalKey(Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown))),
  uuid: Schema.optionalKey(Schema.String)
})
type HttpAlert = typeof HttpAlert.Type

const decodeAlert = Schema.decodeUnknownResult(HttpAlert)

/** `falco` for Falco's own http_output, `falcosidekick` when the sidekick's `uuid` is there. */
export type PayloadFormat = "falco" | "falcosidekick"

export interface DecodedAlert {
  readonly event: FalcoEvent
  readonly format: PayloadFormat
}

const toEvent = (alert: HttpAlert, position: string): Result.Result<FalcoEvent, string> => {
  const time = parseEventTime(alert.time)
  if (time === undefined) return Result.fail(`${position}time ${JSON.stringify(alert.time)} is not an RFC 3339 time`)
  const priority = parsePriority(alert.priority)
  if (priority === undefined) return Result.fail(`${position}priority ${JSON.stringify(alert.priority)} is not a Falco priority`)
  const outputFields: Record<string, string> = {}
  for (const [name, value] of Object.entries(alert.output_fields ?? {})) outputFields[name] = fieldText(value)
  return Result.succeed({
    ...time,
    priority,
    rule: alert.rule,
    output: alert.output ?? "",
    outputFields,
    hostname: alert.hostname ?? "",
    tags: alert.tags ?? [],
    source: alert.source ?? "syscall"
  })
}

/**
 * Parsed JSON of one request to alerts; fails with a sentence naming the first problem
 * (the whole request is refused, so a sender never has half a batch stored silently).
 */
export const decodeAlerts = (body: unknown): Result.Result<ReadonlyArray<DecodedAlert>, string> => {
  const items = Array.isArray(body) ? body : [body]
  const alerts: Array<DecodedAlert> = []
  for (const [index, item] of items.entries()) {
    const position = Array.isArray(body) ? `alert ${index}: ` : ""
    if (!Predicate.isObject(item) || Array.isArray(item)) {
      return Result.fail(`${position}an alert must be a JSON object (a batch: an array of them)`)
    }
    const decoded = decodeAlert(item)
    if (Result.isFailure(decoded)) return Result.fail(`${position}${decoded.failure.message.replace(/\s*\n\s*/gu, " ")}`)
    const event = toEvent(decoded.success, position)
    if (Result.isFailure(event)) return Result.fail(event.failure)
    alerts.push({ event: event.success, format: decoded.success.uuid === undefined ? "falco" : "falcosidekick" })
  }
  return Result.succeed(alerts)
}
