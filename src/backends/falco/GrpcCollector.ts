import * as Grpc from "@grpc/grpc-js"
import { Clock, Deferred, Effect, Option, Result, Schedule, type Scope } from "effect"
import type { CertificateSet } from "./CertificateFiles.ts"
import { FalcoStreamFailed } from "./FalcoErrors.ts"
import type { FalcoEvent } from "./FalcoEvent.ts"
import { eventFromResponse, type FalcoApi, type OutputsResponse, type VersionResponse } from "./FalcoProto.ts"

/**
 * Pulls alerts from Falco's gRPC outputs service (Falco <= 0.43) for a time span: opens
 * `sub`, asks for what is queued every poll interval, and stops at `until`. The channel and
 * the stream belong to the caller's Scope, so an interruption (deadline, shutdown) cancels
 * the stream and closes the connection.
 */

export interface GrpcCollectOptions {
  readonly api: FalcoApi
  readonly host: string
  readonly port: number
  readonly credentials: CertificateSet
  /** Epoch ms at which collection stops. */
  readonly until: number
  /** Epoch ms by which the version call must have answered. */
  readonly connectDeadline: number
  readonly pollIntervalMillis: number
  /** After `until`, how long to wait for the answer to the last poll. */
  readonly drainGraceMillis: number
  /** Collection stops early once this many alerts arrived (bounds a run's time under a flood). */
  readonly maxEvents: number
  /** Called for every alert as it arrives. */
  readonly onEvent: (event: FalcoEvent) => void
}

export interface GrpcCollection {
  /** Alerts received. */
  readonly received: number
  /** Falco's version as its version service reports it ("unknown" when it has none). */
  readonly falcoVersion: string
  /** True when `maxEvents` cut the collection short. */
  readonly truncated: boolean
  /** True when Falco ended the stream (or it failed) before `until`. */
  readonly endedEarly: boolean
  /** The stream failed mid-window: the alerts before the failure were still delivered to `onEvent`. */
  readonly error: FalcoStreamFailed | undefined
  /** Epoch ms at which collection ended. */
  readonly endedAt: number
}

const statusName = (code: number): string => Grpc.status[code] ?? String(code)

const callFailed = (what: string, error: Grpc.ServiceError) =>
  new FalcoStreamFailed({ message: `${what} failed: ${statusName(error.code)}: ${error.details || error.message}` })

/** gRPC targets put IPv6 literals in brackets. */
const target = (host: string, port: number): string => (host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`)

const askVersion = (client: Grpc.Client, api: FalcoApi, deadline: number) =>
  Effect.callback<string, FalcoStreamFailed>((resume) => {
    const call = client.makeUnaryRequest(
      api.version.path,
      api.version.requestSerialize,
      api.version.responseDeserialize,
      {},
      new Grpc.Metadata(),
      { deadline: new Date(deadline) },
      (error: Grpc.ServiceError | null, response?: VersionResponse) => {
        if (error === null) resume(Effect.succeed(response?.version || "unknown"))
        // A server without the version service can still be Falco's outputs.
        else if (error.code === Grpc.status.UNIMPLEMENTED) resume(Effect.succeed("unknown"))
        else resume(Effect.fail(callFailed(`Falco version call to ${client.getChannel().getTarget()}`, error)))
      }
    )
    return Effect.sync(() => call.cancel())
  })

export const collectOverGrpc = (options: GrpcCollectOptions): Effect.Effect<GrpcCollection, FalcoStreamFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const { api } = options
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Grpc.Client(
          target(options.host, options.port),
          Grpc.credentials.createSsl(options.credentials.ca, options.credentials.key, options.credentials.cert),
          // One connection per run, never shared with other runs' channels.
          { "grpc.use_local_subchannel_pool": 1, "grpc.max_receive_message_length": 16 * 1024 * 1024 }
        )
      ),
      (client) => Effect.sync(() => client.close())
    )
    const falcoVersion = yield* askVersion(client, api, options.connectDeadline)

    let received = 0
    let truncated = false
    const ended = Deferred.makeUnsafe<void, FalcoStreamFailed>()
    const stream = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const call = client.makeBidiStreamRequest(api.sub.path, api.sub.requestSerialize, api.sub.responseDeserialize, {
          // A backstop should every other stop fail: the server drops the stream shortly after.
          deadline: new Date(options.until + options.drainGraceMillis + 5_000)
        })
        call.on("data", (response: OutputsResponse) => {
          if (truncated) return
          received++
          options.onEvent(eventFromResponse(response))
          if (received >= options.maxEvents) {
            truncated = true
            Deferred.doneUnsafe(ended, Effect.void)
          }
        })
        call.on("end", () => Deferred.doneUnsafe(ended, Effect.void))
        call.on("error", (error: Grpc.ServiceError) =>
          Deferred.doneUnsafe(
            ended,
            error.code === Grpc.status.CANCELLED ? Effect.void : Effect.fail(callFailed("Falco outputs stream", error))
          )
        )
        return call
      }),
      (call) => Effect.sync(() => call.cancel())
    )

    const poll = Effect.sync(() => {
      stream.write({})
    }).pipe(Effect.repeat(Schedule.spaced(options.pollIntervalMillis)))
    const remaining = Math.max(0, options.until - (yield* Clock.currentTimeMillis))
    // Until the window closes, or the server ends the stream (Falco shutting down, an
    // error), or the cap. A failure mid-window keeps what came before it.
    const streamEnd = yield* Deferred.await(ended).pipe(
      Effect.result,
      Effect.map(Option.some),
      Effect.raceFirst(poll.pipe(Effect.as(Option.none()))),
      Effect.raceFirst(Effect.sleep(remaining).pipe(Effect.as(Option.none())))
    )
    if (Option.isNone(streamEnd)) {
      // Half-close: Falco answers the last poll and ends the stream; whatever misses the
      // grace period stays queued in Falco for the next run.
      stream.end()
      yield* Deferred.await(ended).pipe(Effect.timeoutOption(options.drainGraceMillis), Effect.ignore)
    }
    const error = Option.isSome(streamEnd) && Result.isFailure(streamEnd.value) ? streamEnd.value.failure : undefined
    return {
      received,
      falcoVersion,
      truncated,
      endedEarly: Option.isSome(streamEnd) && !truncated,
      error,
      endedAt: yield* Clock.currentTimeMillis
    } satisfies GrpcCollection
  })
