import { Clock, Context, Duration, Effect, Layer, Ref, Result, Schema, type Scope, Stream, SubscriptionRef } from "effect"
import type { ComplianceScanRun, NodeScanStatus } from "../../api/ComplianceScanRun.ts"
import { specDefaults } from "../../api/ComplianceScanRun.ts"
import { type FailureReason, KubeBenchNodeFailureReason } from "../../api/RunReason.ts"
import { Metrics } from "../../services/Metrics.ts"
import { OperatorConfig } from "../../services/OperatorConfig.ts"
import { KubeClient } from "../../services/kube/KubeClient.ts"
import type { KubeError } from "../../services/kube/KubeErrors.ts"
import type { KubeObject } from "../../services/kube/KubeObject.ts"
import { labelsToSelector } from "../../services/kube/LabelSelector.ts"
import { watchResource, type ListWatchEvent } from "../../services/kube/ListWatch.ts"
import { Resources, type ResourceType } from "../../services/kube/Resources.ts"
import { retryTransient } from "../../services/kube/Retry.ts"
import { type ScanReport, type ScanRequest, type Scanner, ScanFailed } from "../Scanner.ts"
import { loadSeverityTable, type SeverityTable } from "./KubeBenchSeverities.ts"
import { checksFromReports, type NodeReport } from "./KubeBenchChecks.ts"
import {
  kubeBenchContainerName,
  kubeBenchJob,
  kubeBenchJobName,
  kubeBenchLabelKeys,
  kubeBenchRunSelector,
  labelValue,
  pinnedBenchmark,
  type RunIdentity,
  runIdentityOf
} from "./KubeBenchJob.ts"
import { loadBenchmarkRoots, mountsFor } from "./KubeBenchHostPaths.ts"
import { observeJob } from "./KubeBenchJobState.ts"
import { splitJobLog, stderrTail } from "./KubeBenchLog.ts"
import { loadKubeBenchMapping } from "./KubeBenchMapping.ts"
import { benchmarkFor, detectPlatform } from "./KubeBenchPlatform.ts"
import { type KubeBenchReport, parseKubeBenchReport, parseLimits } from "./KubeBenchReport.ts"

export interface KubeBenchScannerOptions {
  /** Pod log read limit (default: the parser's own 20 MiB limit). */
  readonly logLimitBytes?: number
  /** Severity table (default: the shipped kube-bench-severities.yaml). */
  readonly severities?: SeverityTable
  /** Bound on deleting a run's Jobs at the end, so a hung API cannot hold the run (default 30 s). */
  readonly cleanupTimeout?: Duration.Input
}

/** Why one node has no report; `reason` goes to status.nodes[].reason. */
export class NodeScanFailure extends Schema.TaggedError<NodeScanFailure>()("NodeScanFailure", {
  reason: KubeBenchNodeFailureReason,
  message: Schema.String
}) {}

type NodeResult =
  | { readonly _tag: "Succeeded"; readonly node: string; readonly benchmark: string; readonly report: KubeBenchReport }
  | { readonly _tag: "Failed"; readonly node: string; readonly reason: KubeBenchNodeFailureReason; readonly message: string }

/** A node's progress in status.nodes (its identity fields stay as they are). */
type NodeProgress = Pick<NodeScanStatus, "phase" | "reason" | "message">

/** The run's Jobs and Pods by name, as its watches last saw them. */
interface RunObjects {
  readonly jobs: ReadonlyMap<string, KubeObject>
  readonly pods: ReadonlyMap<string, KubeObject>
  /** The first list of each kind is in: a Job missing from `jobs` then is really missing. */
  readonly jobsSynced: boolean
  readonly podsSynced: boolean
}

const emptyRunObjects: RunObjects = { jobs: new Map(), pods: new Map(), jobsSynced: false, podsSynced: false }

const applyEvent = (current: RunObjects, kind: "jobs" | "pods", event: ListWatchEvent): RunObjects => {
  if (event.type === "SYNCED") return kind === "jobs" ? { ...current, jobsSynced: true } : { ...current, podsSynced: true }
  const next = new Map(current[kind])
  if (event.type === "DELETED") next.delete(event.object.metadata.name)
  else next.set(event.object.metadata.name, event.object)
  return { ...current, [kind]: next }
}

/** How many times a Job that vanished while being watched is created again. */
const maxRecreations = 2

const describe = (error: KubeError): string => `${error._tag}: ${error.message}`

/** Nodes kube-bench can run on: Linux, or no OS label at all (simulated and kwok nodes). */
const isLinux = (node: KubeObject): boolean => {
  const os = node.metadata.labels?.["kubernetes.io/os"]
  return os === undefined || os === "linux"
}

const makeKubeBenchScanner = (options: KubeBenchScannerOptions) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const config = yield* OperatorConfig
    const metrics = yield* Metrics
    const severities = options.severities ?? (yield* loadSeverityTable)
    const mapping = loadKubeBenchMapping()
    const benchmarkRoots = loadBenchmarkRoots()
    const logLimitBytes = options.logLimitBytes ?? parseLimits.maxReportBytes
    const cleanupTimeout = options.cleanupTimeout ?? "30 seconds"
    const namespace = config.jobNamespace

    const nodeScans = metrics.counter({
      name: "ugallu_compliance_scan_kube_bench_node_scans_total",
      help: "kube-bench node scans that ended, by outcome (succeeded or failed) and failure reason.",
      labelNames: ["outcome", "reason"]
    })

    const listNodes = (selector: Readonly<Record<string, string>> | undefined) =>
      Effect.gen(function*() {
        const nodes: Array<KubeObject> = []
        let token: string | undefined
        do {
          const page = yield* retryTransient(
            kube.list(Resources.Node, {
              labelSelector: labelsToSelector(selector),
              limit: 500,
              ...(token === undefined ? {} : { continue: token })
            })
          )
          nodes.push(...page.items)
          token = page.continue || undefined
        } while (token !== undefined)
        return nodes
          .filter((node) => isLinux(node) && node.metadata.deletionTimestamp === undefined)
          .sort((left, right) => (left.metadata.name < right.metadata.name ? -1 : left.metadata.name > right.metadata.name ? 1 : 0))
      }).pipe(
        Effect.mapError((error) =>
          new ScanFailed({ reason: "NodeListFailed", message: `Cannot list the Nodes to scan: ${describe(error)}` })
        )
      )

    /**
     * Deletes the run's Jobs: those carrying its uid label and those it started. Never
     * fails. When the list fails, every name the run could have used is deleted instead
     * (a create interrupted in flight may have left a Job nobody saw).
     */
    const deleteJobs = (identity: RunIdentity, started: Ref.Ref<ReadonlySet<string>>, allNames: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const labelled = yield* kube.list(Resources.Job, { namespace, labelSelector: kubeBenchRunSelector(identity) }).pipe(
          Effect.map((list) => list.items.map((job) => job.metadata.name)),
          Effect.catch((error) =>
            Effect.logWarning(`Listing the run's kube-bench Jobs failed (${describe(error)}); deleting them by name`).pipe(
              Effect.as(allNames)
            )
          )
        )
        yield* Effect.forEach(
          [...new Set([...(yield* Ref.get(started)), ...labelled])],
          (name) =>
            retryTransient(kube.delete(Resources.Job, namespace, name, { propagationPolicy: "Background" }), 3).pipe(
              Effect.catchTag("NotFound", () => Effect.void),
              Effect.catch((error) => Effect.logWarning(`Deleting kube-bench Job ${namespace}/${name} failed: ${describe(error)}`))
            ),
          { concurrency: 10, discard: true }
        )
      }).pipe(
        Effect.timeoutOption(cleanupTimeout),
        Effect.flatMap((done) =>
          done._tag === "None"
            ? Effect.logWarning(`Deleting the run's kube-bench Jobs did not finish within ${Duration.format(Duration.fromInputUnsafe(cleanupTimeout))}; ttlSecondsAfterFinished removes them later`)
            : Effect.void
        )
      )

    /**
     * status.nodes in node order. A change replaces one entry in place (O(1), whatever the
     * node count) and tells the reconciler, which reads a copy of the list only when it writes.
     */
    const makeProgress = (initial: ReadonlyArray<NodeScanStatus>, report: ScanRequest["reportProgress"]) =>
      Effect.sync(() => {
        const entries = [...initial]
        const positions = new Map(entries.map((entry, index) => [entry.name, index]))
        const current = Effect.sync(() => ({ nodes: entries.slice() }))
        const set = (node: string, change: NodeProgress) =>
          Effect.suspend(() => {
            const index = positions.get(node)
            const entry = index === undefined ? undefined : entries[index]
            if (index === undefined || entry === undefined) return Effect.void
            if (entry.phase === change.phase && entry.reason === change.reason && entry.message === change.message) return Effect.void
            // What the node is (platform, version, benchmark) stays; its progress is replaced.
            const { message: _message, phase: _phase, reason: _reason, ...identity } = entry
            entries[index] = { ...identity, ...change }
            return report(current)
          })
        return { set, current, get: Effect.map(current, (status) => status.nodes) }
      })

    const scan = (request: ScanRequest): Effect.Effect<ScanReport, ScanFailed, Scope.Scope> =>
      Effect.gen(function*() {
        const run = request.run
        const identity = runIdentityOf(run)
        const nodes = yield* listNodes(run.spec.targetNodeSelector)
        if (nodes.length === 0) {
          const selector = labelsToSelector(run.spec.targetNodeSelector)
          return yield* new ScanFailed({
            reason: "NoNodesMatched",
            message: selector === ""
              ? "The cluster has no Linux Node to scan."
              : `No Linux Node matches targetNodeSelector ${selector}.`
          })
        }
        const pinned = pinnedBenchmark(run.spec)
        const targets = nodes.map((object) => {
          const node = object.metadata.name
          const choice = benchmarkFor(detectPlatform(object), mapping)
          return {
            node,
            job: kubeBenchJobName(identity, node),
            choice,
            benchmark: pinned ?? (choice._tag === "Resolved" ? choice.benchmark : undefined)
          }
        })
        const started = yield* Ref.make<ReadonlySet<string>>(new Set())
        // Registered before any Job exists, so an interruption at any point cleans up.
        yield* Effect.addFinalizer(() => deleteJobs(identity, started, targets.map((target) => target.job)))

        const progress = yield* makeProgress(
          targets.map(({ benchmark, choice, job, node }): NodeScanStatus => ({
            name: node,
            job,
            phase: "Pending",
            platform: choice.detected.platform,
            ...(choice.detected.version === undefined ? {} : { version: choice.detected.version }),
            ...(benchmark === undefined ? {} : { benchmark })
          })),
          request.reportProgress
        )
        yield* request.reportProgress(progress.current)

        // One watch on the run's Jobs and one on their Pods (by the run's label), for every node.
        const objects = yield* SubscriptionRef.make(emptyRunObjects)
        const follow = (resource: ResourceType, kind: "jobs" | "pods") =>
          watchResource(resource, { namespace, labelSelector: kubeBenchRunSelector(identity) }).pipe(
            Stream.runForEach((event) => SubscriptionRef.update(objects, (current) => applyEvent(current, kind, event))),
            Effect.provideService(KubeClient, kube)
          )
        yield* Effect.forkScoped(follow(Resources.Job, "jobs"))
        yield* Effect.forkScoped(follow(Resources.Pod, "pods"))

        const concurrency = run.spec.kubeBench?.maxConcurrentNodes ?? specDefaults.maxConcurrentNodes
        const results = yield* Effect.forEach(
          targets,
          ({ benchmark, choice, job, node }) =>
            (benchmark === undefined
              ? Effect.fail(
                new NodeScanFailure({
                  reason: "BenchmarkUnsupported",
                  message: choice._tag === "Unsupported" ? choice.message : `no benchmark for node ${node}`
                })
              )
              : Effect.logDebug(pinned === undefined && choice._tag === "Resolved" ? choice.how : `benchmark ${benchmark} (pinned)`).pipe(
                Effect.andThen(
                  scanNode({ run, deadline: request.deadline, node, benchmark, jobName: job, setProgress: progress.set, started, objects })
                )
              )).pipe(
              Effect.map((report): NodeResult => ({ _tag: "Succeeded", node, benchmark: benchmark!, report })),
              Effect.catchTag("NodeScanFailure", (failure) =>
                Effect.succeed<NodeResult>({ _tag: "Failed", node, reason: failure.reason, message: failure.message })
              ),
              Effect.tap((result) =>
                Effect.sync(() =>
                  nodeScans.inc(
                    result._tag === "Succeeded"
                      ? { outcome: "succeeded", reason: "" }
                      : { outcome: "failed", reason: result.reason }
                  )
                ).pipe(
                  Effect.andThen(
                    progress.set(
                      node,
                      result._tag === "Succeeded"
                        ? { phase: "Succeeded" }
                        : { phase: "Failed", reason: result.reason, message: result.message }
                    )
                  )
                )
              ),
              Effect.annotateLogs({ node, job })
            ),
          { concurrency }
        )

        const reports: Array<NodeReport> = []
        const failures: Array<Extract<NodeResult, { _tag: "Failed" }>> = []
        for (const result of results) {
          if (result._tag === "Succeeded") reports.push({ node: result.node, benchmark: result.benchmark, report: result.report })
          else failures.push(result)
        }
        const checks = checksFromReports(reports, severities)
        const nodeStatuses = yield* progress.get
        const backendStatus = { nodes: nodeStatuses }
        if (failures.length === 0) return { checks, backendStatus }
        return { checks, backendStatus, failure: runFailure(failures, results.length) }
      }).pipe(
        Effect.annotateLogs({ backend: "kube-bench", run: `${request.run.metadata.namespace}/${request.run.metadata.name}` })
      )

    /** One node: start (or adopt) its Job, wait for it, read and parse the Pod's log. */
    const scanNode = (input: {
      readonly run: ComplianceScanRun
      readonly deadline: number
      readonly node: string
      readonly benchmark: string
      readonly jobName: string
      readonly setProgress: (node: string, change: NodeProgress) => Effect.Effect<void>
      /** Names of the Jobs this scan created or adopted, for the cleanup. */
      readonly started: Ref.Ref<ReadonlySet<string>>
      /** The run's Jobs and Pods, kept current by one watch each. */
      readonly objects: SubscriptionRef.SubscriptionRef<RunObjects>
    }): Effect.Effect<KubeBenchReport, NodeScanFailure> =>
      Effect.gen(function*() {
        const { benchmark, deadline, jobName, node, run, setProgress } = input
        const identity = runIdentityOf(run)
        const startJob = Effect.gen(function*() {
          yield* Ref.update(input.started, (names) => new Set([...names, jobName]))
          const now = yield* Clock.currentTimeMillis
          const job = kubeBenchJob({
            run,
            nodeName: node,
            namespace,
            image: config.kubeBenchImage,
            benchmark,
            mounts: mountsFor(benchmark, benchmarkRoots),
            activeDeadlineSeconds: (deadline - now) / 1000
          })
          return yield* retryTransient(kube.create(Resources.Job, job)).pipe(
            Effect.catchTag("AlreadyExists", () =>
              // Started before a restart (or by the previous leader): watch that Job instead.
              retryTransient(kube.get(Resources.Job, namespace, jobName)).pipe(
                Effect.flatMap((existing) =>
                  existing.metadata.labels?.[kubeBenchLabelKeys.runUid] === labelValue(identity.uid)
                    ? Effect.logInfo(`kube-bench Job ${jobName} already exists; watching it`).pipe(Effect.as(existing))
                    : Effect.fail(
                      new NodeScanFailure({
                        reason: "JobCreateFailed",
                        message: `Job ${namespace}/${jobName} exists but belongs to another run`
                      })
                    )
                )
              )
            ),
            Effect.mapError((error) =>
              error._tag === "NodeScanFailure"
                ? error
                : new NodeScanFailure({
                  reason: "JobCreateFailed",
                  message: `Cannot create Job ${namespace}/${jobName}: ${describe(error)}`
                })
            )
          )
        })

        yield* startJob
        let recreations = 0
        let seen = false
        let podSeen = false

        /** One look at the Job and its Pods as the run's watches last saw them: the report when done, undefined to wait for the next change. */
        const look = (current: RunObjects): Effect.Effect<KubeBenchReport | undefined, NodeScanFailure> =>
          Effect.gen(function*() {
            if (!current.jobsSynced || !current.podsSynced) return undefined
            const job = current.jobs.get(jobName)
            if (job === undefined) {
              // Not there yet (the watch is behind the create), or deleted while it ran.
              if (!seen) return undefined
              if (recreations >= maxRecreations) {
                return yield* new NodeScanFailure({ reason: "JobFailed", message: `Job ${namespace}/${jobName} was deleted while it ran` })
              }
              recreations++
              seen = false
              yield* Effect.logWarning(`Job ${jobName} disappeared; creating it again`)
              yield* startJob
              return undefined
            }
            seen = true
            const pods = [...current.pods.values()].filter((pod) => pod.metadata.labels?.["job-name"] === jobName)
            if (pods.length > 0) podSeen = true
            const observation = observeJob(job, pods)
            // The two watches are not ordered with each other: a Job can say Complete before
            // its Pod's last change arrives. Only a Pod seen and then deleted is really gone.
            const status = job["status"] as { succeeded?: number; conditions?: ReadonlyArray<{ type?: string; status?: string }> } | undefined
            const complete = (status?.succeeded ?? 0) > 0 || (status?.conditions ?? []).some((condition) => condition.type === "Complete" && condition.status === "True")
            if (observation._tag === "Failed" && observation.podName === undefined && complete && (!podSeen || pods.length > 0)) {
              return undefined
            }
            switch (observation._tag) {
              case "Pending":
                return undefined
              case "Running":
                yield* setProgress(node, { phase: "Running" })
                return undefined
              case "Failed": {
                const said = observation.podName === undefined ? "" : yield* kubeBenchSaid(observation.podName)
                return yield* new NodeScanFailure({ reason: observation.reason, message: `${observation.message}${said}` })
              }
              case "Succeeded":
                return yield* readReport(observation.podName)
            }
          })

        // Every change the run's two watches see wakes this node up; nothing is polled.
        const report = yield* SubscriptionRef.changes(input.objects).pipe(
          Stream.mapEffect(look),
          Stream.filter((found): found is KubeBenchReport => found !== undefined),
          Stream.runHead
        )
        if (report._tag === "Some") return report.value
        return yield* new NodeScanFailure({ reason: "JobWatchFailed", message: `The watch on Job ${namespace}/${jobName} ended` })
      })

    const readReport = (podName: string) =>
      retryTransient(kube.podLogs(namespace, podName, { container: kubeBenchContainerName, limitBytes: logLimitBytes }), 5).pipe(
        Effect.mapError((error) =>
          new NodeScanFailure({
            reason: "LogReadFailed",
            message: `Cannot read the log of Pod ${namespace}/${podName}: ${describe(error)}`
          })
        ),
        Effect.flatMap((log) => {
          const { exitCode, report, stderr } = splitJobLog(log)
          if (exitCode !== undefined && exitCode !== 0) {
            return Effect.fail(
              new NodeScanFailure({
                reason: "JobFailed",
                message: `kube-bench in Pod ${namespace}/${podName} exited with code ${exitCode}${saidOf(stderr)}`
              })
            )
          }
          return Result.match(parseKubeBenchReport(report), {
            onSuccess: Effect.succeed,
            onFailure: (error) => {
              const cut = Buffer.byteLength(log, "utf8") >= logLimitBytes
                ? ` (the log reached the read limit of ${logLimitBytes} bytes and was cut)`
                : ""
              return Effect.fail(
                new NodeScanFailure({
                  reason: "ReportParseError",
                  message: `The log of Pod ${namespace}/${podName} is not a kube-bench report: ${error.message}${cut}${saidOf(stderr)}`
                })
              )
            }
          })
        })
      )

    /** `; kube-bench said: <last stderr lines>`, or "" when it said nothing. */
    const saidOf = (stderr: string): string => {
      const tail = stderrTail(stderr)
      return tail === "" ? "" : `; kube-bench said: ${tail}`
    }

    /** What a failed Pod's kube-bench printed on stderr (best effort: a failure stays a failure without it). */
    const kubeBenchSaid = (podName: string): Effect.Effect<string> =>
      kube.podLogs(namespace, podName, { container: kubeBenchContainerName, limitBytes: 256 * 1024 }).pipe(
        Effect.map((log) => saidOf(splitJobLog(log).stderr || log)),
        Effect.timeoutOption("10 seconds"),
        Effect.map((said) => (said._tag === "Some" ? said.value : "")),
        Effect.catch(() => Effect.succeed(""))
      )

    const scanner: Scanner = { name: "kube-bench", scan }
    return scanner
  })

/**
 * The run's failure when nodes failed. Every selected node failing for the same reason
 * (say every Pod stuck in ImagePullBackOff) makes that the run's reason, since it is the
 * actionable one (a single-node run fails `ImagePullFailed`, as api.md promises); any
 * other mix is `NodeScanFailed`. Per-node reasons are always in status.nodes.
 */
export const runFailure = (
  failures: ReadonlyArray<{ readonly node: string; readonly reason: KubeBenchNodeFailureReason; readonly message: string }>,
  nodeCount: number
): { readonly reason: FailureReason; readonly message: string } => {
  const reasons = new Set(failures.map((failure) => failure.reason))
  const reason: FailureReason = failures.length === nodeCount && reasons.size === 1 ? failures[0]!.reason : "NodeScanFailed"
  const shown = failures.slice(0, 5).map((failure) => `${failure.node}: ${failure.reason}: ${failure.message}`)
  const more = failures.length > shown.length ? `; and ${failures.length - shown.length} more` : ""
  const message = `kube-bench failed on ${failures.length} of ${nodeCount} node${nodeCount === 1 ? "" : "s"}: ${shown.join("; ")}${more}`
  return { reason, message: message.length > 2000 ? `${message.slice(0, 2000)}...` : message }
}

/**
 * The kube-bench backend: one Job per selected node in the job namespace, at most
 * `spec.kubeBench.maxConcurrentNodes` at once, each Pod's log parsed into checks.
 */
export class KubeBenchScanner extends Context.Service<KubeBenchScanner, Scanner>()(
  "compliance-scan/backends/kube-bench/KubeBenchScanner"
) {
  static readonly layer = (options: KubeBenchScannerOptions = {}) =>
    Layer.effect(KubeBenchScanner, makeKubeBenchScanner(options))
}
