import { Effect, Layer } from "effect"
import { KubeClient } from "../../../src/services/kube/KubeClient.ts"

type KubeService = KubeClient["Service"]

/**
 * The simulated KubeClient with a `listPage` (as LiveKubeClient has) made from the simulated
 * client's own methods: how a test stands in for the live client's pages.
 */
export const withListPage = (listPage: (kube: KubeService) => NonNullable<KubeService["listPage"]>): Layer.Layer<KubeClient, never, KubeClient> =>
  Layer.effect(
    KubeClient,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      return KubeClient.of({ ...kube, listPage: listPage(kube) })
    })
  )
