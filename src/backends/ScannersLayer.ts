import { Effect, Layer } from "effect"
import { CelScanner } from "./cel/CelScanner.ts"
import { FalcoReceiver } from "./falco/FalcoReceiver.ts"
import { makeFalcoScanner } from "./falco/FalcoScanner.ts"
import { KubeBenchScanner } from "./kube-bench/KubeBenchScanner.ts"
import { Scanners, scannersOf } from "./Scanner.ts"

/**
 * The three backends, as the operator runs them. The Falco receiver lives as long as the
 * operator (it buffers pushed alerts between runs); it is off unless configured.
 */
export const scannersLayer = Layer.effect(
  Scanners,
  Effect.gen(function*() {
    const cel = yield* CelScanner.make()
    const kubeBench = yield* KubeBenchScanner.make()
    const falco = yield* makeFalcoScanner()
    return scannersOf([kubeBench, falco, cel])
  })
).pipe(Layer.provide(FalcoReceiver.layer))
