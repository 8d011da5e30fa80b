import { createHash } from "node:crypto"
import type { ComplianceScanRun } from "../../api/ComplianceScanRun.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"
import type { HostMount } from "./KubeBenchHostPaths.ts"
import { kubeBenchScript, reportDirectory } from "./KubeBenchLog.ts"

/**
 * The one place that names kube-bench Jobs and describes them. Jobs live in the privileged
 * job namespace, not the run's, so labels (not owner references) tie them to their run.
 */
export const kubeBenchLabelKeys = {
  runNamespace: "security.ugallu.io/run-namespace",
  runName: "security.ugallu.io/run-name",
  runUid: "security.ugallu.io/run-uid",
  node: "security.ugallu.io/node",
  managedBy: "app.kubernetes.io/managed-by"
} as const

export const managedByValue = "compliance-scan"
export const kubeBenchContainerName = "kube-bench"

/** Which run a Job belongs to. */
export interface RunIdentity {
  readonly namespace: string
  readonly name: string
  readonly uid: string
}

export const runIdentityOf = (run: ComplianceScanRun): RunIdentity => ({
  namespace: run.metadata.namespace ?? "",
  name: run.metadata.name,
  uid: run.metadata.uid ?? ""
})

const shortHash = (text: string, length = 10): string => createHash("sha256").update(text).digest("hex").slice(0, length)

/** Lower-case DNS-1123 label characters only, no leading/trailing/double dashes. */
const dnsSafe = (text: string): string =>
  text.toLowerCase().replace(/[^a-z0-9-]+/gu, "-").replace(/-{2,}/gu, "-").replace(/^-+|-+$/gu, "")

const maxNameLength = 63

/**
 * `kb-<run name>-<node>-<hash>`: a DNS-1123 label of at most 63 characters. The readable
 * part is cut to fit; the hash of (run namespace, name, uid, node) keeps names unique and
 * the same across operator restarts, which is what makes AlreadyExists mean "already started".
 */
export const kubeBenchJobName = (run: RunIdentity, nodeName: string): string => {
  const hash = shortHash(`${run.namespace}/${run.name}/${run.uid}/${nodeName}`)
  const room = maxNameLength - "kb-".length - 1 - hash.length
  const readable = dnsSafe(`${run.name}-${nodeName}`).slice(0, room).replace(/-+$/u, "")
  return readable === "" ? `kb-${hash}` : `kb-${readable}-${hash}`
}

const labelValuePattern = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/u

/**
 * A valid label value (<= 63 characters, alphanumeric ends) for any string: kept when
 * already valid, otherwise cut and suffixed with a hash so long names stay distinct. The
 * full values are in annotations.
 */
export const labelValue = (value: string): string => {
  if (value.length <= 63 && labelValuePattern.test(value)) return value
  const hash = shortHash(value)
  const readable = value.replace(/[^-A-Za-z0-9_.]+/gu, "-").slice(0, 63 - 1 - hash.length).replace(/^[-_.]+|[-_.]+$/gu, "")
  return readable === "" ? hash : `${readable}-${hash}`
}

export const kubeBenchJobLabels = (run: RunIdentity, nodeName: string): Record<string, string> => ({
  [kubeBenchLabelKeys.runNamespace]: labelValue(run.namespace),
  [kubeBenchLabelKeys.runName]: labelValue(run.name),
  [kubeBenchLabelKeys.runUid]: labelValue(run.uid),
  [kubeBenchLabelKeys.node]: labelValue(nodeName),
  [kubeBenchLabelKeys.managedBy]: managedByValue
})

/** Label selector for every kube-bench Job of a run (the uid: names are reused, uids never). */
export const kubeBenchRunSelector = (run: RunIdentity): string =>
  `${kubeBenchLabelKeys.runUid}=${labelValue(run.uid)},${kubeBenchLabelKeys.managedBy}=${managedByValue}`

/** The benchmark the run pins: `benchmark`, else `profile` (api.md); undefined: decided per node. */
export const pinnedBenchmark = (spec: ComplianceScanRun["spec"]): string | undefined => spec.benchmark || spec.profile || undefined

/** `kube-bench run` arguments: always an explicit benchmark (kube-bench's own guess is cis-1.6 without API access). */
export const kubeBenchArgs = (spec: ComplianceScanRun["spec"], benchmark: string): Array<string> => {
  const args = ["run", "--json", "--benchmark", benchmark]
  const targets = spec.kubeBench?.targets ?? []
  if (targets.length > 0) args.push("--targets", [...new Set(targets)].join(","))
  return args
}

/** The emptyDir kube-bench writes its report into, and the one for temporary files. */
const reportVolume = "kube-bench-report"
const tmpVolume = "tmp"

/**
 * The container's privileges. Root (the host files it checks are root's), but only the one
 * capability kube-bench needs: DAC_READ_SEARCH, to stat and read files of other users
 * (/var/lib/etcd is 700 etcd:etcd; without it kube-bench stops with "permission denied" and
 * prints no report). bench/kube-bench-capabilities.ts measures it: the real binary over the
 * same node files gives the same verdict for every check with DAC_READ_SEARCH alone as with
 * all of root's capabilities.
 */
export const kubeBenchSecurityContext = {
  runAsUser: 0,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"], add: ["DAC_READ_SEARCH"] },
  seccompProfile: { type: "RuntimeDefault" }
} as const

/** Finished Jobs the operator never cleaned up (it crashed and never came back) go after this. */
export const ttlSecondsAfterFinished = 600

export interface KubeBenchJobInput {
  readonly run: ComplianceScanRun
  readonly nodeName: string
  readonly namespace: string
  readonly image: string
  /** The benchmark for this node (pinned by the run or resolved from the Node object). */
  readonly benchmark: string
  /** Host folders to mount read-only: those the benchmark's checks read (KubeBenchHostPaths.mountsFor). */
  readonly mounts: ReadonlyArray<HostMount>
  /**
   * Seconds until the run's deadline: the Job stops itself then even if the operator is
   * gone (the operator deletes it at the deadline anyway).
   */
  readonly activeDeadlineSeconds: number
}

/** The Job that runs kube-bench on one node and prints its report as the Pod's log. */
export const kubeBenchJob = (input: KubeBenchJobInput): KubeObject => {
  const identity = runIdentityOf(input.run)
  const labels = kubeBenchJobLabels(identity, input.nodeName)
  const hostMounts = input.mounts
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: kubeBenchJobName(identity, input.nodeName),
      namespace: input.namespace,
      labels,
      annotations: {
        [kubeBenchLabelKeys.runNamespace]: identity.namespace,
        [kubeBenchLabelKeys.runName]: identity.name,
        [kubeBenchLabelKeys.node]: input.nodeName
      }
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: Math.max(1, Math.ceil(input.activeDeadlineSeconds)),
      ttlSecondsAfterFinished,
      template: {
        metadata: { labels },
        spec: {
          nodeName: input.nodeName,
          hostPID: true,
          restartPolicy: "Never",
          // kube-bench must run on every selected node, control plane and tainted ones too.
          tolerations: [{ operator: "Exists" }],
          // kube-bench reads host files; it needs no API credentials.
          automountServiceAccountToken: false,
          securityContext: { seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: kubeBenchContainerName,
              image: input.image,
              // kube-bench's stderr stays in the log (it says why a run failed); the report
              // follows it between marker lines (KubeBenchLog). Arguments are passed as "$@".
              command: ["/bin/sh", "-c", kubeBenchScript, "kube-bench"],
              args: kubeBenchArgs(input.run.spec, input.benchmark),
              terminationMessagePolicy: "FallbackToLogsOnError",
              securityContext: kubeBenchSecurityContext,
              resources: {
                requests: { cpu: "100m", memory: "128Mi" },
                limits: { cpu: "500m", memory: "512Mi" }
              },
              volumeMounts: [
                ...hostMounts.map(({ mountPath, name }) => ({ name, mountPath, readOnly: true })),
                { name: reportVolume, mountPath: reportDirectory },
                { name: tmpVolume, mountPath: "/tmp" }
              ]
            }
          ],
          volumes: [
            ...hostMounts.map(({ hostPath, name }) => ({ name, hostPath: { path: hostPath } })),
            { name: reportVolume, emptyDir: { sizeLimit: "64Mi" } },
            { name: tmpVolume, emptyDir: { sizeLimit: "64Mi" } }
          ]
        }
      }
    }
  }
}
