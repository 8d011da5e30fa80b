import type { Json } from "./KubeHttp.ts"

/**
 * Objects of every built-in kind the CEL backend scans, written to reach the edges of the
 * protobuf-to-JSON mapping (ProtobufLists.test.ts): pointers to zero values next to plain
 * zero values (omitempty drops only the latter), empty strings, lists and map values,
 * int-or-strings both ways, quantities in non-canonical spellings, bytes, int64s past 2^53,
 * embedded structs, and strings with escapes, U+2028, U+FFFD and non-BMP characters.
 */

const hostile = "quote \" backslash \\ tab \t newline \n U+2028 \u2028 U+FFFD \uFFFD emoji \u{1F600} é 中文 NUL \u0000 end"

const podSpec = (extra: Json = {}): Json => ({
  containers: [{ name: "app", image: "registry.example.com/app:1" }],
  ...extra
})

const template = (labels: Json): Json => ({ metadata: { labels }, spec: podSpec({ restartPolicy: "Always" }) })

export const edgeObjects = (namespace: string): Array<Json> => {
  const suffix = namespace.replace(/[^a-z0-9]/gu, "")
  return [
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "edge-all",
        labels: { app: "edge", "example.com/empty": "" },
        annotations: { hostile, long: "x".repeat(20_000), empty: "" }
      },
      spec: {
        hostname: "edge",
        subdomain: "sub",
        hostNetwork: false,
        hostPID: true,
        shareProcessNamespace: false,
        serviceAccountName: "default",
        terminationGracePeriodSeconds: 30,
        activeDeadlineSeconds: 2147483647,
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        os: { name: "linux" },
        dnsConfig: { options: [{ name: "ndots", value: "2" }, { name: "edns0" }], searches: [] },
        hostAliases: [{ ip: "10.1.2.3", hostnames: ["a.example.com", "b.example.com"] }],
        securityContext: {
          runAsUser: 1000,
          runAsGroup: 0,
          fsGroup: 2000,
          supplementalGroups: [0, 5],
          sysctls: [{ name: "net.ipv4.ip_local_port_range", value: "1024 65535" }],
          seccompProfile: { type: "Localhost", localhostProfile: "profiles/p.json" }
        },
        // An int64 past 2^53 (JSON.stringify sends 9007199254740992).
        tolerations: [{ key: "k", operator: "Exists", effect: "NoExecute", tolerationSeconds: 9007199254740993 }, { operator: "Exists" }],
        affinity: {
          nodeAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchExpressions: [{ key: "zone", operator: "In", values: ["a", ""] }] } }]
          }
        },
        initContainers: [{ name: "sidecar", image: "registry.example.com/sidecar:1", restartPolicy: "Always", args: [] }],
        containers: [{
          name: "app",
          image: "registry.example.com/app:1",
          command: [],
          args: ["", hostile, "--flag=1"],
          workingDir: "",
          ports: [{ containerPort: 8080, name: "http", protocol: "TCP" }, { containerPort: 53, protocol: "UDP", hostPort: 53 }],
          env: [
            { name: "EMPTY", value: "" },
            { name: "HOSTILE", value: hostile },
            { name: "NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            { name: "CPU", valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "1m" } } },
            { name: "KEY", valueFrom: { secretKeyRef: { name: "s", key: "k", optional: false } } }
          ],
          envFrom: [{ configMapRef: { name: "cm", optional: true }, prefix: "CM_" }],
          resources: {
            limits: { cpu: "1500m", memory: "1Gi", "example.com/gpu": "2" },
            requests: { cpu: "0.5", memory: "1e3", "example.com/gpu": "2" }
          },
          livenessProbe: { httpGet: { port: "http", path: "/", httpHeaders: [{ name: "X", value: "" }] }, periodSeconds: 10, timeoutSeconds: 1 },
          readinessProbe: { tcpSocket: { port: 8080 }, initialDelaySeconds: 0 },
          startupProbe: { exec: { command: ["true"] }, failureThreshold: 30 },
          lifecycle: { preStop: { sleep: { seconds: 1 } } },
          securityContext: {
            privileged: false,
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" }
          },
          volumeMounts: [{ name: "cm", mountPath: "/etc/cm", readOnly: true }, { name: "empty", mountPath: "/tmp", subPath: "" }]
        }],
        volumes: [
          { name: "cm", configMap: { name: "cm", optional: true, defaultMode: 420, items: [{ key: "k", path: "p", mode: 0 }] } },
          { name: "empty", emptyDir: { sizeLimit: "1Gi", medium: "" } },
          { name: "host", hostPath: { path: "/var/run", type: "" } },
          {
            name: "projected",
            projected: {
              sources: [
                { serviceAccountToken: { path: "token", expirationSeconds: 3600 } },
                { downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } }
              ]
            }
          }
        ]
      }
    },
    { apiVersion: "v1", kind: "Pod", metadata: { name: "edge-pending" }, spec: podSpec({ nodeName: "no-such-node" }) },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "edge-secret" },
      type: "Opaque",
      data: { empty: "", bytes: Buffer.from(Array.from({ length: 256 }, (_, index) => index)).toString("base64") },
      stringData: { text: hostile }
    },
    { apiVersion: "v1", kind: "Secret", metadata: { name: "edge-secret-empty" }, immutable: false },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "edge-config" },
      data: { empty: "", hostile },
      binaryData: { blob: Buffer.from([0, 255, 128, 10]).toString("base64"), none: "" },
      immutable: true
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "edge-service" },
      spec: {
        selector: { app: "edge" },
        ports: [{ name: "a", port: 80, targetPort: "http" }, { name: "b", port: 443, targetPort: 8443, protocol: "TCP" }],
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 100 } },
        publishNotReadyAddresses: false
      }
    },
    { apiVersion: "v1", kind: "Service", metadata: { name: "edge-external" }, spec: { type: "ExternalName", externalName: "example.com" } },
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "edge-sa" },
      secrets: [{ name: "s" }],
      imagePullSecrets: [{ name: "pull" }],
      automountServiceAccountToken: false
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "edge-claim" },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1.5Gi" } }, storageClassName: "" }
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: `edge-volume-${suffix}` },
      spec: {
        capacity: { storage: "5Gi" },
        accessModes: ["ReadWriteOnce", "ReadOnlyMany"],
        persistentVolumeReclaimPolicy: "Retain",
        hostPath: { path: "/tmp/edge" },
        volumeMode: "Filesystem"
      }
    },
    {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: `edge-node-${suffix}`, labels: { "node-role.kubernetes.io/edge": "" } },
      spec: { unschedulable: true, taints: [{ key: "edge", value: "", effect: "NoSchedule" }], podCIDR: "10.9.0.0/24", podCIDRs: ["10.9.0.0/24"] }
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "edge-deployment" },
      spec: {
        replicas: 0,
        revisionHistoryLimit: 0,
        selector: { matchLabels: { app: "edge-deployment" } },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
        template: template({ app: "edge-deployment" })
      }
    },
    {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "edge-statefulset" },
      spec: {
        replicas: 0,
        serviceName: "edge-service",
        selector: { matchLabels: { app: "edge-statefulset" } },
        template: template({ app: "edge-statefulset" }),
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0, maxUnavailable: "50%" } },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: "Delete", whenScaled: "Retain" },
        volumeClaimTemplates: [{ metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } }]
      }
    },
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "edge-daemonset" },
      spec: {
        selector: { matchLabels: { app: "edge-daemonset" } },
        template: { ...template({ app: "edge-daemonset" }), spec: podSpec({ nodeSelector: { "no-such-label": "x" } }) },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } }
      }
    },
    {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: { name: "edge-replicaset" },
      spec: { replicas: 0, selector: { matchLabels: { app: "edge-replicaset" } }, template: template({ app: "edge-replicaset" }) }
    },
    {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "edge-job" },
      spec: {
        suspend: true,
        activeDeadlineSeconds: 4611686018427387904,
        backoffLimit: 0,
        completions: 1,
        parallelism: 1,
        ttlSecondsAfterFinished: 0,
        podFailurePolicy: { rules: [{ action: "FailJob", onExitCodes: { operator: "In", values: [42] } }] },
        template: { spec: podSpec({ restartPolicy: "Never" }) }
      }
    },
    {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "edge-cronjob" },
      spec: {
        schedule: "*/5 * * * *",
        timeZone: "Etc/UTC",
        suspend: true,
        concurrencyPolicy: "Forbid",
        startingDeadlineSeconds: 10,
        successfulJobsHistoryLimit: 0,
        jobTemplate: { spec: { template: { spec: podSpec({ restartPolicy: "OnFailure" }) } } }
      }
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "edge-ingress" },
      spec: {
        defaultBackend: { service: { name: "edge-service", port: { name: "a" } } },
        tls: [{ hosts: ["a.example.com"], secretName: "tls" }],
        rules: [
          { host: "a.example.com", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "edge-service", port: { number: 80 } } } }] } },
          { http: { paths: [{ path: "/x", pathType: "Exact", backend: { resource: { apiGroup: "example.com", kind: "Bucket", name: "b" } } }] } }
        ]
      }
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "edge-policy" },
      spec: {
        podSelector: {},
        policyTypes: ["Ingress", "Egress"],
        ingress: [{
          from: [
            { ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } },
            { namespaceSelector: { matchExpressions: [{ key: "a", operator: "In", values: ["b"] }] }, podSelector: { matchLabels: { x: "" } } }
          ],
          ports: [{ port: 80 }, { port: "http", protocol: "UDP" }, { port: 1000, endPort: 2000 }]
        }],
        egress: [{}]
      }
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "edge-role" },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"], resourceNames: ["a", ""] }, { apiGroups: ["apps"], resources: ["*"], verbs: ["*"] }]
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "edge-rolebinding" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "edge-role" },
      subjects: [{ kind: "ServiceAccount", name: "edge-sa", namespace }, { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: hostile.replace(/\u0000/gu, "") }]
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: `edge-clusterrole-${suffix}` },
      rules: [{ nonResourceURLs: ["/metrics", "/healthz/*"], verbs: ["get"] }],
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "edge.example.com/aggregate": "true" } }] }
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `edge-clusterrolebinding-${suffix}` },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `edge-clusterrole-${suffix}` },
      subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:authenticated" }]
    }
  ]
}

/** A small seeded generator (mulberry32): the same Pods on every run. */
const random = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const texts = ["", "a", hostile, "\u{10FFFF}", "\uFFFD", "x".repeat(300), "ünïcödé", "<>&'", "\\u0000"]
const cpuQuantities = ["0", "1", "100m", "1.5", "0.001", "2.50"]
const storageQuantities = ["1", "2Gi", "1e3", "1500Mi", "9223372036854775807", "1.5Gi"]
const numbers = [0, 1, 2 ** 31 - 1, 9007199254740993, 4611686018427387904]

/**
 * A valid Pod with a seeded random choice of optional fields, each either absent, set to its
 * zero value or set to something else. Bound to a node that does not exist: nothing runs it.
 */
export const randomPod = (index: number): Json => {
  const next = random(index + 1)
  const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(next() * values.length)]!
  const maybe = (value: () => unknown): unknown => (next() < 0.5 ? undefined : value())
  const defined = (object: Json): Json => Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined))
  const securityContext = () => {
    const privileged = maybe(() => next() < 0.5)
    return defined({
      privileged,
      runAsUser: maybe(() => pick(numbers.slice(0, 3))),
      runAsNonRoot: maybe(() => next() < 0.5),
      // Refused next to privileged: true.
      allowPrivilegeEscalation: privileged === true ? undefined : maybe(() => false),
      capabilities: maybe(() => defined({ add: maybe(() => []), drop: maybe(() => ["ALL"]) }))
    })
  }
  const container = (name: string, probed: boolean) =>
    defined({
      name,
      image: "registry.example.com/app:1",
      args: maybe(() => Array.from({ length: Math.floor(next() * 3) }, () => pick(texts))),
      env: maybe(() => [{ name: "E", value: pick(texts) }]),
      resources: maybe(() => ({ limits: { "ephemeral-storage": pick(storageQuantities) }, requests: { cpu: pick(cpuQuantities) } })),
      securityContext: maybe(securityContext),
      // Port names are unique in a Pod.
      ports: maybe(() => [defined({ containerPort: 1 + Math.floor(next() * 65534), name: maybe(() => `${name}p`), hostPort: maybe(() => 0) })]),
      readinessProbe: probed ? maybe(() => ({ tcpSocket: { port: next() < 0.5 ? 8080 : "probe" }, periodSeconds: 1 + Math.floor(next() * 10) })) : undefined
    })
  const labels = Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, (_, label) => [`l${label}`, pick(["", "a", "b-c", "x".repeat(63)])]))
  const annotations = Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, (_, annotation) => [`a${annotation}`, pick(texts)]))
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: defined({ name: `random-${index}`, labels: maybe(() => labels), annotations: maybe(() => annotations) }),
    spec: defined({
      nodeName: "no-such-node",
      containers: Array.from({ length: 1 + Math.floor(next() * 2) }, (_, position) => container(`c${position}`, true)),
      initContainers: maybe(() => [container("init", false)]),
      hostNetwork: maybe(() => next() < 0.5),
      hostPID: maybe(() => next() < 0.5),
      hostIPC: maybe(() => false),
      // true is refused next to hostPID: true.
      shareProcessNamespace: maybe(() => false),
      automountServiceAccountToken: maybe(() => next() < 0.5),
      terminationGracePeriodSeconds: maybe(() => pick(numbers.slice(0, 3))),
      activeDeadlineSeconds: maybe(() => pick([1, 2 ** 31 - 1])),
      securityContext: maybe(() => defined({ runAsUser: maybe(() => pick(numbers.slice(0, 3))), fsGroup: maybe(() => 0), supplementalGroups: maybe(() => []) })),
      // tolerationSeconds only with NoExecute.
      tolerations: maybe(() => [next() < 0.5 ? { operator: "Exists" } : defined({ operator: "Exists", effect: "NoExecute", tolerationSeconds: maybe(() => pick([0, 300, 4611686018427387904])) })]),
      volumes: maybe(() => [{ name: "v", emptyDir: defined({ sizeLimit: maybe(() => pick(storageQuantities)) }) }])
    })
  }
}
