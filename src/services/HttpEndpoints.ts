import { Context, Effect, Layer } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Metrics } from "./Metrics.ts"
import { OperatorConfig } from "./OperatorConfig.ts"

/** `:8080`, `127.0.0.1:8080`, `[::1]:8080`; `0` turns the endpoint off (controller-runtime's convention). */
export const parseBindAddress = (address: string): { host: string; port: number } | undefined => {
  if (address === "0") return undefined
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/u.exec(address)
  if (match === null) throw new Error(`invalid bind address ${JSON.stringify(address)}: expected host:port or :port`)
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port: Number(match[3]) }
}

type Handler = (request: http.IncomingMessage) => Promise<{ status: number; contentType: string; body: string }>

const serve = (name: string, address: string, handler: Handler) =>
  Effect.acquireRelease(
    Effect.callback<http.Server | undefined, Error>((resume) => {
      const bind = parseBindAddress(address)
      if (bind === undefined) return resume(Effect.succeed(undefined))
      const server = http.createServer((request, response) => {
        handler(request).then(
          ({ status, contentType, body }) => response.writeHead(status, { "content-type": contentType }).end(body),
          (error) => response.writeHead(500).end(String(error))
        )
      })
      server.once("error", (error) => resume(Effect.fail(new Error(`${name} server on ${address}: ${error.message}`))))
      server.listen(bind.port, bind.host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      server === undefined
        ? Effect.void
        : Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
  )

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
        const runPromise = <A>(effect: Effect.Effect<A, never, R>) => Effect.runPromise(Effect.provide(effect, services))
        const metricsServer = yield* serve("metrics", config.metricsBindAddress, async (request) => {
          if (request.url?.split("?")[0] !== "/metrics") return text(404, "not found\n")
          const { contentType, body } = await runPromise(metrics.render)
          return { status: 200, contentType, body }
        })
        const probeServer = yield* serve("health probe", config.healthProbeBindAddress, async (request) => {
          switch (request.url?.split("?")[0]) {
            case "/healthz":
              return text(200, "ok\n")
            case "/readyz":
              return (await runPromise(ready)) ? text(200, "ok\n") : text(503, "not ready\n")
            default:
              return text(404, "not found\n")
          }
        })
        const portOf = (server: http.Server | undefined) => (server?.address() as AddressInfo | null)?.port
        return HttpEndpoints.of({ metricsPort: portOf(metricsServer), probePort: portOf(probeServer) })
      })
    )
}
