import { Cause, Effect, FiberMap, Queue } from "effect"
import { isKubeError } from "./Errors.ts"
import type { KubeObject } from "../../src/services/kube/KubeObject.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import type { ApiServer } from "./ApiServer.ts"
import { asRecord, copy } from "./Json.ts"
import { resourceKeyOf } from "./ObjectStore.ts"
import type { Change } from "./WatchHub.ts"

/**
 * How a simulated Pod's container ends. `Waiting`: it never starts (ErrImagePull,
 * ImagePullBackOff, CreateContainerConfigError, ...) and the Pod stays Pending for good.
 */
export type PodOutcome =
  | { readonly _tag: "Succeeded"; readonly log: string }
  | {
    readonly _tag: "Failed"
    readonly exitCode: number
    readonly reason?: string
    readonly message?: string
    readonly log?: string
  }
  | { readonly _tag: "Waiting"; readonly reason: string; readonly message: string }

/** Plays the container of a Job's Pod: the simulation's stand-in for the kubelet and the image. */
export type JobExecutor = (input: { readonly job: KubeObject; readonly pod: KubeObject }) => Effect.Effect<PodOutcome>

/** The default: every container exits 0 with an empty log. */
export const succeedingExecutor: JobExecutor = () => Effect.succeed({ _tag: "Succeeded", log: "" })

type Mutable = Record<string, unknown>

const jobKey = resourceKeyOf(Resources.Job)
const podKey = resourceKeyOf(Resources.Pod)

const controllerUidOf = (object: KubeObject): string | undefined =>
  object.metadata.ownerReferences?.find((owner) => owner.controller === true)?.uid

const containerNames = (podSpec: unknown): Array<{ name: string; image: string }> => {
  const containers = asRecord(podSpec).containers
  return (Array.isArray(containers) ? containers : []).map((container) => ({
    name: String(asRecord(container).name ?? ""),
    image: String(asRecord(container).image ?? "")
  }))
}

/** `status.containerStatuses` with every container in the same state. */
const containerStatuses = (pod: KubeObject, state: Mutable, ready: boolean) =>
  containerNames(pod.spec).map(({ image, name }) => ({
    name,
    image,
    imageID: "",
    ready,
    restartCount: 0,
    started: state.running !== undefined,
    state
  }))

/** A Job that is suspended or already finished (seeded that way) gets no Pods. */
const wantsPods = (job: KubeObject): boolean => {
  if (asRecord(job.spec).suspend === true) return false
  const conditions = asRecord(job.status).conditions
  return !(Array.isArray(conditions) &&
    conditions.some((entry) => {
      const condition = asRecord(entry)
      return (condition.type === "Complete" || condition.type === "Failed") && condition.status === "True"
    }))
}

/**
 * The Job controller and kubelet of the simulation: for each new Job it creates a Pod (as
 * the real controller names and labels it), runs the executor for it, and writes the Pod's
 * and the Job's status, retrying failed Pods up to `spec.backoffLimit`. Each Job runs in a
 * fiber keyed by its uid; deleting the Job (or its current Pod) interrupts that fiber.
 */
export const makeJobController = Effect.fnUntraced(function*(
  api: ApiServer,
  currentExecutor: () => JobExecutor
) {
  const fibers = yield* FiberMap.make<string>()
  const changes = yield* Queue.unbounded<Change>()
  /** The Pod each running Job is currently executing, so deleting that Pod stops it. */
  const currentPod = new Map<string, string>()

  /** Registered as the API server's change listener: only Job and Pod events matter. */
  const observe = (change: Change): void => {
    if (change.resourceKey === jobKey && change.type !== "MODIFIED") Queue.offerUnsafe(changes, change)
    else if (change.resourceKey === podKey && change.type === "DELETED") Queue.offerUnsafe(changes, change)
  }

  /** The Job's namespace may be going away: then the Pod simply is not created. */
  const tryCreate = (pod: KubeObject): KubeObject | undefined => {
    try {
      return api.create(Resources.Pod, pod)
    } catch (error) {
      if (isKubeError(error)) return undefined
      throw error
    }
  }

  const createPod = (job: KubeObject): KubeObject | undefined => {
    const namespace = job.metadata.namespace ?? ""
    const uid = job.metadata.uid ?? ""
    // Checked and created in one step: a Job deleted meanwhile gets no Pod.
    const live = api.peek(Resources.Job, namespace, job.metadata.name)
    if (live === undefined || live.metadata.uid !== uid) return undefined
    const template = asRecord(asRecord(job.spec).template)
    const templateMetadata = asRecord(template.metadata)
    const pod = tryCreate({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "",
        generateName: `${job.metadata.name.slice(0, 57)}-`,
        namespace,
        labels: {
          ...asRecord(templateMetadata.labels) as Record<string, string>,
          "batch.kubernetes.io/controller-uid": uid,
          "batch.kubernetes.io/job-name": job.metadata.name,
          "controller-uid": uid,
          "job-name": job.metadata.name
        },
        ...(templateMetadata.annotations === undefined ? {} : { annotations: templateMetadata.annotations as Record<string, string> }),
        ownerReferences: [{
          apiVersion: "batch/v1",
          kind: "Job",
          name: job.metadata.name,
          uid,
          controller: true,
          blockOwnerDeletion: true
        }]
      },
      spec: template.spec
    })
    if (pod === undefined) return undefined
    currentPod.set(uid, pod.metadata.uid ?? "")
    return pod
  }

  const updatePod = (pod: KubeObject, change: (status: Mutable) => Mutable) =>
    api.mutateStatus(Resources.Pod, pod.metadata.namespace ?? "", pod.metadata.name, pod.metadata.uid ?? "", change)

  const updateJob = (job: KubeObject, change: (status: Mutable) => Mutable) =>
    api.mutateStatus(Resources.Job, job.metadata.namespace ?? "", job.metadata.name, job.metadata.uid ?? "", change)

  const condition = (type: string, reason: string, message: string) => {
    const now = api.timestamp()
    return { type, status: "True", reason, message, lastProbeTime: now, lastTransitionTime: now }
  }

  const runContainer = Effect.fnUntraced(function*(job: KubeObject, pod: KubeObject) {
    const outcome = yield* currentExecutor()({ job: copy(job), pod: copy(pod) }).pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause)
          : Effect.succeed<PodOutcome>({ _tag: "Failed", exitCode: 1, reason: "Error", message: Cause.pretty(cause) })
      )
    )
    if (outcome._tag === "Waiting") {
      updatePod(pod, (status) => ({
        ...status,
        phase: "Pending",
        containerStatuses: containerStatuses(pod, { waiting: { reason: outcome.reason, message: outcome.message } }, false)
      }))
      return yield* Effect.never
    }
    const startedAt = api.timestamp()
    const running = updatePod(pod, (status) => ({
      ...status,
      phase: "Running",
      startTime: startedAt,
      containerStatuses: containerStatuses(pod, { running: { startedAt } }, true)
    }))
    // The Pod was deleted meanwhile: nothing more to write (its deletion stops this Job's fiber).
    if (running === undefined) return undefined
    const log = outcome.log ?? ""
    api.setPodLog(pod.metadata.namespace ?? "", pod.metadata.name, log)
    const succeeded = outcome._tag === "Succeeded"
    const terminated: Mutable = {
      exitCode: succeeded ? 0 : outcome.exitCode,
      reason: succeeded ? "Completed" : (outcome.reason ?? "Error"),
      ...(succeeded || outcome.message === undefined ? {} : { message: outcome.message }),
      startedAt,
      finishedAt: api.timestamp()
    }
    updatePod(pod, (status) => ({
      ...status,
      phase: succeeded ? "Succeeded" : "Failed",
      containerStatuses: containerStatuses(pod, { terminated }, false)
    }))
    return outcome
  })

  const finishJob = (job: KubeObject, fields: Mutable, conditions: ReadonlyArray<ReturnType<typeof condition>>) =>
    updateJob(job, (status) => {
      const { active: _active, ...rest } = status
      return { ...rest, ...fields, conditions }
    })

  /** Pods one after another until one succeeds or `backoffLimit` failures. */
  const runPods = Effect.fnUntraced(function*(job: KubeObject) {
    const backoffLimit = Number(asRecord(job.spec).backoffLimit ?? 6)
    let failed = 0
    while (true) {
      const pod = createPod(job)
      if (pod === undefined) return
      updateJob(job, (status) => ({ ...status, startTime: status.startTime ?? api.timestamp(), active: 1 }))
      const outcome = yield* runContainer(job, pod)
      if (outcome === undefined) return
      if (outcome._tag === "Succeeded") {
        const message = "Reached expected number of succeeded pods"
        finishJob(job, { succeeded: 1, completionTime: api.timestamp() }, [
          condition("SuccessCriteriaMet", "CompletionsReached", message),
          condition("Complete", "CompletionsReached", message)
        ])
        return
      }
      failed++
      if (failed > backoffLimit) {
        const message = "Job has reached the specified backoff limit"
        finishJob(job, { failed }, [
          condition("FailureTarget", "BackoffLimitExceeded", message),
          condition("Failed", "BackoffLimitExceeded", message)
        ])
        return
      }
      updateJob(job, (status) => ({ ...status, failed }))
    }
  })

  /** `activeDeadlineSeconds` passed: the running Pod is deleted and the Job fails. */
  const exceedDeadline = (job: KubeObject) => {
    const uid = job.metadata.uid ?? ""
    const podUid = currentPod.get(uid)
    // Forgotten first, so deleting it does not stop this very fiber.
    currentPod.delete(uid)
    const pod = podUid === undefined ? undefined : api.findByUid(podUid)
    if (pod !== undefined) api.delete(Resources.Pod, pod.namespace, pod.name, { propagationPolicy: "Background" })
    const stored = api.peek(Resources.Job, job.metadata.namespace, job.metadata.name)
    const failedBefore = Number(asRecord(stored?.status).failed ?? 0)
    const message = "Job was active longer than specified deadline"
    // The Pod it had to kill counts as failed.
    finishJob(job, { failed: failedBefore + (pod === undefined ? 0 : 1) }, [
      condition("FailureTarget", "DeadlineExceeded", message),
      condition("Failed", "DeadlineExceeded", message)
    ])
  }

  const runJob = Effect.fnUntraced(function*(job: KubeObject) {
    const spec = asRecord(job.spec)
    const deadline = spec.activeDeadlineSeconds
    if (typeof deadline === "number") {
      const finished = yield* Effect.timeoutOption(runPods(job), deadline * 1000)
      if (finished._tag === "None") exceedDeadline(job)
    } else {
      yield* runPods(job)
    }
    // The TTL controller removes finished Jobs (and, in the background, their Pods).
    const ttl = spec.ttlSecondsAfterFinished
    if (typeof ttl === "number") {
      yield* Effect.sleep(ttl * 1000)
      const live = api.peek(Resources.Job, job.metadata.namespace, job.metadata.name)
      if (live !== undefined && live.metadata.uid === job.metadata.uid && !wantsPods(live)) {
        api.delete(Resources.Job, job.metadata.namespace, job.metadata.name, { propagationPolicy: "Background" })
      }
    }
  })

  /** Reacts to Job and Pod changes, in commit order. */
  const control = Effect.gen(function*() {
    while (true) {
      const change = yield* Queue.take(changes)
      const uid = change.object.metadata.uid ?? ""
      if (change.resourceKey === jobKey) {
        if (change.type === "ADDED" && wantsPods(change.object)) {
          yield* FiberMap.run(fibers, uid, runJob(change.object).pipe(Effect.ensuring(Effect.sync(() => currentPod.delete(uid)))))
        } else {
          yield* FiberMap.remove(fibers, uid)
        }
      } else {
        const jobUid = controllerUidOf(change.object)
        if (jobUid !== undefined && currentPod.get(jobUid) === uid) yield* FiberMap.remove(fibers, jobUid)
      }
    }
  })

  yield* Effect.forkScoped(control)

  return { observe }
})
