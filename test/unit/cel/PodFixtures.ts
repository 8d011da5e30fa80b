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

/** A pod drawn from `next` (a seeded random source): every field the packs read, often absent, sometimes null. */
export const seededPod = (next: () => number, index: number): KubeObject => {
  const pick = <T>(...choices: ReadonlyArray<T>): T => choices[Math.floor(next() * choices.length)]!
  const maybe = <T>(value: () => T, probability = 0.3): T | undefined => (next() < probability ? value() : undefined)
  const defined = (entries: Record<string, unknown>) => Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined))
  const securityContext = () =>
    defined({
      privileged: maybe(() => pick(true, false)),
      allowPrivilegeEscalation: maybe(() => pick(true, false), 0.6),
      runAsNonRoot: maybe(() => pick(true, false)),
      runAsUser: maybe(() => pick(0, 1000, 65534)),
      capabilities: maybe(() => defined({ add: maybe(() => [pick("NET_BIND_SERVICE", "SYS_ADMIN", "CHOWN", "NET_RAW")], 0.5), drop: maybe(() => [pick("ALL", "NET_RAW")], 0.7) }), 0.5),
      seccompProfile: maybe(() => ({ type: pick("Unconfined", "RuntimeDefault", "Localhost") })),
      procMount: maybe(() => pick("Default", "Unmasked"), 0.1),
      seLinuxOptions: maybe(() => defined({ type: maybe(() => pick("container_t", "spc_t"), 0.7), user: maybe(() => pick("", "system_u")) }), 0.1),
      appArmorProfile: maybe(() => ({ type: pick("RuntimeDefault", "Unconfined", "Localhost") }), 0.1),
      windowsOptions: maybe(() => ({ hostProcess: pick(true, false) }), 0.05)
    })
  const container = (name: string) =>
    defined({
      name,
      image: pick("registry.example.com/app:1.0", "nginx:latest", "nginx", "registry.example.com/tool:2"),
      ports: maybe(() => [defined({ containerPort: pick(80, 8080, 1023), hostPort: maybe(() => pick(0, 8080), 0.3) })], 0.5),
      resources: maybe(() => ({ limits: defined({ memory: maybe(() => "128Mi", 0.7), cpu: "500m" }) }), 0.5),
      // Sometimes null: has() is true and selecting into it is an error, in both engines.
      securityContext: next() < 0.05 ? null : maybe(securityContext, 0.8)
    })
  const name = pick(`pod-${index}`, `Pod_${index}`, `app-${index}-`)
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      ...defined({
        namespace: pick("shop", "ops"),
        labels: maybe(() => defined({ app: "web", team: maybe(() => pick("", "payments"), 0.7) }), 0.7),
        annotations: maybe(() => ({ "container.apparmor.security.beta.kubernetes.io/app": pick("runtime/default", "unconfined", "localhost/p") }), 0.2)
      })
    },
    spec: defined({
      hostNetwork: maybe(() => pick(true, false), 0.1),
      hostPID: maybe(() => pick(true, false), 0.1),
      hostIPC: maybe(() => pick(true, false), 0.1),
      os: maybe(() => ({ name: pick("linux", "windows") }), 0.1),
      securityContext: maybe(() => defined({ ...securityContext(), sysctls: maybe(() => [{ name: pick("net.ipv4.tcp_syncookies", "kernel.msgmax"), value: "1" }], 0.2) }), 0.7),
      containers: Array.from({ length: 1 + Math.floor(next() * 3) }, (_, position) => container(position === 0 ? "app" : `sidecar-${position}`)),
      initContainers: maybe(() => [container("init")]),
      ephemeralContainers: maybe(() => [container("debug")], 0.1),
      volumes: maybe(() => [pick({ name: "h", hostPath: { path: "/" } }, { name: "n", nfs: { server: "s", path: "/" } }, { name: "c", configMap: { name: "c" } }, { name: "e", emptyDir: {} })], 0.5)
    })
  }
}
