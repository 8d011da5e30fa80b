import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"

/**
 * For each rule of the rbac and network packs: objects that pass and objects that fail it
 * (KindPacks.test.ts; the cluster tier also sends them to the real API server's admission).
 */

const rbac = "rbac.authorization.k8s.io/v1"
const object = (apiVersion: string, kind: string, name: string, body: Record<string, unknown>, namespace?: string): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name, ...(namespace === undefined ? {} : { namespace }) },
  ...body
})
const binding = (kind: "ClusterRoleBinding" | "RoleBinding", name: string, role: string, subjects: ReadonlyArray<string>) =>
  object(rbac, kind, name, { roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role }, subjects: subjects.map((subject) => ({ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: subject })) }, kind === "RoleBinding" ? "team" : undefined)
const role = (kind: "ClusterRole" | "Role", name: string, rules: ReadonlyArray<Record<string, unknown>>) => object(rbac, kind, name, { rules }, kind === "Role" ? "team" : undefined)
const service = (name: string, type: string, annotations?: Record<string, string>) =>
  ({ ...object("v1", "Service", name, { spec: { type, ports: [{ port: 80 }] } }, "team"), metadata: { name, namespace: "team", ...(annotations === undefined ? {} : { annotations }) } })
// What the API server requires of an Ingress without rules.
const defaultBackend = { service: { name: "web", port: { number: 80 } } }
const policy = (name: string, spec: Record<string, unknown>) => object("networking.k8s.io/v1", "NetworkPolicy", name, { spec: { podSelector: {}, ...spec } }, "team")

export const kindPackTable: Record<string, { readonly pass: ReadonlyArray<KubeObject>; readonly fail: ReadonlyArray<KubeObject> }> = {
  "rbac-cluster-admin-bindings": {
    pass: [binding("ClusterRoleBinding", "system:masters", "cluster-admin", ["system:masters"]), binding("ClusterRoleBinding", "viewers", "view", ["devs"]), binding("ClusterRoleBinding", "kubeadm", "cluster-admin", ["system:kubeadm"])],
    fail: [binding("ClusterRoleBinding", "ops", "cluster-admin", ["ops"]), binding("RoleBinding", "team-admin", "cluster-admin", ["system:nodes", "team"])]
  },
  "rbac-wildcards": {
    pass: [role("ClusterRole", "cluster-admin", [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }]), role("Role", "reader", [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }])],
    fail: [role("ClusterRole", "ops", [{ apiGroups: [""], resources: ["pods"], verbs: ["*"] }]), role("Role", "any", [{ apiGroups: ["apps"], resources: ["*"], verbs: ["get"] }])]
  },
  "rbac-escalation-verbs": {
    pass: [role("ClusterRole", "system:controller:clusterrole-aggregation-controller", [{ apiGroups: ["*"], resources: ["*"], verbs: ["escalate"] }]), role("Role", "reader", [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }])],
    fail: [role("ClusterRole", "binder", [{ apiGroups: [rbac.split("/")[0]], resources: ["clusterroles"], verbs: ["bind"] }]), role("Role", "sudo", [{ apiGroups: [""], resources: ["users"], verbs: ["impersonate"] }])]
  },
  "rbac-secrets-cluster-wide": {
    pass: [role("ClusterRole", "view", [{ apiGroups: [""], resources: ["pods", "configmaps"], verbs: ["get", "list"] }]), role("ClusterRole", "secret-writer", [{ apiGroups: [""], resources: ["secrets"], verbs: ["create"] }])],
    fail: [role("ClusterRole", "secret-reader", [{ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }]), role("ClusterRole", "everything-reader", [{ apiGroups: [""], resources: ["*"], verbs: ["get"] }])]
  },
  "network-external-services": {
    pass: [service("internal", "ClusterIP"), service("reviewed", "LoadBalancer", { "security.ugallu.io/allow-external": "true" })],
    fail: [service("public", "LoadBalancer"), service("node-port", "NodePort", { "security.ugallu.io/allow-external": "false" })]
  },
  "network-ingress-tls": {
    pass: [object("networking.k8s.io/v1", "Ingress", "secure", { spec: { tls: [{ hosts: ["a.example.com"], secretName: "a" }], defaultBackend } }, "team")],
    fail: [object("networking.k8s.io/v1", "Ingress", "plain", { spec: { rules: [{ host: "a.example.com" }], defaultBackend } }, "team"), object("networking.k8s.io/v1", "Ingress", "empty-tls", { spec: { tls: [], defaultBackend } }, "team")]
  },
  "network-policies-not-allow-all": {
    pass: [policy("deny-all", { policyTypes: ["Ingress", "Egress"] }), policy("from-web", { ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }], egress: [{ ports: [{ port: 53, protocol: "UDP" }] }] })],
    fail: [policy("allow-all-in", { ingress: [{}] }), policy("allow-all-out", { egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }, {}] })]
  }
}

