import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"

/** Pods for the CEL tests: a fully compliant (restricted) pod and ways to break it. */

type Json = Record<string, any>

export const namespace = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels: { "kubernetes.io/metadata.name": name, ...labels } }
})

const hardenedContainer = (name: string): Json => ({
  name,
  image: "registry.example.com/app:1.0",
  ports: [{ containerPort: 8080, protocol: "TCP" }],
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true }
})

/** Compliant with every rule of pod-security-restricted (and so of baseline). */
export const restrictedPod = (name = "compliant", namespaceName = "default"): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: namespaceName, labels: { app: name } },
  spec: {
    securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
    initContainers: [hardenedContainer("init")],
    containers: [hardenedContainer("app"), { ...hardenedContainer("sidecar"), securityContext: { ...hardenedContainer("sidecar").securityContext, capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] } } }],
    volumes: [
      { name: "config", configMap: { name: "app-config" } },
      { name: "cache", emptyDir: {} },
      { name: "token", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } }
    ]
  }
})

/** The compliant pod changed by `mutate` (which edits a deep copy). */
export const violating = (name: string, mutate: (pod: Json) => void): KubeObject => {
  const pod = structuredClone(restrictedPod(name)) as Json
  mutate(pod)
  return pod as KubeObject
}

export const firstContainer = (pod: Json): Json => pod.spec.containers[0]

/** A compliant pod and pods breaking several Pod Security controls each. */
export const samplePods: ReadonlyArray<KubeObject> = [
  restrictedPod("compliant"),
  // The API server refuses privileged with allowPrivilegeEscalation false.
  violating("privileged", (pod) => Object.assign(firstContainer(pod).securityContext, { privileged: true, allowPrivilegeEscalation: true })),
  violating("host-path", (pod) => pod.spec.volumes.push({ name: "h", hostPath: { path: "/" } })),
  violating("root", (pod) => {
    delete pod.spec.securityContext
    pod.spec.initContainers[0].securityContext.runAsUser = 0
  }),
  violating("apparmor", (pod) => (pod.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" })),
  violating("host-network", (pod) => {
    pod.spec.hostNetwork = true
    firstContainer(pod).securityContext.capabilities = { add: ["SYS_ADMIN"] }
  }),
  violating("windows", (pod) => (pod.spec.os = { name: "windows" }))
]

/** A workload whose pod template is the pod. */
export const workloadOf = (kind: "Deployment" | "StatefulSet" | "DaemonSet", pod: KubeObject): KubeObject => ({
  apiVersion: "apps/v1",
  kind,
  metadata: { name: pod.metadata.name, namespace: "default" },
  spec: { selector: { matchLabels: { app: pod.metadata.name } }, template: { metadata: { labels: pod.metadata.labels, ...(pod.metadata.annotations === undefined ? {} : { annotations: pod.metadata.annotations }) }, spec: pod.spec } }
})
