import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref, Result } from "effect"
import { parseBindAddress } from "../../src/services/BindAddress.ts"
import { HttpEndpoints } from "../../src/services/HttpEndpoints.ts"
import { Metrics } from "../../src/services/Metrics.ts"
import { OperatorConfig } from "../../src/services/OperatorConfig.ts"

const get = (port: number | undefined, path: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`)
    return { status: response.status, type: response.headers.get("content-type"), body: await response.text() }
  })

describe("HTTP endpoints", () => {
  it.live("/metrics serves the Prometheus text; /healthz is ok; /readyz follows readiness", () =>
    Effect.gen(function*() {
      const ready = yield* Ref.make(false)
      const layer = HttpEndpoints.layer(Ref.get(ready)).pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            Metrics.layer,
            OperatorConfig.layer({ metricsBindAddress: "127.0.0.1:0", healthProbeBindAddress: "127.0.0.1:0" })
          )
        )
      )
      yield* Effect.gen(function*() {
        const endpoints = yield* HttpEndpoints
        const metrics = yield* Metrics
        metrics.runsTotal.inc({ backend: "cel", outcome: "Succeeded" })
        const scraped = yield* get(endpoints.metricsPort, "/metrics")
        expect(scraped.status).toBe(200)
        expect(scraped.type).toContain("text/plain")
        expect(scraped.body).toContain('ugallu_compliance_scan_runs_total{backend="cel",outcome="Succeeded"} 1')
        expect(scraped.body).toContain("process_resident_memory_bytes")
        expect((yield* get(endpoints.probePort, "/healthz")).status).toBe(200)
        expect((yield* get(endpoints.probePort, "/readyz")).status).toBe(503)
        yield* Ref.set(ready, true)
        expect(yield* get(endpoints.probePort, "/readyz")).toMatchObject({ status: 200, body: "ok\n" })
        expect((yield* get(endpoints.metricsPort, "/nope")).status).toBe(404)
      }).pipe(Effect.provide(layer))
    }))

  it("bind addresses: ':8080' (every interface), host:port, [v6]:port, and '0' turns the endpoint off", () => {
    expect(parseBindAddress(":8080")).toEqual(Result.succeed({ host: undefined, port: 8080 }))
    expect(parseBindAddress("127.0.0.1:9090")).toEqual(Result.succeed({ host: "127.0.0.1", port: 9090 }))
    expect(parseBindAddress("[::1]:8081")).toEqual(Result.succeed({ host: "::1", port: 8081 }))
    expect(parseBindAddress("0")).toEqual(Result.succeed(undefined))
    const malformed = parseBindAddress("8080")
    expect(Result.isFailure(malformed) && malformed.failure).toMatchObject({
      _tag: "InvalidBindAddress",
      message: expect.stringMatching(/invalid bind address "8080"/)
    })
    expect(Result.isFailure(parseBindAddress(":65536"))).toBe(true)
  })

  it.live("a malformed bind flag fails the layer with a typed error, not a crash", () =>
    Effect.gen(function*() {
      const layer = HttpEndpoints.layer(Effect.succeed(true)).pipe(
        Layer.provide(Layer.mergeAll(Metrics.layerTest, OperatorConfig.layer({ metricsBindAddress: "8080", healthProbeBindAddress: "0" })))
      )
      const error = yield* Effect.flip(Effect.scoped(Layer.build(layer)))
      expect(error).toMatchObject({ _tag: "HttpEndpointFailed", message: expect.stringContaining('invalid bind address "8080"') })
    }))

  it.live("a port already in use fails the layer with a typed error", () =>
    Effect.gen(function*() {
      const first = HttpEndpoints.layer(Effect.succeed(true)).pipe(
        Layer.provide(Layer.mergeAll(Metrics.layerTest, OperatorConfig.layer({ metricsBindAddress: "127.0.0.1:0", healthProbeBindAddress: "0" })))
      )
      yield* Effect.gen(function*() {
        const taken = (yield* HttpEndpoints).metricsPort
        const second = HttpEndpoints.layer(Effect.succeed(true)).pipe(
          Layer.provide(Layer.mergeAll(Metrics.layerTest, OperatorConfig.layer({ metricsBindAddress: `127.0.0.1:${taken}`, healthProbeBindAddress: "0" })))
        )
        const error = yield* Effect.flip(Effect.scoped(Layer.build(second)))
        expect(error).toMatchObject({ _tag: "HttpEndpointFailed", message: expect.stringContaining("EADDRINUSE") })
      }).pipe(Effect.provide(first))
    }))
})
