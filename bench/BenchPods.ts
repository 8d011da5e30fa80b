import type { KubeObject } from "../src/services/kube/KubeObject.ts"

/** The Pods of the CEL benchmarks (bench/cel.ts on the simulated cluster, bench/scale-cel.ts on the real one). */

/** Deterministic variety: most pods hardened, some with the usual mistakes. */
export const benchPod = (index: number, namespace: string): KubeObject => {
  const flaw = index % 10
  const hardened = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true }
  const container = (name: string) => ({
    name,
    image: `registry.example.com/team-${index % 7}/${name}:1.${index % 13}`,
    // Ports on the main container only: the API server refuses host ports two containers share.
    ...(name === "app" ? { ports: [{ containerPort: 8080 + (index % 3), protocol: "TCP", ...(flaw === 3 ? { hostPort: 8080 } : {}) }] } : {}),
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
    securityContext: flaw === 1 ? { ...hardened, allowPrivilegeEscalation: true, privileged: true } : flaw === 2 ? { capabilities: { add: ["NET_ADMIN"] } } : hardened
  })
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `app-${index}`,
      namespace,
      uid: `00000000-0000-0000-0000-${String(index).padStart(12, "0")}`,
      labels: { app: `app-${index % 50}`, "app.kubernetes.io/part-of": `system-${index % 5}` },
      annotations: { "kubectl.kubernetes.io/default-container": "app" }
    },
    spec: {
      ...(flaw === 4 ? { hostNetwork: true } : {}),
      securityContext: flaw === 5 ? {} : { runAsNonRoot: true, runAsUser: 1000 + (index % 100), seccompProfile: { type: "RuntimeDefault" } },
      initContainers: index % 4 === 0 ? [container("init")] : [],
      containers: [container("app"), ...(index % 3 === 0 ? [container("sidecar")] : [])],
      volumes: [
        { name: "config", configMap: { name: `config-${index % 50}` } },
        ...(flaw === 6 ? [{ name: "host", hostPath: { path: "/var/log" } }] : [{ name: "tmp", emptyDir: {} }])
      ],
      nodeName: `node-${index % 40}`
    },
    status: { phase: "Running", podIP: `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}` }
  }
}

/** The fields of `value` the way a field manager lists them (`f:<name>`, containers by `k:{"name":...}`). */
const fieldSet = (value: unknown): Record<string, unknown> => {
  if (typeof value !== "object" || value === null) return {}
  if (Array.isArray(value)) {
    return Object.fromEntries(value.map((item, index) => [
      typeof item === "object" && item !== null && "name" in item ? `k:${JSON.stringify({ name: item.name })}` : `i:${index}`,
      { ".": {}, ...fieldSet(item) }
    ]))
  }
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [`f:${key}`, fieldSet(item)]))
}

/**
 * A benchPod as a real cluster lists it once the kubelet runs it: a status the way the kubelet
 * writes it (conditions, container statuses with image and container IDs, IPs) and the
 * managedFields of its two writers (the creator and the kubelet's status updates).
 */
export const runningPod = (index: number, namespace: string): KubeObject => {
  const pod = benchPod(index, namespace) as KubeObject & { spec: { containers: Array<{ name: string; image: string }>; initContainers: Array<{ name: string; image: string }> } }
  const at = "2026-12-06T09:12:44Z"
  const id = (name: string) => `containerd://${(index.toString(16) + name).padEnd(64, "0")}`
  const imageId = (image: string) => `${image.split(":")[0]}@sha256:${image.length.toString(16).padStart(64, "0")}`
  const mounts = [{ mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", name: "kube-api-access-x7k2p", readOnly: true, recursiveReadOnly: "Disabled" }]
  /** What the kubelet reports of every container, running or done. */
  const containerStatus = (container: { name: string; image: string }) => ({
    containerID: id(container.name),
    image: container.image,
    imageID: imageId(container.image),
    lastState: {},
    name: container.name,
    ready: true,
    restartCount: 0,
    volumeMounts: mounts
  })
  const status = {
    conditions: ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"].map((type) => ({ lastProbeTime: null, lastTransitionTime: at, status: "True", type })),
    containerStatuses: pod.spec.containers.map((container) => ({
      allocatedResources: { cpu: "100m", memory: "128Mi" },
      ...containerStatus(container),
      resources: { limits: { memory: "256Mi" }, requests: { cpu: "100m", memory: "128Mi" } },
      started: true,
      state: { running: { startedAt: at } },
      user: { linux: { gid: 1000, supplementalGroups: [1000], uid: 1000 } }
    })),
    hostIP: "10.0.3.17",
    hostIPs: [{ ip: "10.0.3.17" }],
    initContainerStatuses: pod.spec.initContainers.map((container) => ({
      ...containerStatus(container),
      started: false,
      state: { terminated: { containerID: id(container.name), exitCode: 0, finishedAt: at, reason: "Completed", startedAt: at } }
    })),
    phase: "Running",
    podIP: `10.244.${(index >> 8) & 255}.${index & 255}`,
    podIPs: [{ ip: `10.244.${(index >> 8) & 255}.${index & 255}` }],
    qosClass: "Burstable",
    startTime: at
  }
  const { uid: _uid, ...metadata } = pod.metadata
  const written = (manager: string, fields: Record<string, unknown>, subresource?: string) => ({
    manager,
    operation: "Update",
    apiVersion: "v1",
    time: at,
    fieldsType: "FieldsV1",
    fieldsV1: fields,
    ...(subresource === undefined ? {} : { subresource })
  })
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      managedFields: [written("kube-controller-manager", fieldSet({ metadata, spec: pod.spec })), written("kubelet", fieldSet({ status }), "status")]
    },
    status
  }
}
