import { Cause, Clock, Context, Effect, Layer, Queue, Stream } from "effect"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { Invalid, type KubeError } from "../../src/services/kube/KubeErrors.ts"
import type { KubeObject, WatchEvent } from "../../src/services/kube/KubeObject.ts"
import { type ResourceType, Resources } from "../../src/services/kube/Resources.ts"
import { makeApiServer } from "./ApiServer.ts"
import { attempt } from "./Errors.ts"
import { type FaultSettings, makeFaults, type RequestCounts, type Verb } from "./Faults.ts"
import { type JobExecutor, makeJobController, succeedingExecutor } from "./JobController.ts"
import { seededRandom } from "./SeededRandom.ts"
import type { Change } from "./WatchHub.ts"

export type { FaultSettings, RequestCounts, Verb } from "./Faults.ts"
export { verbs } from "./Faults.ts"
export type { JobExecutor, PodOutcome } from "./JobController.ts"
export { succeedingExecutor } from "./JobController.ts"

export interface SimulatedClusterOptions {
  /** Changes a watch can resume across before it gets Gone (etcd's compaction window). Default 1000. */
  readonly historySize?: number
  /**
   * Kinds with a status subresource. Default: ComplianceScanRun, ComplianceScanResult,
   * Job, Pod, Node and ComplianceScanSchedule (SecurityEvent's CRD declares no status, hence no subresource).
   */
  readonly statusSubresources?: ReadonlyArray<ResourceType>
  /** What Job Pods do; default: succeed with an empty log. */
  readonly jobExecutor?: JobExecutor
  readonly faults?: FaultSettings
  /** Seeds the cluster's generator (generated names, injected faults); default 1, so runs reproduce. */
  readonly seed?: number
  /** Kinds beyond `Resources` that `apply` should recognise by apiVersion and kind. */
  readonly resources?: ReadonlyArray<ResourceType>
  /** Objects to `apply` when the cluster starts (one the server refuses is a defect). */
  readonly objects?: ReadonlyArray<KubeObject>
}

export const defaultStatusSubresources: ReadonlyArray<ResourceType> = [
  Resources.ComplianceScanRun,
  Resources.ComplianceScanResult,
  Resources.Job,
  Resources.Pod,
  Resources.Node,
  Resources.ComplianceException,
  Resources.ComplianceScanSchedule
]

/**
 * An in-memory Kubernetes API server (a simulation, never the product): the `demo`'s cluster, the benches
 * and the fast test tier. `SimulatedCluster.layer()` provides KubeClient (behaving like
 * the real API server where the operator can tell) and this control handle, which steers
 * the world behind it: seeding, what Job Pods do, and fault injection. The control
 * handle's own operations bypass faults and request counting.
 */
export class SimulatedCluster extends Context.Service<
  SimulatedCluster,
  {
    /** Creates or overwrites each object as given (status included, no preconditions), in order. */
    readonly apply: (objects: ReadonlyArray<KubeObject>) => Effect.Effect<ReadonlyArray<KubeObject>, KubeError>
    /** Everything stored of a kind (optionally in one namespace), in key order. */
    readonly objects: (resource: ResourceType, namespace?: string) => Effect.Effect<ReadonlyArray<KubeObject>>
    /** The current global resourceVersion. */
    readonly resourceVersion: Effect.Effect<string>
    readonly setJobExecutor: (executor: JobExecutor) => Effect.Effect<void>
    /** Changes only the settings given (errorRate, seed, latency). */
    readonly setFaults: (faults: FaultSettings) => Effect.Effect<void>
    /** The next call of `verb` fails with `error` (queued: call it twice for two failures). */
    readonly failNext: (verb: Verb, error: KubeError) => Effect.Effect<void>
    /** Ends every open watch stream, as an API server restart does; returns how many. */
    readonly dropWatches: Effect.Effect<number>
    readonly openWatches: Effect.Effect<number>
    /** KubeClient calls by verb since the start (or the last reset), failed ones included. */
    readonly requestCounts: Effect.Effect<RequestCounts>
    readonly resetRequestCounts: Effect.Effect<void>
    /** Sets the log of a Pod (one seeded with `apply`, say). */
    readonly setPodLog: (namespace: string, name: string, log: string) => Effect.Effect<void, KubeError>
  }
>()("compliance-scan/sim/SimulatedCluster") {
  /** Provides both SimulatedCluster (the control handle) and KubeClient. */
  static layer(options: SimulatedClusterOptions = {}): Layer.Layer<SimulatedCluster | KubeClient> {
    return Layer.effectContext(makeSimulatedCluster(options))
  }
}

const makeSimulatedCluster = Effect.fnUntraced(function*(options: SimulatedClusterOptions) {
  const clock = yield* Clock.Clock
  let executor: JobExecutor = options.jobExecutor ?? succeedingExecutor
  const listeners: Array<(change: Change) => void> = []
  const random = seededRandom(options.seed ?? 1)
  const api = makeApiServer({
    random,
    historySize: options.historySize ?? 1000,
    statusSubresources: options.statusSubresources ?? defaultStatusSubresources,
    now: () => clock.currentTimeMillisUnsafe(),
    onChange: (change) => {
      for (const listener of listeners) listener(change)
    }
  })
  const jobController = yield* makeJobController(api, () => executor)
  listeners.push(jobController.observe)
  // Closing the cluster ends its watches, as a server shutdown does.
  yield* Effect.addFinalizer(() => Effect.sync(() => api.dropWatches()))

  const faults = makeFaults(options.faults, random)
  const request = <A>(verb: Verb, handle: () => A): Effect.Effect<A, KubeError> =>
    Effect.andThen(faults.admit(verb), attempt(handle))

  const watch = (resource: ResourceType, watchOptions: Parameters<KubeClient["Service"]["watch"]>[1]) =>
    Stream.unwrap(
      Effect.as(
        faults.admit("watch"),
        Stream.callback<WatchEvent, KubeError>((queue) =>
          Effect.gen(function*() {
            const unsubscribe = yield* attempt(() =>
              api.watch(resource, watchOptions, {
                emit: (event) => {
                  Queue.offerUnsafe(queue, event)
                },
                end: () => {
                  Queue.endUnsafe(queue)
                }
              })
            ).pipe(Effect.tapError((error) => Queue.failCause(queue, Cause.fail(error))))
            yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
            if (watchOptions.timeoutSeconds !== undefined) {
              yield* Effect.forkScoped(Effect.andThen(Effect.sleep(watchOptions.timeoutSeconds * 1000), Queue.end(queue)))
            }
          })
        )
      )
    )

  const client = KubeClient.of({
    get: (resource, namespace, name) => request("get", () => api.get(resource, namespace, name)),
    list: (resource, listOptions) => request("list", () => api.list(resource, listOptions)),
    create: (resource, object) => request("create", () => api.create(resource, object)),
    replace: (resource, object) => request("replace", () => api.replace(resource, object)),
    replaceStatus: (resource, object) => request("replaceStatus", () => api.replaceStatus(resource, object)),
    patch: (resource, namespace, name, patch, patchOptions) =>
      request("patch", () => api.patch(resource, namespace, name, patch, patchOptions)),
    delete: (resource, namespace, name, deleteOptions) =>
      request("delete", () => api.delete(resource, namespace, name, deleteOptions)),
    watch,
    podLogs: (namespace, name, logOptions) => request("podLogs", () => api.podLogs(namespace, name, logOptions))
  })

  const knownResources = new Map<string, ResourceType>()
  for (const resource of [...Object.values(Resources), ...(options.resources ?? [])]) {
    knownResources.set(`${resource.apiVersion}|${resource.kind}`, resource)
  }
  const resourceOf = (object: KubeObject): ResourceType => {
    const resource = knownResources.get(`${object.apiVersion}|${object.kind}`)
    if (resource === undefined) {
      throw new Invalid({ message: `no resource is known for apiVersion ${object.apiVersion} kind ${object.kind}` })
    }
    return resource
  }

  const apply = (objects: ReadonlyArray<KubeObject>) =>
    attempt(() => objects.map((object) => api.apply(resourceOf(object), object)))

  const control = SimulatedCluster.of({
    apply,
    objects: (resource, namespace) => Effect.sync(() => api.snapshot(resource, namespace)),
    resourceVersion: Effect.sync(() => api.resourceVersion()),
    setJobExecutor: (next) =>
      Effect.sync(() => {
        executor = next
      }),
    setFaults: (settings) => Effect.sync(() => faults.configure(settings)),
    failNext: (verb, error) => Effect.sync(() => faults.failNext(verb, error)),
    dropWatches: Effect.sync(() => api.dropWatches()),
    openWatches: Effect.sync(() => api.openWatches()),
    requestCounts: Effect.sync(() => faults.counts()),
    resetRequestCounts: Effect.sync(() => faults.resetCounts()),
    setPodLog: (namespace, name, log) => attempt(() => api.setPodLog(namespace, name, log))
  })

  // Seed objects the server refuses are a mistake in the caller's code, not a runtime condition.
  if (options.objects !== undefined) yield* Effect.orDie(apply(options.objects))

  return Context.make(SimulatedCluster, control).pipe(Context.add(KubeClient, client))
})
