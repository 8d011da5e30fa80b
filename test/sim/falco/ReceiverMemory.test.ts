import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { existsSync, realpathSync } from "node:fs"
import { createInterface, type Interface } from "node:readline"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { receiverDefaults } from "../../../src/backends/falco/FalcoReceiver.ts"
import { simulatedAlert, toHttpJson } from "../../../sim/falco/SimulatedAlerts.ts"
import { Pki, post } from "./FalcoFixtures.ts"

// A quarter of the Deployment's 512Mi limit: V8's default heap for that much memory.
const heapLimitMiB = 128
const node = existsSync("node_modules/.bin/node") ? realpathSync("node_modules/.bin/node") : process.execPath

interface Stats {
  readonly heapUsed: number
  readonly rss: number
  readonly buffered: number
  readonly bufferedBytes: number
}

/** The receiver in its own process with a heap limit below the Deployment's 512Mi. */
const startReceiverProcess = Effect.gen(function*() {
  const pki = yield* Pki
  const options = {
    bindAddress: "127.0.0.1:0",
    certFile: pki.main.server.certFile,
    keyFile: pki.main.server.keyFile,
    clientCAFile: pki.main.ca.certFile,
    // Only the byte bound may limit the buffer here, and no rate limit gets in the way.
    bufferSize: 1_000_000,
    requestsPerSecond: 100_000,
    burst: 100_000
  }
  const child = yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn(node, [`--max-old-space-size=${heapLimitMiB}`, "--expose-gc", "test/sim/falco/ReceiverProcess.ts", JSON.stringify(options)], {
        stdio: ["pipe", "pipe", "pipe"]
      })
    ),
    (started: ChildProcessWithoutNullStreams) => Effect.sync(() => started.kill("SIGKILL"))
  )
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
  const lines: Interface = createInterface({ input: child.stdout })
  const nextLine = Effect.callback<string, string>((resume) => {
    const onLine = (line: string) => {
      if (!line.startsWith("{\"")) return // the receiver's own log lines
      cleanup()
      resume(Effect.succeed(line))
    }
    const onExit = (code: number | null, signal: string | null) => {
      cleanup()
      resume(Effect.fail(`receiver process exited (${code ?? signal}): ${stderr.slice(-2_000)}`))
    }
    const cleanup = () => {
      lines.off("line", onLine)
      child.off("exit", onExit)
    }
    lines.on("line", onLine)
    child.once("exit", onExit)
  })
  const { port } = JSON.parse(yield* nextLine) as { port: number }
  const stats = Effect.gen(function*() {
    child.stdin.write("stats\n")
    return JSON.parse(yield* nextLine) as Stats
  })
  return { port, stats, alive: Effect.sync(() => child.exitCode === null && child.signalCode === null) }
})

layer(Pki.layer, { excludeTestServices: true })("the receiver's memory is bounded in bytes", (it) => {
  it.effect("a process with a 128 MiB heap survives authenticated alerts posted far past the buffer's budget", () =>
    Effect.gen(function*() {
      const pki = yield* Pki
      const receiver = yield* startReceiverProcess
      const send = (body: unknown) => post({ port: receiver.port, ca: pki.main.ca.cert, client: pki.main.client, body: JSON.stringify(body) })
      const now = Date.now()
      // 200 alerts with 1 MB outputs (200 MB, near the whole heap) ...
      const huge = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, index) => index),
        (index) => send({ ...toHttpJson(simulatedAlert(index, now)), output: `${index} ${"x".repeat(1_000_000)}` }),
        { concurrency: 4 }
      )
      expect(huge.filter((answer) => answer.status !== 200)).toEqual([])
      // ... then 12,000 alerts with 5 KB outputs in batches: past the 32 MiB byte bound.
      const batches = yield* Effect.forEach(
        Array.from({ length: 80 }, (_, batch) => batch),
        (batch) =>
          send(Array.from({ length: 150 }, (_, index) => ({
            ...toHttpJson(simulatedAlert(batch * 150 + index, now)),
            output: `${batch}/${index} ${"y".repeat(5_000)}`
          }))),
        { concurrency: 4 }
      )
      expect(batches.filter((answer) => answer.status !== 200)).toEqual([])

      expect(yield* receiver.alive).toBe(true)
      const stats = yield* receiver.stats
      expect(stats.bufferedBytes).toBeLessThanOrEqual(receiverDefaults.bufferBytes)
      // The bound was reached (so it did the evicting), and the buffer still holds thousands of alerts.
      expect(stats.bufferedBytes).toBeGreaterThan(receiverDefaults.bufferBytes * 0.9)
      expect(stats.buffered).toBeGreaterThan(3_000)
      expect(stats.buffered).toBeLessThan(12_000)
      // The accounting is conservative: the real heap stays under the limit with the whole buffer in it.
      expect(stats.heapUsed).toBeLessThan(heapLimitMiB * 1024 * 1024 * 0.75)
      console.log(`receiver process after 270 MB of alerts: ${stats.buffered} buffered, ${(stats.bufferedBytes / 2 ** 20).toFixed(1)} MiB accounted, heap ${(stats.heapUsed / 2 ** 20).toFixed(1)} MiB, RSS ${(stats.rss / 2 ** 20).toFixed(1)} MiB`)
    }), 120_000)
})
