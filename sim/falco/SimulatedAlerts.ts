import type { FalcoPriority } from "../../src/api/ComplianceScanRun.ts"
import { type FalcoEvent, formatEventTime } from "../../src/backends/falco/FalcoEvent.ts"

/**
 * Realistic Falco alerts for the simulated Falco, the demo, tests and the bench: rules
 * modelled on Falco's default rule set, with the output text, output fields and tags (MITRE
 * ATT&CK techniques, PCI DSS and NIST 800-53 controls) such rules carry.
 */

export interface SimulatedRule {
  readonly rule: string
  readonly priority: FalcoPriority
  readonly tags: ReadonlyArray<string>
  /** Output text for a workload (`subject`) and the fields Falco would attach. */
  readonly render: (workload: SimulatedWorkload) => { readonly output: string; readonly fields: Record<string, unknown> }
}

/** Where an alert happened: a pod's container, or the host itself (no namespace/pod). */
export interface SimulatedWorkload {
  readonly hostname: string
  readonly namespace?: string
  readonly pod?: string
  readonly container?: string
  readonly containerID?: string
}

const k8sFields = (workload: SimulatedWorkload): Record<string, unknown> =>
  workload.pod === undefined
    ? { "container.id": "host", "container.name": "host", "k8s.ns.name": null, "k8s.pod.name": null }
    : {
      "container.id": workload.containerID ?? "0123456789ab",
      "container.name": workload.container ?? "app",
      "k8s.ns.name": workload.namespace ?? "default",
      "k8s.pod.name": workload.pod
    }

const where = (workload: SimulatedWorkload): string =>
  workload.pod === undefined
    ? "container_id=host container_name=host"
    : `container_id=${workload.containerID ?? "0123456789ab"} container_name=${workload.container ?? "app"} k8s_ns=${workload.namespace ?? "default"} k8s_pod_name=${workload.pod}`

export const simulatedRules: ReadonlyArray<SimulatedRule> = [
  {
    rule: "Terminal shell in container",
    priority: "notice",
    tags: ["maturity_stable", "container", "shell", "mitre_execution", "T1059", "PCI_DSS_10.2.7", "NIST_800-53_AU-10"],
    render: (workload) => ({
      output: `A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 process=bash proc_exepath=/usr/bin/bash parent=runc command=bash -il terminal=34816 ${where(workload)}`,
      fields: { ...k8sFields(workload), "evt.type": "execve", "proc.name": "bash", "proc.cmdline": "bash -il", "user.name": "root", "user.uid": 0, "proc.tty": 34816 }
    })
  },
  {
    rule: "Write below etc",
    priority: "error",
    tags: ["maturity_sandbox", "host", "container", "filesystem", "mitre_persistence", "T1098", "PCI_DSS_11.5.1", "NIST_800-53_SI-7"],
    render: (workload) => ({
      output: `File below /etc opened for writing | file=/etc/passwd pcmdline=sh -c useradd svc gparent=containerd evt_type=openat user=root process=useradd command=useradd svc ${where(workload)}`,
      fields: { ...k8sFields(workload), "evt.type": "openat", "fd.name": "/etc/passwd", "proc.name": "useradd", "proc.cmdline": "useradd svc", "user.name": "root" }
    })
  },
  {
    rule: "Read sensitive file untrusted",
    priority: "warning",
    tags: ["maturity_stable", "host", "container", "filesystem", "mitre_credential_access", "T1555", "PCI_DSS_10.2.7", "NIST_800-53_AU-10"],
    render: (workload) => ({
      output: `Sensitive file opened for reading by non-trusted program | file=/etc/shadow gparent=containerd-shim ggparent=containerd evt_type=openat user=root process=cat command=cat /etc/shadow ${where(workload)}`,
      fields: { ...k8sFields(workload), "evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat", "proc.cmdline": "cat /etc/shadow", "user.name": "root" }
    })
  },
  {
    rule: "Drop and execute new binary in container",
    priority: "critical",
    tags: ["maturity_stable", "container", "process", "mitre_persistence", "TA0003", "T1610", "PCI_DSS_11.5.1"],
    render: (workload) => ({
      output: `Executing binary not part of base image | proc_exe=/tmp/xmrig proc_sname=sh user=root process=xmrig command=/tmp/xmrig --donate-level 1 exe_flags=EXE_UPPER_LAYER ${where(workload)}`,
      fields: { ...k8sFields(workload), "evt.type": "execve", "proc.exe": "/tmp/xmrig", "proc.name": "xmrig", "proc.cmdline": "/tmp/xmrig --donate-level 1", "user.name": "root" }
    })
  },
  {
    rule: "Contact K8S API Server From Container",
    priority: "notice",
    tags: ["maturity_stable", "container", "network", "k8s", "mitre_discovery", "T1565"],
    render: (workload) => ({
      output: `Unexpected connection to K8s API Server from container | connection=10.244.1.7:51234->10.96.0.1:443 lport=443 rport=51234 fd_type=ipv4 fd_proto=tcp evt_type=connect user=nobody process=curl command=curl -k https://kubernetes.default ${where(workload)}`,
      fields: { ...k8sFields(workload), "evt.type": "connect", "fd.name": "10.244.1.7:51234->10.96.0.1:443", "proc.name": "curl", "user.name": "nobody" }
    })
  },
  {
    rule: "Clear Log Activities",
    priority: "warning",
    tags: ["maturity_stable", "host", "container", "filesystem", "mitre_defense_evasion", "T1070", "NIST_800-53_AU-10"],
    render: (workload) => ({
      output: `Log files were tampered | file=/var/log/auth.log evt_type=openat user=root process=truncate command=truncate -s 0 /var/log/auth.log ${where(workload)}`,
      fields: { ...k8sFields(workload), "evt.type": "openat", "fd.name": "/var/log/auth.log", "proc.name": "truncate", "user.name": "root" }
    })
  }
]

export const simulatedWorkloads: ReadonlyArray<SimulatedWorkload> = [
  { hostname: "worker-1", namespace: "payments", pod: "checkout-7d9f8b6c5-x2x4q", container: "checkout", containerID: "3f2a9c1b7e4d" },
  { hostname: "worker-2", namespace: "payments", pod: "ledger-5c8d7b9f4-p9k2m", container: "ledger", containerID: "8b1e4f6a2c9d" },
  { hostname: "worker-1", namespace: "web", pod: "frontend-6b7c9d8f5-q7w3e", container: "nginx", containerID: "c4d2e8f1a6b3" },
  { hostname: "worker-3", namespace: "kube-system", pod: "coredns-5d78c9869d-zt2kx", container: "coredns", containerID: "9e7f3a1c5b2d" },
  { hostname: "control-plane-1" }
]

/** The `index`-th alert of a deterministic sequence cycling through rules and workloads. */
export const simulatedAlert = (index: number, timeMillis: number, rules: ReadonlyArray<SimulatedRule> = simulatedRules, workloads: ReadonlyArray<SimulatedWorkload> = simulatedWorkloads): FalcoEvent => {
  const rule = rules[index % rules.length]!
  // Co-prime strides so every rule meets every workload.
  const workload = workloads[(index * 7 + Math.floor(index / rules.length)) % workloads.length]!
  const { output, fields } = rule.render(workload)
  const seconds = BigInt(Math.floor(timeMillis / 1000))
  // Distinct nanoseconds per alert keep simultaneous alerts distinct.
  const nanos = (timeMillis % 1000) * 1_000_000 + (index % 1_000_000)
  const outputFields: Record<string, string> = {}
  for (const [name, value] of Object.entries(fields)) outputFields[name] = typeof value === "string" ? value : JSON.stringify(value)
  return {
    time: formatEventTime(seconds, nanos),
    timeMillis,
    priority: rule.priority,
    rule: rule.rule,
    output: `${new Date(timeMillis).toISOString()}: ${rule.priority[0]!.toUpperCase()}${rule.priority.slice(1)} ${output}`,
    outputFields,
    hostname: workload.hostname,
    tags: rule.tags,
    source: "syscall"
  }
}

/** `count` alerts starting at `index`, all at `timeMillis`. */
export const simulatedAlerts = (count: number, timeMillis: number, startIndex = 0): ReadonlyArray<FalcoEvent> =>
  Array.from({ length: count }, (_, offset) => simulatedAlert(startIndex + offset, timeMillis))

/** An alert as Falco's `http_output` JSON (typed output field values); `uuid` makes it Falcosidekick's. */
export const toHttpJson = (event: FalcoEvent, uuid?: string): Record<string, unknown> => {
  const outputFields: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(event.outputFields)) {
    try {
      outputFields[name] = /^(?:-?\d+(?:\.\d+)?|null|true|false)$/u.test(value) ? JSON.parse(value) : value
    } catch {
      outputFields[name] = value
    }
  }
  return {
    ...(uuid === undefined ? {} : { uuid }),
    time: event.time,
    rule: event.rule,
    priority: `${event.priority[0]!.toUpperCase()}${event.priority.slice(1)}`,
    source: event.source,
    hostname: event.hostname,
    output: event.output,
    tags: event.tags,
    output_fields: outputFields
  }
}
