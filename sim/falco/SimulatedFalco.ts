import * as Grpc from "@grpc/grpc-js"
import { Clock, Effect, Schedule, Schema, type Scope } from "effect"
import type { FalcoEvent } from "../../src/backends/falco/FalcoEvent.ts"
import { type FalcoApi, loadFalcoApi, responseFromEvent } from "../../src/backends/falco/FalcoProto.ts"
import { simulatedAlert } from "./SimulatedAlerts.ts"

/**
 * A stand-in for Falco <= 0.43's gRPC server, speaking the same proto with real mutual TLS
 * (a client without a certificate signed by `clientCA` is refused), for the demo, tests
 * and the bench. Like Falco it keeps one queue: each alert goes to one consumer.
 */

export class SimulatedFalcoStartFailed extends Schema.TaggedError<SimulatedFalcoStartFailed>()("SimulatedFalcoStartFailed", {
  message: Schema.String
}) {}

export interface SimulatedFalcoOptions {
  /** PEM text of the server certificate, its key, and the CA that client certificates must chain to. */
  readonly serverCert: string | Buffer
  readonly serverKey: string | Buffer
  readonly clientCA: string | Buffer
  /** Default 127.0.0.1 and a free port. */
  readonly host?: string
  readonly port?: number
  /** Alerts queued at start. */
  readonly initialEvents?: ReadonlyArray<FalcoEvent>
  /** Realistic alerts generated per second while it runs (default 0: only what is enqueued). */
  readonly eventsPerSecond?: number
  /**
   * `hang`: streams open but never deliver nor end (a stuck Falco), for deadline tests;
   * `fail`: the outputs stream delivers what is queued at the first poll, then ends with
   * an INTERNAL error status (a Falco failing mid-window).
   */
  readonly behaviour?: "deliver" | "hang" | "fail"
  /** What the version service reports (default 0.43.1). */
  readonly version?: string
}

export interface SimulatedFalco {
  readonly host: string
  readonly port: number
  /** Adds alerts to the queue; the next poll of a consumer gets them. */
  readonly enqueue: (events: Iterable<FalcoEvent>) => Effect.Effect<void>
  /** Alerts waiting for a consumer. */
  readonly queued: Effect.Effect<number>
  /** Alerts written to consumers so far. */
  readonly delivered: Effect.Effect<number>
  /** Output streams open right now (0 once every consumer has gone). */
  readonly openStreams: Effect.Effect<number>
}

const parseVersion = (version: string) => {
  const [core = "", prerelease = ""] = version.split("-", 2)
  const [major = 0, minor = 0, patch = 0] = core.split(".").map(Number)
  return { version, major, minor, patch, prerelease, build: "", engine_version: "0.50.0", engine_major: 0, engine_minor: 50, engine_patch: 0, engine_fields_checksum: "" }
}

export const makeSimulatedFalco = (
  options: SimulatedFalcoOptions
): Effect.Effect<SimulatedFalco, SimulatedFalcoStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const api: FalcoApi = loadFalcoApi()
    let queue: Array<FalcoEvent> = [...(options.initialEvents ?? [])]
    const open = new Set<Grpc.ServerWritableStream<unknown, unknown> | Grpc.ServerDuplexStream<unknown, unknown>>()
    let delivered = 0
    const hang = options.behaviour === "hang"

    /**
     * Writes what is queued, in order, pausing whenever the consumer's flow-control window
     * is full (as a real server must) and putting back what a cancelled consumer missed.
     */
    const drainTo = (call: Grpc.ServerWritableStream<unknown, unknown> | Grpc.ServerDuplexStream<unknown, unknown>, done?: () => void) => {
      const batch = queue.splice(0, queue.length)
      let index = 0
      const writeSome = () => {
        while (index < batch.length) {
          if (call.cancelled) {
            queue = batch.slice(index).concat(queue)
            return
          }
          delivered++
          const more = call.write(responseFromEvent(batch[index++]!))
          if (!more && index < batch.length) {
            call.once("drain", writeSome)
            return
          }
        }
        done?.()
      }
      writeSome()
    }

    const track = (call: Grpc.ServerWritableStream<unknown, unknown> | Grpc.ServerDuplexStream<unknown, unknown>) => {
      open.add(call)
      const forget = () => open.delete(call)
      call.on("cancelled", forget)
      call.on("close", forget)
      call.on("finish", forget)
      call.on("error", forget)
    }

    const server = new Grpc.Server()
    server.addService(api.outputsService, {
      get: (call: Grpc.ServerWritableStream<unknown, unknown>) => {
        track(call)
        if (hang) return
        drainTo(call, () => call.end())
      },
      sub: (call: Grpc.ServerDuplexStream<unknown, unknown>) => {
        track(call)
        call.on("data", () => {
          if (options.behaviour === "fail") {
            drainTo(call, () => call.emit("error", { code: Grpc.status.INTERNAL, details: "simulated Falco failure" }))
          } else if (!hang) drainTo(call)
        })
        call.on("end", () => {
          if (!hang) call.end()
        })
      }
    })
    server.addService(api.versionService, {
      version: (_call: Grpc.ServerUnaryCall<unknown, unknown>, callback: Grpc.sendUnaryData<unknown>) =>
        callback(null, parseVersion(options.version ?? "0.43.1"))
    })

    const credentials = Grpc.ServerCredentials.createSsl(
      Buffer.from(options.clientCA),
      [{ cert_chain: Buffer.from(options.serverCert), private_key: Buffer.from(options.serverKey) }],
      // Falco's gRPC server over TCP always requires and verifies a client certificate.
      true
    )
    const host = options.host ?? "127.0.0.1"
    const address = host.includes(":") ? `[${host}]:${options.port ?? 0}` : `${host}:${options.port ?? 0}`
    const port = yield* Effect.acquireRelease(
      Effect.callback<number, SimulatedFalcoStartFailed>((resume) => {
        server.bindAsync(address, credentials, (error, boundPort) => {
          if (error === null) resume(Effect.succeed(boundPort))
          else resume(Effect.fail(new SimulatedFalcoStartFailed({ message: `cannot listen on ${address}: ${error.message}` })))
        })
      }),
      () => Effect.sync(() => server.forceShutdown())
    )

    const perSecond = options.eventsPerSecond ?? 0
    if (perSecond > 0) {
      // Ten ticks a second, each adding its share, so the stream looks continuous.
      let index = 0
      let owed = 0
      yield* Effect.gen(function*() {
        owed += perSecond / 10
        const now = yield* Clock.currentTimeMillis
        while (owed >= 1) {
          queue.push(simulatedAlert(index++, now))
          owed--
        }
      }).pipe(Effect.repeat(Schedule.spaced(100)), Effect.forkScoped)
    }

    return {
      host,
      port,
      enqueue: (events) =>
        Effect.sync(() => {
          for (const event of events) queue.push(event)
        }),
      queued: Effect.sync(() => queue.length),
      delivered: Effect.sync(() => delivered),
      openStreams: Effect.sync(() => open.size)
    } satisfies SimulatedFalco
  })
