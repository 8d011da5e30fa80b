import * as Grpc from "@grpc/grpc-js"
import * as ProtoLoader from "@grpc/proto-loader"
import { join } from "node:path"
import { falcoPriorities, type FalcoPriority } from "../../api/ComplianceScanRun.ts"
import { type FalcoEvent, formatEventTime, parseEventTime, parsePriority } from "./FalcoEvent.ts"

/**
 * Falco's gRPC API (outputs, schema, version), loaded from the .proto files next to this
 * module. Loaded by whoever needs it (scanner, simulated Falco), never cached in the module.
 */
export interface FalcoApi {
  /** Service definitions, for servers (the simulated Falco). */
  readonly outputsService: Grpc.ServiceDefinition
  readonly versionService: Grpc.ServiceDefinition
  /** Method definitions, for clients (path + serializers). */
  readonly sub: Grpc.MethodDefinition<object, OutputsResponse>
  readonly get: Grpc.MethodDefinition<object, OutputsResponse>
  readonly version: Grpc.MethodDefinition<object, VersionResponse>
}

export const protoDir = join(import.meta.dirname, "proto")

export const loadFalcoApi = (): FalcoApi => {
  const definition = ProtoLoader.loadSync(["outputs.proto", "version.proto"], {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true
  })
  const outputsService = definition["falco.outputs.service"] as Grpc.ServiceDefinition
  const versionService = definition["falco.version.service"] as Grpc.ServiceDefinition
  return {
    outputsService,
    versionService,
    sub: outputsService["sub"]!,
    get: outputsService["get"]!,
    version: versionService["version"]!
  }
}

/** `falco.outputs.response` as @grpc/proto-loader hands it over with the options above. */
export interface OutputsResponse {
  readonly time?: { readonly seconds?: string | number; readonly nanos?: number } | null
  readonly priority?: string | number
  readonly rule?: string
  readonly output?: string
  readonly output_fields?: Readonly<Record<string, string>>
  readonly hostname?: string
  readonly tags?: ReadonlyArray<string>
  readonly source?: string
  readonly source_deprecated?: string | number
}

export interface VersionResponse {
  readonly version?: string
}

/**
 * Aliased enum values decode to their first-declared name (`EMERGENCY`), and values this
 * proto does not know arrive as numbers: both map onto the lower-case priority names.
 */
const priorityOf = (value: string | number | undefined): FalcoPriority => {
  if (typeof value === "number") return falcoPriorities[value] ?? "debug"
  return parsePriority(value ?? "") ?? "debug"
}

/** The source string; Falco before 0.31 only filled the deprecated enum. */
const sourceOf = (response: OutputsResponse): string => {
  if (response.source !== undefined && response.source !== "") return response.source
  const legacy = response.source_deprecated
  return typeof legacy === "string" ? legacy.toLowerCase() : "syscall"
}

export const eventFromResponse = (response: OutputsResponse): FalcoEvent => {
  const seconds = BigInt(response.time?.seconds ?? 0)
  const nanos = response.time?.nanos ?? 0
  const time = formatEventTime(seconds, nanos)
  return {
    time,
    timeMillis: Number(seconds) * 1000 + Math.floor(nanos / 1_000_000),
    priority: priorityOf(response.priority),
    rule: response.rule ?? "",
    output: response.output ?? "",
    outputFields: { ...response.output_fields },
    hostname: response.hostname ?? "",
    tags: [...(response.tags ?? [])],
    source: sourceOf(response)
  }
}

/** The message a Falco server sends for an event (used by the simulated Falco). */
export const responseFromEvent = (event: FalcoEvent) => {
  const parsed = parseEventTime(event.time)
  const millis = parsed?.timeMillis ?? event.timeMillis
  const nanos = Number(/\.(\d{9})Z$/u.exec(event.time)?.[1] ?? String((millis % 1000) * 1_000_000))
  return {
    time: { seconds: String(Math.floor(millis / 1000)), nanos },
    priority: event.priority.toUpperCase(),
    source_deprecated: "SYSCALL",
    rule: event.rule,
    output: event.output,
    output_fields: event.outputFields,
    hostname: event.hostname,
    tags: event.tags,
    source: event.source
  }
}
