import type { KubeBenchNodeFailureReason } from "../../api/RunReason.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"

/**
 * What a kube-bench Job and its Pod say about one node's scan, read from their status
 * as the Job controller and the kubelet write it. Pure, so every path is easy to test.
 */
export type JobObservation =
  | { readonly _tag: "Pending" }
  | { readonly _tag: "Running" }
  | { readonly _tag: "Succeeded"; readonly podName: string }
  | {
    readonly _tag: "Failed"
    readonly reason: NodeFailureReason
    readonly message: string
    /** The Pod whose container ran and failed: its log says why (kube-bench's stderr). */
    readonly podName?: string
  }

/** The node failures a Job's own status can show (src/api/RunReason.ts has them all). */
export type NodeFailureReason = Extract<KubeBenchNodeFailureReason, "ImagePullFailed" | "ContainerConfigError" | "JobFailed">

/** Waiting reasons that never resolve by waiting: the node fails at once, not at the timeout. */
const stuckReasons: Readonly<Record<string, NodeFailureReason>> = {
  ErrImagePull: "ImagePullFailed",
  ImagePullBackOff: "ImagePullFailed",
  InvalidImageName: "ImagePullFailed",
  ErrImageNeverPull: "ImagePullFailed",
  CreateContainerConfigError: "ContainerConfigError",
  CreateContainerError: "ContainerConfigError"
}

interface ContainerState {
  readonly waiting?: { readonly reason?: string; readonly message?: string }
  readonly running?: unknown
  readonly terminated?: { readonly exitCode?: number; readonly reason?: string; readonly message?: string }
}

interface ContainerStatus {
  readonly name?: string
  readonly state?: ContainerState
}

interface PodStatus {
  readonly phase?: string
  readonly reason?: string
  readonly message?: string
  readonly containerStatuses?: ReadonlyArray<ContainerStatus>
  readonly initContainerStatuses?: ReadonlyArray<ContainerStatus>
}

interface JobCondition {
  readonly type?: string
  readonly status?: string
  readonly reason?: string
  readonly message?: string
}

interface JobStatus {
  readonly succeeded?: number
  readonly failed?: number
  readonly conditions?: ReadonlyArray<JobCondition>
}

const statusOf = <A>(object: KubeObject): A => (object["status"] ?? {}) as A

const conditionTrue = (status: JobStatus, type: string): JobCondition | undefined =>
  status.conditions?.find((condition) => condition.type === type && condition.status === "True")

/** The Pods the Job created (owner reference), newest first; Pods of an older Job of the same name are ignored. */
export const podsOfJob = (job: KubeObject, pods: ReadonlyArray<KubeObject>): Array<KubeObject> => {
  const uid = job.metadata.uid
  return pods
    .filter((pod) => {
      const owners = pod.metadata.ownerReferences
      if (uid === undefined || owners === undefined || owners.length === 0) return true
      return owners.some((owner) => owner.uid === uid)
    })
    .sort((left, right) => (right.metadata.creationTimestamp ?? "").localeCompare(left.metadata.creationTimestamp ?? ""))
}

const containerStatusesOf = (status: PodStatus): Array<ContainerStatus> => [
  ...(status.initContainerStatuses ?? []),
  ...(status.containerStatuses ?? [])
]

/** The container's end as a sentence: exit code, reason and termination message. */
const terminationOf = (status: PodStatus): string | undefined => {
  for (const container of containerStatusesOf(status)) {
    const terminated = container.state?.terminated
    if (terminated === undefined) continue
    const parts = [`exit code ${terminated.exitCode ?? "unknown"}`]
    if (terminated.reason) parts.push(`(${terminated.reason})`)
    const message = terminated.message?.trim()
    if (message) parts.push(`: ${tail(message)}`)
    return parts.join(" ").replace(" :", ":")
  }
  return undefined
}

/** The end of a long termination message: the last lines say what went wrong. */
const tail = (text: string, max = 500): string => (text.length > max ? `...${text.slice(-max)}` : text)

export const observeJob = (job: KubeObject, pods: ReadonlyArray<KubeObject>): JobObservation => {
  const jobName = job.metadata.name
  const jobStatus = statusOf<JobStatus>(job)
  const own = podsOfJob(job, pods)
  const failedCondition = conditionTrue(jobStatus, "Failed")
  if (failedCondition !== undefined) {
    const ended = own.find((pod) => terminationOf(statusOf<PodStatus>(pod)) !== undefined)
    const termination = ended === undefined ? undefined : terminationOf(statusOf<PodStatus>(ended))
    const why = [failedCondition.reason, failedCondition.message].filter(Boolean).join(": ")
    return {
      _tag: "Failed",
      reason: "JobFailed",
      message: `Job ${jobName} failed${why ? ` (${why})` : ""}${termination ? `; ${termination}` : ""}`,
      ...(ended === undefined ? {} : { podName: ended.metadata.name })
    }
  }
  for (const pod of own) {
    const status = statusOf<PodStatus>(pod)
    if (status.phase === "Succeeded") return { _tag: "Succeeded", podName: pod.metadata.name }
    if (status.phase === "Failed") {
      const termination = terminationOf(status) ?? [status.reason, status.message].filter(Boolean).join(": ")
      return {
        _tag: "Failed",
        reason: "JobFailed",
        message: `Pod ${pod.metadata.name} of Job ${jobName} failed${termination ? `: ${termination}` : ""}`,
        podName: pod.metadata.name
      }
    }
    for (const container of containerStatusesOf(status)) {
      const waiting = container.state?.waiting
      const reason = waiting?.reason === undefined ? undefined : stuckReasons[waiting.reason]
      if (reason !== undefined) {
        return {
          _tag: "Failed",
          reason,
          message: `Pod ${pod.metadata.name} of Job ${jobName} cannot start: ${waiting!.reason}${
            waiting!.message ? `: ${tail(waiting!.message)}` : ""
          }`
        }
      }
    }
  }
  // Complete without a Pod left to read (deleted by someone else): nothing to parse.
  if (conditionTrue(jobStatus, "Complete") !== undefined || (jobStatus.succeeded ?? 0) > 0) {
    return {
      _tag: "Failed",
      reason: "JobFailed",
      message: `Job ${jobName} completed but its Pod is gone, so its report cannot be read`
    }
  }
  if (own.some((pod) => statusOf<PodStatus>(pod).phase === "Running")) return { _tag: "Running" }
  return { _tag: "Pending" }
}
