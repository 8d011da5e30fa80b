import type { KubeObject } from "../../services/kube/KubeObject.ts"
import { type KubeBenchMapping, knownBenchmarks } from "./KubeBenchMapping.ts"

/**
 * Which benchmark a node gets, decided by the operator from what the API already says
 * about the node (kube-bench's own guess needs API credentials and falls back to cis-1.6
 * without them). Platform first, from the kubelet version's suffix, node labels and
 * annotations and the provider ID; then the benchmark that kube-bench v0.15.6 maps that
 * platform and version to.
 */
export const platforms = [
  "kubernetes",
  "eks",
  "gke",
  "aks",
  "ack",
  "openshift",
  "k3s",
  "rke",
  "rke2",
  "tkgi",
  "microk8s"
] as const
export type Platform = typeof platforms[number]

/** What was detected about one node, and from what (shown to the user). */
export interface DetectedPlatform {
  readonly platform: Platform
  /** `node.status.nodeInfo.kubeletVersion` as the node reports it. */
  readonly kubeletVersion: string | undefined
  /** The node's Kubernetes minor version (`1.31`), when its kubelet version says it. */
  readonly kubernetesVersion: string | undefined
  /** The platform's own version the benchmark depends on: OpenShift's (`4.14`), otherwise the Kubernetes one. */
  readonly version: string | undefined
  /** Why this platform: `kubeletVersion v1.31.4-eks-aeac579`, `label cloud.google.com/gke-nodepool`, ... */
  readonly evidence: string
}

export type BenchmarkChoice =
  | { readonly _tag: "Resolved"; readonly detected: DetectedPlatform; readonly benchmark: string; readonly how: string }
  | { readonly _tag: "Unsupported"; readonly detected: DetectedPlatform; readonly message: string }

/** Suffixes of `nodeInfo.kubeletVersion` that name a distribution (as the providers print them). */
const kubeletSuffixes: ReadonlyArray<readonly [RegExp, Platform]> = [
  [/-eks-/u, "eks"],
  [/-gke\./u, "gke"],
  [/\+k3s/u, "k3s"],
  [/\+rke2/u, "rke2"],
  [/-aliyun/u, "ack"],
  [/\+vmware/u, "tkgi"]
]

/** Label (or annotation) keys that only one platform sets on its nodes. */
const platformKeys: ReadonlyArray<readonly [string, Platform, "label" | "annotation"]> = [
  ["node.openshift.io/os_id", "openshift", "label"],
  ["eks.amazonaws.com/nodegroup", "eks", "label"],
  ["eks.amazonaws.com/compute-type", "eks", "label"],
  ["cloud.google.com/gke-nodepool", "gke", "label"],
  ["kubernetes.azure.com/cluster", "aks", "label"],
  ["alibabacloud.com/nodepool-id", "ack", "label"],
  ["microk8s.io/cluster", "microk8s", "label"],
  // kube-bench's own RKE test (IsRKE).
  ["rke.cattle.io/external-ip", "rke", "annotation"],
  ["rke.cattle.io/internal-ip", "rke", "annotation"]
]

/** `spec.providerID` prefixes of the managed services (the weakest hint: checked last). */
const providerPrefixes: ReadonlyArray<readonly [string, Platform]> = [
  ["aws://", "eks"],
  ["gce://", "gke"],
  ["azure://", "aks"],
  ["alicloud://", "ack"]
]

/**
 * Per platform, the first Kubernetes minor each benchmark covers, mirroring kube-bench
 * v0.15.6's own choice (cmd/util.go: eksBenchmark, gkeBenchmark, ...). A version newer than
 * the last row gets the last row's (newest) benchmark, as kube-bench's version_mapping
 * lookup does; an older one gets none. `kubernetes` and `openshift` come from
 * version_mapping itself.
 */
const platformRows: Readonly<Record<Exclude<Platform, "kubernetes" | "openshift">, ReadonlyArray<readonly [string, string]>>> = {
  eks: [["1.15", "eks-1.0.1"], ["1.20", "eks-1.5.0"], ["1.29", "eks-1.7.0"], ["1.32", "eks-1.8.0"]],
  gke: [["1.15", "gke-1.0"], ["1.20", "gke-1.2.0"], ["1.28", "gke-1.6.0"], ["1.30", "gke-1.8.0"], ["1.31", "gke-1.9.0"]],
  aks: [["1.19", "aks-1.0"], ["1.25", "aks-1.8"], ["1.29", "aks-1.7"], ["1.32", "aks-1.8"]],
  ack: [["1.0", "ack-1.0"]],
  k3s: [["1.22", "k3s-cis-1.23"], ["1.24", "k3s-cis-1.24"], ["1.25", "k3s-cis-1.7"], ["1.26", "k3s-cis-1.8"], ["1.27", "k3s-cis-1.9"]],
  rke: [["1.23", "rke-cis-1.23"], ["1.24", "rke-cis-1.24"], ["1.25", "rke-cis-1.7"]],
  rke2: [["1.23", "rke2-cis-1.23"], ["1.24", "rke2-cis-1.24"], ["1.25", "rke2-cis-1.7"], ["1.26", "rke2-cis-1.8"]],
  tkgi: [["1.0", "tkgi-1.2.53"]],
  microk8s: [["1.24", "cis-1.24-microk8s"]]
}

/** Every benchmark the platform rows name (a test checks each exists in kube-bench's cfg/). */
export const benchmarksOfPlatformRows = (): Array<string> => [
  ...new Set(Object.values(platformRows).flatMap((rows) => rows.map(([, benchmark]) => benchmark)))
]

const platformNames: Readonly<Record<Platform, string>> = {
  kubernetes: "Kubernetes",
  eks: "EKS",
  gke: "GKE",
  aks: "AKS",
  ack: "ACK",
  openshift: "OpenShift",
  k3s: "k3s",
  rke: "RKE",
  rke2: "RKE2",
  tkgi: "TKGI",
  microk8s: "MicroK8s"
}

/** `v1.31.4-eks-aeac579` -> `1.31`. */
export const minorOf = (kubeletVersion: string | undefined): string | undefined =>
  kubeletVersion === undefined ? undefined : /^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+.].*)?$/u.exec(kubeletVersion.trim())?.slice(1, 3).join(".")

const compareVersions = (left: string, right: string): number => {
  const a = left.split(".").map(Number)
  const b = right.split(".").map(Number)
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0)
    if (difference !== 0) return difference
  }
  return 0
}

/** OpenShift's minor from the Kubernetes one its kubelet runs (4.x = 1.(x+13) since 4.3; 3.x = 1.x). */
const openShiftVersionOf = (kubernetes: string): string | undefined => {
  const minor = Number(kubernetes.split(".")[1])
  if (kubernetes.split(".")[0] !== "1" || Number.isNaN(minor)) return undefined
  if (minor >= 16) return `4.${minor - 13}`
  if (minor >= 13) return `4.${minor - 12}`
  if (minor <= 11) return `3.${minor}`
  return undefined
}

interface NodeFacts {
  readonly kubeletVersion?: string
  readonly providerID?: string
}

/** The platform of one node, from its object as the API server returns it. */
export const detectPlatform = (node: KubeObject): DetectedPlatform => {
  const facts = {
    kubeletVersion: (node["status"] as { nodeInfo?: NodeFacts } | undefined)?.nodeInfo?.kubeletVersion,
    providerID: (node["spec"] as NodeFacts | undefined)?.providerID
  }
  const labels = node.metadata.labels ?? {}
  const annotations = node.metadata.annotations ?? {}
  const kubernetesVersion = minorOf(facts.kubeletVersion)
  const detected = (platform: Platform, evidence: string): DetectedPlatform => ({
    platform,
    kubeletVersion: facts.kubeletVersion,
    kubernetesVersion,
    version: platform === "openshift" ? (kubernetesVersion && openShiftVersionOf(kubernetesVersion)) : kubernetesVersion,
    evidence
  })
  const openShift = platformKeys.find(([key, platform]) => platform === "openshift" && labels[key] !== undefined)
  if (openShift !== undefined) return detected("openshift", `label ${openShift[0]}=${labels[openShift[0]]}`)
  const suffix = facts.kubeletVersion === undefined ? undefined : kubeletSuffixes.find(([pattern]) => pattern.test(facts.kubeletVersion!))
  if (suffix !== undefined) return detected(suffix[1], `kubeletVersion ${facts.kubeletVersion}`)
  for (const [key, platform, where] of platformKeys) {
    const value = (where === "label" ? labels : annotations)[key]
    if (value !== undefined) return detected(platform, `${where} ${key}${value === "" ? "" : `=${value}`}`)
  }
  const provider = providerPrefixes.find(([prefix]) => facts.providerID?.startsWith(prefix))
  if (provider !== undefined) return detected(provider[1], `providerID ${facts.providerID}`)
  return detected("kubernetes", facts.kubeletVersion === undefined ? "no platform marks, no kubeletVersion" : `kubeletVersion ${facts.kubeletVersion}, no platform marks`)
}

/** [first version, benchmark] rows of a platform, oldest first. */
const rowsOf = (platform: Platform, mapping: KubeBenchMapping): Array<readonly [string, string]> => {
  const entries = Object.entries(mapping.versionMapping)
  const rows: Array<readonly [string, string]> = platform === "kubernetes"
    ? entries.filter(([key]) => /^\d+\.\d+$/u.test(key))
    : platform === "openshift"
    ? entries.filter(([key]) => /^ocp-\d+\.\d+$/u.test(key)).map(([key, benchmark]) => [key.slice("ocp-".length), benchmark] as const)
    : [...platformRows[platform]]
  return rows.sort(([left], [right]) => compareVersions(left, right))
}

const describeDetected = (detected: DetectedPlatform): string =>
  `${platformNames[detected.platform]}${detected.version === undefined ? "" : ` ${detected.version}`} (${detected.evidence})`

/** The benchmark for a detected platform, or why there is none. */
export const benchmarkFor = (detected: DetectedPlatform, mapping: KubeBenchMapping): BenchmarkChoice => {
  const rows = rowsOf(detected.platform, mapping)
  const version = detected.version
  const row = version === undefined ? undefined : rows.filter(([from]) => compareVersions(from, version) <= 0).pop()
  if (row !== undefined && mapping.targetMapping[row[1]] !== undefined) {
    const newest = row === rows[rows.length - 1] && compareVersions(row[0], version!) < 0 && rows.length > 1
    return {
      _tag: "Resolved",
      detected,
      benchmark: row[1],
      how: `${describeDetected(detected)} -> ${row[1]}${newest ? ` (the newest ${platformNames[detected.platform]} benchmark, for ${row[0]} and later)` : ""}`
    }
  }
  const family = rows.map(([from, benchmark]) => `${benchmark} (${from}+)`).join(", ")
  const why = version === undefined
    ? `its version is unknown (kubeletVersion ${JSON.stringify(detected.kubeletVersion ?? "")} is not vMAJOR.MINOR.PATCH)`
    : `kube-bench has no benchmark for it`
  return {
    _tag: "Unsupported",
    detected,
    message: `${describeDetected(detected)}: ${why}; ${platformNames[detected.platform]} benchmarks: ${family || "none"}. ` +
      `Pin one with spec.benchmark; kube-bench's benchmarks: ${knownBenchmarks(mapping).join(", ")}`
  }
}
