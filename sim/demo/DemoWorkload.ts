import type { KubeObject } from "../../src/services/kube/KubeObject.ts"

/**
 * The sample cluster of `compliance-scan demo`: a control-plane node and two workers,
 * a few teams' namespaces, and Pods that pass or break the Pod Security rules.
 */
const node = (name: string, labels: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", ...labels } },
  status: { conditions: [{ type: "Ready", status: "True" }] }
})

const namespace = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels: { "kubernetes.io/metadata.name": name, ...labels } }
})

const pod = (namespace: string, name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels: { app: name } },
  spec: { nodeName: "worker-1", ...spec },
  status: { phase: "Running" }
})

const hardened = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" }
}

export const demoNodes: ReadonlyArray<KubeObject> = [
  node("control-plane-1", { "kubernetes.io/role": "master", "node-role.kubernetes.io/control-plane": "" }),
  node("worker-1", { "kubernetes.io/role": "node" }),
  node("worker-2", { "kubernetes.io/role": "node" })
]

export const demoWorkload: ReadonlyArray<KubeObject> = [
  namespace("ugallu-system"),
  namespace("ugallu-system-privileged", { "pod-security.kubernetes.io/enforce": "privileged" }),
  namespace("payments", { team: "payments" }),
  namespace("storefront", { team: "web" }),
  pod("payments", "ledger", {
    securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
    containers: [{ name: "ledger", image: "registry.example/ledger:1.4.2", securityContext: hardened }]
  }),
  pod("payments", "card-debugger", {
    hostPID: true,
    containers: [{
      name: "debug",
      image: "busybox",
      securityContext: { privileged: true, capabilities: { add: ["SYS_ADMIN"] } }
    }]
  }),
  pod("storefront", "web", {
    containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 80, hostPort: 8080 }] }],
    volumes: [{ name: "logs", hostPath: { path: "/var/log" } }]
  }),
  pod("storefront", "cache", {
    securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
    containers: [{ name: "redis", image: "redis:7.4", securityContext: hardened }]
  })
]

const run = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: "ugallu-system" },
  spec
})

export const demoRuns: ReadonlyArray<KubeObject> = [
  // The reference example of the API contract, unchanged.
  run("cis-control-plane", {
    backend: "kube-bench",
    benchmark: "cis-1.9",
    alertOn: "high",
    targetNodeSelector: { "kubernetes.io/role": "master" },
    timeout: "5m"
  }),
  // Every node, with one scan filling the SOC2 and ISO 27001 reports.
  run("cis-all-nodes", {
    backend: "kube-bench",
    benchmark: "cis-1.10",
    alertOn: "critical",
    controlMappings: [
      { checkID: "cis.1.2.1", frameworks: [{ name: "soc2", controlID: "CC6.1" }, { name: "iso27001", controlID: "A.8.5" }] },
      { checkID: "cis.4.2.1", frameworks: [{ name: "soc2", controlID: "CC6.1" }, { name: "iso27001", controlID: "A.8.5" }] },
      { checkID: "cis.1.1.1", frameworks: [{ name: "iso27001", controlID: "A.8.9" }] }
    ]
  }),
  // A manifest written for the earlier Go implementation: `profile` and `cel-custom`.
  run("pod-security-baseline", { backend: "cel-custom", profile: "pod-security-baseline", alertOn: "high" }),
  run("payments-team-rules", {
    backend: "cel",
    alertOn: "medium",
    cel: {
      rules: [{
        id: "payments-images-pinned",
        title: "Payments images come from the internal registry",
        severity: "medium",
        match: { resources: ["pods"], namespaceSelector: { matchLabels: { team: "payments" } } },
        expression: "object.spec.containers.all(c, c.image.startsWith('registry.example/'))",
        messageExpression: "'pod ' + object.metadata.name + ' runs an image from outside registry.example'"
      }]
    }
  }),
  run("runtime-detections", {
    backend: "falco",
    alertOn: "high",
    falco: { window: "2s", minPriority: "notice" },
    controlMappings: [{ checkID: "falco.terminal-shell-in-container", frameworks: [{ name: "soc2", controlID: "CC7.2" }] }]
  })
]
