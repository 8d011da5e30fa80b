import { Context, Effect, Layer, Schema } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { type BindAddress, parseBindAddress } from "./BindAddress.ts"
import { Metrics } from "./Metrics.ts"
import { OperatorConfig } from "./OperatorConfig.ts"

/** An endpoint could not be served: a malformed bind flag, or the port cannot be bound. */
export class HttpEndpointFailed extends Schema.TaggedError<HttpEndpointFailed>()("HttpEndpointFailed", {
  message: Schema.String
}) {}

interface Reply {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

type Handler = (request: http.IncomingMessage) => Effect.Effect<Reply>

const listen = (name: string, address: string, bind: BindAddress, handler: Handler, run: <A>(effect: Effect.Effect<A>) => Promise<A>) =>
  Effect.callback<http.Server, HttpEndpointFailed>((resume) => {
    const server = http.createServer((request, response) => {
      run(handler(request)).then(
        ({ status, contentType, body }) => response.writeHead(status, { "content-type": contentType }).end(body),
        (error) => response.writeHead(500).end(String(error))
      )
    })
    server.once("error", (error) => resume(Effect.fail(new HttpEndpointFailed({ message: `${name} server on ${address}: ${error.message}` }))))
    server.listen(bind.port, bind.host, () => resume(Effect.succeed(server)))
  })

/** Serves `handler` on `address` until the Scope closes; nothing when the address is `0`. */
const serve = (name: string, address: string, handler: Handler) =>
  Effect.gen(function*() {
    const bind = yield* parseBindAddress(address).pipe(
      Effect.fromResult,
      Effect.mapError((error) => new HttpEndpointFailed({ message: `${name} server: ${error.message}` }))
    )
    if (bind === undefined) return undefined
    // Requests run on this fiber's services (logger, references), not on a bare runtime.
    const run = Effect.runPromiseWith(yield* Effect.context<never>())
    return yield* Effect.acquireRelease(
      listen(name, address, bind, handler, run),
      (server) =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
  })

const text = (status: number, body: string) => ({ status, contentType: "text/plain; charset=utf-8", body })

/**
 * `/metrics` on the metrics address, `/healthz` and `/readyz` on the probe address. Live
 * as long as the layer; the bound ports are exposed so tests can bind to port 0.
 */
export class HttpEndpoints extends Context.Service<
  HttpEndpoints,
  { readonly metricsPort: number | undefined; readonly probePort: number | undefined }
>()("compliance-scan/services/HttpEndpoints") {
  static readonly layer = <R>(ready: Effect.Effect<boolean, never, R>) =>
    Layer.effect(
      HttpEndpoints,
      Effect.gen(function*() {
        const config = yield* OperatorConfig
        const metrics = yield* Metrics
        const services = yield* Effect.context<R>()
        const metricsServer = yield* serve("metrics", config.metricsBindAddress, (request) => {
          if (request.url?.split("?")[0] !== "/metrics") return Effect.succeed(text(404, "not found\n"))
          return Effect.map(metrics.render, ({ contentType, body }) => ({ status: 200, contentType, body }))
        })
        const probeServer = yield* serve("health probe", config.healthProbeBindAddress, (request) => {
          switch (request.url?.split("?")[0]) {
            case "/healthz":
              return Effect.succeed(text(200, "ok\n"))
            case "/readyz":
              return Effect.map(Effect.provide(ready, services), (isReady) => isReady ? text(200, "ok\n") : text(503, "not ready\n"))
            default:
              return Effect.succeed(text(404, "not found\n"))
          }
        })
        const portOf = (server: http.Server | undefined) => (server?.address() as AddressInfo | null)?.port
        return HttpEndpoints.of({ metricsPort: portOf(metricsServer), probePort: portOf(probeServer) })
      })
    )
}
