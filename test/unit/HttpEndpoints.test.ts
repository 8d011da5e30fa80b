import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { HttpEndpoints, parseBindAddress } from "../../src/services/HttpEndpoints.ts"
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

  it("bind addresses: ':8080', host:port, [v6]:port, and '0' turns the endpoint off", () => {
    expect(parseBindAddress(":8080")).toEqual({ host: "0.0.0.0", port: 8080 })
    expect(parseBindAddress("127.0.0.1:9090")).toEqual({ host: "127.0.0.1", port: 9090 })
    expect(parseBindAddress("[::1]:8081")).toEqual({ host: "::1", port: 8081 })
    expect(parseBindAddress("0")).toBeUndefined()
    expect(() => parseBindAddress("8080")).toThrow(/invalid bind address "8080"/)
  })
})
