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
