import { describe, expect, it } from "@effect/vitest"
import { knownBenchmarks, loadKubeBenchMapping } from "../../../src/backends/kube-bench/KubeBenchMapping.ts"
import { benchmarkFor, benchmarksOfPlatformRows, detectPlatform, minorOf } from "../../../src/backends/kube-bench/KubeBenchPlatform.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"

const mapping = loadKubeBenchMapping()

const node = (input: {
  readonly kubeletVersion?: string
  readonly providerID?: string
  readonly labels?: Record<string, string>
  readonly annotations?: Record<string, string>
}): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name: "n", labels: input.labels ?? {}, annotations: input.annotations ?? {} },
  spec: input.providerID === undefined ? {} : { providerID: input.providerID },
  status: input.kubeletVersion === undefined ? {} : { nodeInfo: { kubeletVersion: input.kubeletVersion } }
})

const resolve = (object: KubeObject) => benchmarkFor(detectPlatform(object), mapping)

/** Node objects as each platform's nodes look (kubeletVersion strings as the providers print them). */
const cases: ReadonlyArray<readonly [string, KubeObject, string, string]> = [
  // [what, node, platform, benchmark]
  ["kubeadm 1.27", node({ kubeletVersion: "v1.27.16" }), "kubernetes", "cis-1.9"],
  ["kubeadm 1.28", node({ kubeletVersion: "v1.28.15" }), "kubernetes", "cis-1.10"],
  ["kubeadm 1.31", node({ kubeletVersion: "v1.31.4" }), "kubernetes", "cis-1.11"],
  ["kubeadm 1.34", node({ kubeletVersion: "v1.34.1" }), "kubernetes", "cis-1.12"],
  ["kubeadm 1.36 (newer than the mapping)", node({ kubeletVersion: "v1.36.3" }), "kubernetes", "cis-1.12"],
  ["kubeadm 1.24", node({ kubeletVersion: "v1.24.17" }), "kubernetes", "cis-1.24"],
  ["kubeadm 1.18", node({ kubeletVersion: "v1.18.20" }), "kubernetes", "cis-1.6"],
  ["EKS 1.31 managed node group", node({ kubeletVersion: "v1.31.4-eks-aeac579", providerID: "aws:///eu-west-1a/i-0abc", labels: { "eks.amazonaws.com/nodegroup": "ng-1" } }), "eks", "eks-1.7.0"],
  ["EKS 1.33", node({ kubeletVersion: "v1.33.5-eks-113cf36" }), "eks", "eks-1.8.0"],
  ["EKS 1.27 (eks-1.5.0 range)", node({ kubeletVersion: "v1.27.16-eks-a18cd3a" }), "eks", "eks-1.5.0"],
  ["EKS Fargate (label only)", node({ kubeletVersion: "v1.30.0", labels: { "eks.amazonaws.com/compute-type": "fargate" } }), "eks", "eks-1.7.0"],
  ["GKE 1.30", node({ kubeletVersion: "v1.30.5-gke.1014001", providerID: "gce://proj/europe-west1-b/gke-pool-1" }), "gke", "gke-1.8.0"],
  ["GKE 1.32", node({ kubeletVersion: "v1.32.2-gke.1182003", labels: { "cloud.google.com/gke-nodepool": "default-pool" } }), "gke", "gke-1.9.0"],
  ["GKE 1.29", node({ kubeletVersion: "v1.29.10-gke.1227000" }), "gke", "gke-1.6.0"],
  ["AKS 1.30", node({ kubeletVersion: "v1.30.5", providerID: "azure:///subscriptions/x/resourceGroups/mc/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np/virtualMachines/0", labels: { "kubernetes.azure.com/cluster": "MC_rg_aks_westeurope" } }), "aks", "aks-1.7"],
  ["AKS 1.32 (providerID only)", node({ kubeletVersion: "v1.32.0", providerID: "azure:///subscriptions/x/vm/0" }), "aks", "aks-1.8"],
  ["ACK", node({ kubeletVersion: "v1.30.1-aliyun.1", providerID: "alicloud://cn-hangzhou.i-bp1" }), "ack", "ack-1.0"],
  ["ACK (label only)", node({ kubeletVersion: "v1.31.1", labels: { "alibabacloud.com/nodepool-id": "np1" } }), "ack", "ack-1.0"],
  ["OpenShift 4.14 (Kubernetes 1.27)", node({ kubeletVersion: "v1.27.6+f67aeb3", labels: { "node.openshift.io/os_id": "rhcos" } }), "openshift", "rh-1.8"],
  ["OpenShift 4.12 (Kubernetes 1.25)", node({ kubeletVersion: "v1.25.16+6df2177", labels: { "node.openshift.io/os_id": "rhcos" } }), "openshift", "rh-1.4"],
  ["OpenShift 4.8 (Kubernetes 1.21)", node({ kubeletVersion: "v1.21.14+a17bdb3", labels: { "node.openshift.io/os_id": "rhcos" } }), "openshift", "rh-1.0"],
  ["k3s 1.26", node({ kubeletVersion: "v1.26.15+k3s1", labels: { "node.kubernetes.io/instance-type": "k3s" } }), "k3s", "k3s-cis-1.8"],
  ["k3s 1.31", node({ kubeletVersion: "v1.31.4+k3s1" }), "k3s", "k3s-cis-1.9"],
  ["k3s 1.24", node({ kubeletVersion: "v1.24.17+k3s1" }), "k3s", "k3s-cis-1.24"],
  ["RKE2 1.27", node({ kubeletVersion: "v1.27.16+rke2r1" }), "rke2", "rke2-cis-1.8"],
  ["RKE2 1.25", node({ kubeletVersion: "v1.25.16+rke2r2" }), "rke2", "rke2-cis-1.7"],
  ["RKE 1.24", node({ kubeletVersion: "v1.24.17", annotations: { "rke.cattle.io/external-ip": "10.0.0.5" } }), "rke", "rke-cis-1.24"],
  ["TKGI", node({ kubeletVersion: "v1.27.5+vmware.1" }), "tkgi", "tkgi-1.2.53"],
  ["MicroK8s 1.24", node({ kubeletVersion: "v1.24.17-3+bcd1c1b1b7f4d0", labels: { "microk8s.io/cluster": "true" } }), "microk8s", "cis-1.24-microk8s"]
]

describe("benchmark resolution from node objects", () => {
  for (const [what, object, platform, benchmark] of cases) {
    it(`${what} -> ${platform}, ${benchmark}`, () => {
      const choice = resolve(object)
      expect(choice.detected.platform).toBe(platform)
      expect(choice._tag === "Resolved" ? choice.benchmark : choice.message).toBe(benchmark)
    })
  }

  it("records what it saw: version, platform version and the evidence", () => {
    const choice = resolve(node({ kubeletVersion: "v1.27.6+f67aeb3", labels: { "node.openshift.io/os_id": "rhcos" } }))
    expect(choice.detected).toEqual({
      platform: "openshift",
      kubeletVersion: "v1.27.6+f67aeb3",
      kubernetesVersion: "1.27",
      version: "4.14",
      evidence: "label node.openshift.io/os_id=rhcos"
    })
    expect(choice._tag === "Resolved" && choice.how).toBe("OpenShift 4.14 (label node.openshift.io/os_id=rhcos) -> rh-1.8 (the newest OpenShift benchmark, for 4.13 and later)")
  })

  it("a platform version kube-bench has no benchmark for is unsupported, naming what was detected and what exists", () => {
    const choice = resolve(node({ kubeletVersion: "v1.14.10-eks-5ac0f1" }))
    expect(choice._tag).toBe("Unsupported")
    const message = choice._tag === "Unsupported" ? choice.message : ""
    expect(message).toMatch(/^EKS 1\.14 \(kubeletVersion v1\.14\.10-eks-5ac0f1\): kube-bench has no benchmark for it; EKS benchmarks: eks-1\.0\.1 \(1\.15\+\), eks-1\.5\.0 \(1\.20\+\), eks-1\.7\.0 \(1\.29\+\), eks-1\.8\.0 \(1\.32\+\)\. Pin one with spec\.benchmark; kube-bench's benchmarks: ack-1\.0, aks-1\.0, /u)
    expect(message).toContain("eks-stig-kubernetes-v1r6")
    expect(resolve(node({ kubeletVersion: "v1.21.14+k3s1" }))._tag).toBe("Unsupported")
    expect(resolve(node({ kubeletVersion: "v1.9.11" }))._tag).toBe("Unsupported")
  })

  it("a node without a readable kubelet version is unsupported (kwok's `kwok-v0.8.0`, a missing nodeInfo)", () => {
    for (const object of [node({ kubeletVersion: "kwok-v0.8.0" }), node({})]) {
      const choice = resolve(object)
      expect(choice._tag).toBe("Unsupported")
      expect(choice._tag === "Unsupported" && choice.message).toMatch(/^Kubernetes \(.*\): its version is unknown \(kubeletVersion ".*" is not vMAJOR\.MINOR\.PATCH\)/u)
    }
  })

  it("platform marks win over a provider ID: kubeadm on EC2 with no EKS marks is EKS only by provider", () => {
    expect(detectPlatform(node({ kubeletVersion: "v1.30.1+k3s1", providerID: "aws:///i-1" })).platform).toBe("k3s")
    expect(detectPlatform(node({ kubeletVersion: "v1.30.1", providerID: "gce://p/z/n", labels: { "microk8s.io/cluster": "true" } })).platform).toBe("microk8s")
  })

  it("every benchmark the platform rows name exists in kube-bench's target_mapping", () => {
    const known = new Set(knownBenchmarks(mapping))
    expect(benchmarksOfPlatformRows().filter((benchmark) => !known.has(benchmark))).toEqual([])
  })

  it("reads the minor version from every kubelet version format", () => {
    expect(["v1.31.4-eks-aeac579", "v1.30.5-gke.1014001", "v1.31.4+k3s1", "v1.27.6+f67aeb3", "1.29.0", "v1.24.17-3+bcd1c1b1b7f4d0"].map(minorOf))
      .toEqual(["1.31", "1.30", "1.31", "1.27", "1.29", "1.24"])
    expect(minorOf("kwok-v0.8.0")).toBeUndefined()
  })
})
