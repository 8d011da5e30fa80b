import { Effect, Layer } from "effect"
import { CelScanner } from "./cel/CelScanner.ts"
import { FalcoReceiver } from "./falco/FalcoReceiver.ts"
import { FalcoScanner } from "./falco/FalcoScanner.ts"
import { KubeBenchScanner } from "./kube-bench/KubeBenchScanner.ts"
import { Scanners, scannersOf } from "./Scanner.ts"

/**
 * The registry: the three backends' layers merged, as the operator runs them. The Falco
 * receiver lives as long as the operator (it buffers pushed alerts between runs); it is off
 * unless configured.
 */
export const scannersLayer = Layer.effect(
  Scanners,
  Effect.gen(function*() {
    return scannersOf([yield* KubeBenchScanner, yield* FalcoScanner, yield* CelScanner])
  })
).pipe(
  Layer.provide(Layer.mergeAll(KubeBenchScanner.layer(), FalcoScanner.layer(), CelScanner.layer())),
  Layer.provide(FalcoReceiver.layer)
)
