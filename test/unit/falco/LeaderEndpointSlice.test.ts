import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  leaderEndpointFromConfig,
  leaderEndpointSlice,
  writeLeaderEndpointSlice
} from "../../../src/backends/falco/LeaderEndpointSlice.ts"
import { KubeClient } from "../../../src/services/kube/KubeClient.ts"
import { Resources } from "../../../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"
import { OperatorConfig } from "../../../src/services/OperatorConfig.ts"

const routed = OperatorConfig.make({
  falcoReceiverBindAddress: ":8443",
  falcoReceiverService: "compliance-scan-falco",
  pod: { ip: "10.244.1.7", name: "compliance-scan-abc", namespace: "ugallu-system" }
})

const replica = (podIP: string, podName: string) => ({ service: "compliance-scan-falco", namespace: "ugallu-system", podIP, podName, port: 8443 })

describe("leaderEndpointFromConfig", () => {
  it("names the Service, this Pod's IP and namespace, and the receiver's port", () => {
    expect(leaderEndpointFromConfig(routed)).toEqual({
      service: "compliance-scan-falco",
      namespace: "ugallu-system",
      podIP: "10.244.1.7",
      podName: "compliance-scan-abc",
      port: 8443
    })
  })

  it("manages nothing without a Service name or with the receiver off", () => {
    expect(leaderEndpointFromConfig({ ...routed, falcoReceiverService: undefined })).toBeUndefined()
    expect(leaderEndpointFromConfig({ ...routed, falcoReceiverService: "" })).toBeUndefined()
    expect(leaderEndpointFromConfig({ ...routed, falcoReceiverBindAddress: "" })).toBeUndefined()
  })

  it("refuses a Service without POD_IP or without a fixed port", () => {
    expect(() => leaderEndpointFromConfig({ ...routed, pod: { ...routed.pod, ip: undefined } })).toThrow(/POD_IP/u)
    expect(() => leaderEndpointFromConfig({ ...routed, falcoReceiverBindAddress: "127.0.0.1:0" })).toThrow(/fixed receiver port/u)
  })
})

describe("leaderEndpointSlice", () => {
  it("is the Service's slice, managed by the operator, with one ready endpoint and the https port", () => {
    const slice = leaderEndpointSlice(replica("10.244.1.7", "pod-a"))
    expect(slice.metadata).toEqual({
      name: "compliance-scan-falco-leader",
      namespace: "ugallu-system",
      labels: { "kubernetes.io/service-name": "compliance-scan-falco", "endpointslice.kubernetes.io/managed-by": "compliance-scan.security.ugallu.io" }
    })
    expect(slice.addressType).toBe("IPv4")
    expect(slice.endpoints).toEqual([{
      addresses: ["10.244.1.7"],
      conditions: { ready: true, serving: true, terminating: false },
      targetRef: { kind: "Pod", namespace: "ugallu-system", name: "pod-a" }
    }])
    expect(slice.ports).toEqual([{ name: "https", port: 8443, protocol: "TCP" }])
    expect(leaderEndpointSlice(replica("fd00::7", "pod-a")).addressType).toBe("IPv6")
  })
})

describe("writeLeaderEndpointSlice", () => {
  it.effect("creates the slice, leaves it alone when it already names this replica, repoints it for a new leader", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      yield* kube.create(Resources.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name: "ugallu-system" } })
      const stored = () => kube.get(Resources.EndpointSlice, "ugallu-system", "compliance-scan-falco-leader")
      expect(yield* writeLeaderEndpointSlice(kube, replica("10.244.1.7", "pod-a"))).toBe("created")
      const first = yield* stored()
      expect(yield* writeLeaderEndpointSlice(kube, replica("10.244.1.7", "pod-a"))).toBe("unchanged")
      expect((yield* stored()).metadata.resourceVersion).toBe(first.metadata.resourceVersion)
      expect(yield* writeLeaderEndpointSlice(kube, replica("10.244.2.9", "pod-b"))).toBe("updated")
      const second = yield* stored()
      expect(second.endpoints).toEqual(leaderEndpointSlice(replica("10.244.2.9", "pod-b")).endpoints)
      expect(second.metadata.resourceVersion).not.toBe(first.metadata.resourceVersion)
    }).pipe(Effect.provide(SimulatedCluster.layer())))
})
