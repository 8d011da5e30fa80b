import { createInterface } from "node:readline"
import { Effect, Layer } from "effect"
import { FalcoReceiver, type FalcoReceiverOptions } from "../../../src/backends/falco/FalcoReceiver.ts"
import { Metrics } from "../../../src/services/Metrics.ts"

/**
 * The operator's Falco receiver alone in its own process, so a test can start it with a
 * heap limit (`--max-old-space-size`) and see it survive. Options come as JSON in argv[2];
 * it prints `{"port": n}` once listening, and answers each `stats` line on stdin with its
 * memory (after a full GC when started with --expose-gc) and buffer figures.
 */
const options = JSON.parse(process.argv[2] ?? "{}") as FalcoReceiverOptions

const serveStats = async (receiver: FalcoReceiver["Service"]) => {
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== "stats") continue
    ;(globalThis as { gc?: () => void }).gc?.()
    const memory = process.memoryUsage()
    const stats = {
      heapUsed: memory.heapUsed,
      rss: memory.rss,
      buffered: await Effect.runPromise(receiver.buffered),
      bufferedBytes: await Effect.runPromise(receiver.bufferedBytes)
    }
    process.stdout.write(`${JSON.stringify(stats)}\n`)
  }
}

const program = Effect.gen(function*() {
  const receiver = yield* FalcoReceiver
  process.stdout.write(`${JSON.stringify({ port: receiver.address!.port })}\n`)
  yield* Effect.promise(() => serveStats(receiver))
}).pipe(Effect.provide(FalcoReceiver.layerWith(options).pipe(Layer.provide(Metrics.layerTest))))

Effect.runPromise(program).then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
