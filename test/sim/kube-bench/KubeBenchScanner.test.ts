import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Ref, Schedule } from "effect"
import type { Check } from "../../../src/api/Check.ts"
import { kubeBenchDemoExecutor } from "../../../sim/kube-bench/KubeBenchDemoExecutor.ts"
import { kubeBenchJob, kubeBenchJobName, runIdentityOf } from "../../../src/backends/kube-bench/KubeBenchJob.ts"
import { loadBenchmarkRoots, mountsFor } from "../../../src/backends/kube-bench/KubeBenchHostPaths.ts"
import { KubeBenchScanner } from "../../../src/backends/kube-bench/KubeBenchScanner.ts"
import { Metrics } from "../../../src/services/Metrics.ts"
import { KubeClient } from "../../../src/services/kube/KubeClient.ts"
import { Resources } from "../../../src/services/kube/Resources.ts"
import { type PodOutcome, SimulatedCluster } from "../../../sim/cluster/SimulatedCluster.ts"
import {
  eventually,
  jobNamespace,
  leftovers,
  node,
  nodeOf,
  reportWith,
  request,
  run,
  sampleReport,
  simulation
} from "./KubeBenchSimulation.ts"

const succeed = (log: string): PodOutcome => ({ _tag: "Succeeded", log })
const byId = (checks: ReadonlyArray<Check>, id: string) => checks.find((check) => check.checkID === id)

describe("kube-bench scanner on the simulated cluster", () => {
  it.live("fans out one Job per node, never more than maxConcurrentNodes at once, and merges the reports", () =>
    Effect.gen(function*() {
      const running = yield* Ref.make(0)
      const mostAtOnce = yield* Ref.make(0)
      const started = yield* Ref.make<ReadonlyArray<string>>([])
      const executor = ({ pod }: { pod: Parameters<typeof nodeOf>[0] }) =>
        Effect.gen(function*() {
          const now = yield* Ref.updateAndGet(running, (count) => count + 1)
          yield* Ref.update(mostAtOnce, (most) => Math.max(most, now))
          yield* Ref.update(started, (names) => [...names, nodeOf(pod)])
          // Works until the limit is reached (two Pods at once) or it is the last node: a
          // condition, not a fixed time, so the overlap the test counts always happens.
          yield* Effect.all([Ref.get(mostAtOnce), Ref.get(started)]).pipe(
            Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: ([most, names]) => most >= 2 || names.length === nodes.length }),
            Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(new Error("never two kube-bench Pods at once")) })
          )
          yield* Ref.update(running, (count) => count - 1)
          return succeed(nodeOf(pod) === "node-3" ? reportWith({ "1.1.1": "FAIL" }) : sampleReport)
        })
      const nodes = ["node-1", "node-2", "node-3", "node-4", "node-5"]
      yield* Effect.gen(function*() {
        const scanner = yield* KubeBenchScanner
        const scanRun = run({ kubeBench: { maxConcurrentNodes: 2 } })
        const { reports, scanRequest } = yield* request(scanRun)
        const report = yield* Effect.scoped(scanner.scan(scanRequest))

        expect([...(yield* Ref.get(started))].sort()).toEqual(nodes)
        expect(yield* Ref.get(mostAtOnce)).toBe(2)
        expect(report.failure).toBeUndefined()
        expect(report.backendStatus?.nodes).toEqual(
          nodes.map((name) => ({
            name,
            job: kubeBenchJobName(runIdentityOf(scanRun), name),
            phase: "Succeeded",
            // Not pinned: decided from each Node (kubelet v1.31.4, no platform marks).
            platform: "kubernetes",
            version: "1.31",
            benchmark: "cis-1.11"
          }))
        )
        expect(byId(report.checks, "cis.1.1.1")).toMatchObject({
          outcome: "fail",
          severity: "medium",
          subjectCounts: { pass: 4, fail: 1, warn: 0, skip: 0, error: 0 }
        })
        expect(byId(report.checks, "cis.1.1.1")!.subjects!.map((subject) => `${subject.name}=${subject.outcome}`)).toEqual([
          "node-1=pass", "node-2=pass", "node-3=fail", "node-4=pass", "node-5=pass"
        ])
        expect(report.checks).toHaveLength(9)

        // status.nodes: all Pending first, then one node after another, all Succeeded at the end.
        const progress = yield* reports
        const succeeded = progress.map((nodesNow) => nodesNow.filter((entry) => entry.phase === "Succeeded").length)
        expect(succeeded.filter((count, index) => count !== succeeded[index - 1])).toEqual([0, 1, 2, 3, 4, 5])
        expect(progress[0]!.every((entry) => entry.phase === "Pending")).toBe(true)
        // The scope closed: the run's Jobs and, through Background propagation, their Pods are gone.
        expect(yield* leftovers).toEqual({ jobs: [], pods: [] })
      }).pipe(Effect.provide(simulation({ nodes: nodes.map((name) => node(name)), executor })))
    }))

  describe("the operator decides the benchmark per node", () => {
    const platformNodes = [
      node("eks-1", { "eks.amazonaws.com/nodegroup": "ng" }, { kubeletVersion: "v1.31.4-eks-aeac579", providerID: "aws:///eu-west-1a/i-1" }),
      node("gke-1", { "cloud.google.com/gke-nodepool": "pool" }, { kubeletVersion: "v1.32.2-gke.1182003" }),
      node("k3s-1", {}, { kubeletVersion: "v1.26.15+k3s1" }),
      node("old-eks", {}, { kubeletVersion: "v1.14.10-eks-5ac0f1" })
    ]
    /** The `--benchmark` of each node's Job, as the executor saw it. */
    const recordArgs = (seen: Ref.Ref<Record<string, ReadonlyArray<string>>>) => ({ pod }: { pod: Parameters<typeof nodeOf>[0] }) =>
      Ref.update(seen, (all) => ({
        ...all,
        [nodeOf(pod)]: (pod["spec"] as { containers: Array<{ args: Array<string> }> }).containers[0]!.args
      })).pipe(Effect.as(succeed(sampleReport)))

    it.live("EKS, GKE and k3s nodes get their benchmarks; a platform version kube-bench has none for fails BenchmarkUnsupported without a Job", () =>
      Effect.gen(function*() {
        const seen = yield* Ref.make<Record<string, ReadonlyArray<string>>>({})
        yield* Effect.gen(function*() {
          const scanner = yield* KubeBenchScanner
          const { scanRequest } = yield* request(run())
          const report = yield* Effect.scoped(scanner.scan(scanRequest))
          const args = yield* Ref.get(seen)
          expect(Object.keys(args).sort()).toEqual(["eks-1", "gke-1", "k3s-1"])
          expect(args["eks-1"]).toEqual(["run", "--json", "--benchmark", "eks-1.7.0"])
          expect(args["gke-1"]).toEqual(["run", "--json", "--benchmark", "gke-1.9.0"])
          expect(args["k3s-1"]).toEqual(["run", "--json", "--benchmark", "k3s-cis-1.8"])
          const byNode = Object.fromEntries((report.backendStatus?.nodes ?? []).map((entry) => [entry.name, entry]))
          expect(byNode["eks-1"]).toMatchObject({ phase: "Succeeded", platform: "eks", version: "1.31", benchmark: "eks-1.7.0" })
          expect(byNode["gke-1"]).toMatchObject({ phase: "Succeeded", platform: "gke", version: "1.32", benchmark: "gke-1.9.0" })
          expect(byNode["k3s-1"]).toMatchObject({ phase: "Succeeded", platform: "k3s", version: "1.26", benchmark: "k3s-cis-1.8" })
          expect(byNode["old-eks"]).toEqual({
            name: "old-eks",
            job: kubeBenchJobName(runIdentityOf(run()), "old-eks"),
            phase: "Failed",
            platform: "eks",
            version: "1.14",
            reason: "BenchmarkUnsupported",
            message: expect.stringMatching(/^EKS 1\.14 \(kubeletVersion v1\.14\.10-eks-5ac0f1\): kube-bench has no benchmark for it; EKS benchmarks: eks-1\.0\.1 \(1\.15\+\).*Pin one with spec\.benchmark/)
          })
          expect(report.failure).toMatchObject({ reason: "NodeScanFailed", message: expect.stringContaining("old-eks: BenchmarkUnsupported") })
        }).pipe(Effect.provide(simulation({ nodes: platformNodes, executor: recordArgs(seen) })))
      }))

    it.live("a pinned spec.benchmark wins on every node; the detected platform is still recorded", () =>
      Effect.gen(function*() {
        const seen = yield* Ref.make<Record<string, ReadonlyArray<string>>>({})
        yield* Effect.gen(function*() {
          const scanner = yield* KubeBenchScanner
          const { scanRequest } = yield* request(run({ benchmark: "cis-1.10" }))
          const report = yield* Effect.scoped(scanner.scan(scanRequest))
          expect(Object.values(yield* Ref.get(seen)).map((args) => args[3])).toEqual(["cis-1.10", "cis-1.10", "cis-1.10", "cis-1.10"])
          expect(report.failure).toBeUndefined()
          expect((report.backendStatus?.nodes ?? []).map((entry) => [entry.name, entry.platform, entry.benchmark])).toEqual([
            ["eks-1", "eks", "cis-1.10"], ["gke-1", "gke", "cis-1.10"], ["k3s-1", "k3s", "cis-1.10"], ["old-eks", "eks", "cis-1.10"]
          ])
        }).pipe(Effect.provide(simulation({ nodes: platformNodes, executor: recordArgs(seen) })))
      }))
  })

  describe("a Job started before a restart is watched, never created twice", () => {
    const prepare = Effect.fnUntraced(function*(scanRun: ReturnType<typeof run>) {
      const kube = yield* KubeClient
      const job = kubeBenchJob({
        run: scanRun,
        nodeName: "cp-1",
        namespace: jobNamespace,
        image: "registry.example/kube-bench:test",
        benchmark: "cis-1.10",
        mounts: mountsFor("cis-1.10", loadBenchmarkRoots()),
        activeDeadlineSeconds: 600
      })
      return yield* kube.create(Resources.Job, job)
    })

    it.live("a Job that finished while the operator was away: its report is used", () =>
      Effect.gen(function*() {
        const calls = yield* Ref.make(0)
        yield* Effect.gen(function*() {
          const cluster = yield* SimulatedCluster
          const scanRun = run()
          // The previous process's Job ran kube-bench, which found 1.1.1 failing.
          yield* cluster.setJobExecutor(() => Ref.update(calls, (n) => n + 1).pipe(Effect.as(succeed(reportWith({ "1.1.1": "FAIL" })))))
          const existing = yield* prepare(scanRun)
          yield* eventually(
            cluster.objects(Resources.Pod, jobNamespace).pipe(
              Effect.map((pods) => pods.some((pod) => (pod["status"] as { phase?: string }).phase === "Succeeded"))
            )
          )
          // A second kube-bench Pod would now report everything passing.
          yield* cluster.setJobExecutor(() => Ref.update(calls, (n) => n + 1).pipe(Effect.as(succeed(reportWith({ "1.1.1": "PASS" })))))
          yield* cluster.resetRequestCounts

          const { scanRequest } = yield* request(scanRun)
          const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))

          expect(byId(report.checks, "cis.1.1.1")!.outcome).toBe("fail")
          expect(yield* Ref.get(calls)).toBe(1)
          expect((yield* cluster.requestCounts).create).toBe(1) // the one answered AlreadyExists
          expect(report.backendStatus?.nodes).toEqual([{
            name: "cp-1",
            job: existing.metadata.name,
            phase: "Succeeded",
            platform: "kubernetes",
            version: "1.31",
            benchmark: "cis-1.11"
          }])
        }).pipe(Effect.provide(simulation({ nodes: [node("cp-1")], executor: () => Effect.never })))
      }))

    it.live("a Job still running: the scan waits for it and reads its Pod", () =>
      Effect.gen(function*() {
        const calls = yield* Ref.make(0)
        const release = yield* Deferred.make<void>()
        const executor = () =>
          Ref.update(calls, (n) => n + 1).pipe(
            Effect.andThen(Deferred.await(release)),
            Effect.as(succeed(reportWith({ "4.2.1": "FAIL" })))
          )
        yield* Effect.gen(function*() {
          const scanRun = run()
          yield* prepare(scanRun)
          const { reports, scanRequest } = yield* request(scanRun)
          const scan = yield* Effect.forkChild(Effect.scoped((yield* KubeBenchScanner).scan(scanRequest)))
          // Let the scan find the existing Job (its Pod is still at work) before it finishes.
          yield* eventually(reports.pipe(Effect.map((progress) => progress.length > 0)))
          // ... and watch it: its watches on the run's Jobs and Pods are open.
          const cluster = yield* SimulatedCluster
          yield* eventually(Effect.map(cluster.openWatches, (open) => open >= 2))
          yield* Deferred.succeed(release, undefined)
          const report = yield* Fiber.join(scan)

          expect(byId(report.checks, "cis.4.2.1")).toMatchObject({ outcome: "fail", severity: "critical" })
          expect(yield* Ref.get(calls)).toBe(1)
          expect(yield* leftovers).toEqual({ jobs: [], pods: [] })
        }).pipe(Effect.provide(simulation({ nodes: [node("cp-1")], executor })))
      }))
  })

  describe("failures", () => {
    it.live("every Pod stuck pulling its image fails the run fast with ImagePullFailed", () =>
      Effect.gen(function*() {
        const executor = () =>
          Effect.succeed<PodOutcome>({
            _tag: "Waiting",
            reason: "ImagePullBackOff",
            message: "Back-off pulling image \"registry.example/kube-bench:test\""
          })
        yield* Effect.gen(function*() {
          const { scanRequest } = yield* request(run(), 10 * 60_000)
          const started = Date.now()
          const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))
          // Seconds at most, not the ten-minute timeout.
          expect(Date.now() - started).toBeLessThan(5_000)
          expect(report.failure).toEqual({
            reason: "ImagePullFailed",
            message: expect.stringMatching(/^kube-bench failed on 2 of 2 nodes: cp-1: ImagePullFailed: Pod kb-cis-cp-1-\w+-\w+ of Job kb-cis-cp-1-\w+ cannot start: ImagePullBackOff: Back-off pulling image/)
          })
          expect(report.checks).toEqual([])
          expect(report.backendStatus!.nodes!.map((entry) => [entry.name, entry.phase, entry.reason])).toEqual([
            ["cp-1", "Failed", "ImagePullFailed"],
            ["w-1", "Failed", "ImagePullFailed"]
          ])
          expect(yield* leftovers).toEqual({ jobs: [], pods: [] })
        }).pipe(Effect.provide(simulation({ nodes: [node("cp-1"), node("w-1")], executor })))
      }))

    it.live("one node failing makes the run NodeScanFailed and keeps the other nodes' checks", () =>
      Effect.gen(function*() {
        const executor = ({ pod }: { pod: Parameters<typeof nodeOf>[0] }) =>
          Effect.succeed<PodOutcome>(
            nodeOf(pod) === "w-1"
              ? { _tag: "Waiting", reason: "ErrImagePull", message: "manifest unknown" }
              : succeed(sampleReport)
          )
        yield* Effect.gen(function*() {
          const { scanRequest } = yield* request(run())
          const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))
          expect(report.failure?.reason).toBe("NodeScanFailed")
          expect(report.failure?.message).toMatch(/^kube-bench failed on 1 of 2 nodes: w-1: ImagePullFailed: .*ErrImagePull: manifest unknown/)
          expect(report.checks).toHaveLength(9)
          expect(byId(report.checks, "cis.1.1.1")!.subjects!.map((subject) => subject.name)).toEqual(["cp-1"])
          expect(report.backendStatus!.nodes!.map((entry) => [entry.name, entry.phase, entry.reason])).toEqual([
            ["cp-1", "Succeeded", undefined],
            ["w-1", "Failed", "ImagePullFailed"]
          ])
        }).pipe(Effect.provide(simulation({ nodes: [node("cp-1"), node("w-1")], executor })))
      }))

    it.live("an unparsable log is ReportParseError, a failed container JobFailed with its exit code; both counted", () =>
      Effect.gen(function*() {
        const executor = ({ pod }: { pod: Parameters<typeof nodeOf>[0] }) =>
          Effect.succeed<PodOutcome>(
            nodeOf(pod) === "a"
              ? succeed("I0101 12:00:00 kube-bench: unable to determine benchmark version\n")
              : { _tag: "Failed", exitCode: 3, reason: "Error", message: "config file not found" }
          )
        yield* Effect.gen(function*() {
          const { scanRequest } = yield* request(run())
          const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))
          expect(report.failure?.reason).toBe("NodeScanFailed")
          const [a, b] = report.backendStatus!.nodes!
          expect(a).toMatchObject({ name: "a", phase: "Failed", reason: "ReportParseError" })
          expect(a!.message).toMatch(/is not a kube-bench report: no JSON report found.*unable to determine benchmark version/)
          expect(b).toMatchObject({ name: "b", phase: "Failed", reason: "JobFailed" })
          expect(b!.message).toMatch(/exit code 3 \(Error\): config file not found/)
          const metrics = yield* (yield* Metrics).render
          expect(metrics.body).toContain(
            "ugallu_compliance_scan_kube_bench_node_scans_total{outcome=\"failed\",reason=\"ReportParseError\"} 1"
          )
          expect(metrics.body).toContain(
            "ugallu_compliance_scan_kube_bench_node_scans_total{outcome=\"failed\",reason=\"JobFailed\"} 1"
          )
        }).pipe(Effect.provide(simulation({ nodes: [node("a"), node("b")], executor })))
      }))

    it.live("a missing job namespace fails every node with JobCreateFailed, saying which namespace", () =>
      Effect.gen(function*() {
        const { scanRequest } = yield* request(run())
        const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))
        expect(report.failure?.reason).toBe("JobCreateFailed")
        expect(report.backendStatus!.nodes![0]!.message).toContain(`namespaces "${jobNamespace}" not found`)
      }).pipe(Effect.provide(simulation({ nodes: [node("a")], executor: () => Effect.never, withJobNamespace: false }))))
  })

  it.live("the run's timeout interrupts the scan, and its Jobs and their Pods are deleted", () =>
    Effect.gen(function*() {
      const started = yield* Ref.make(0)
      const executor = () => Ref.update(started, (n) => n + 1).pipe(Effect.andThen(Effect.never))
      yield* Effect.gen(function*() {
        const { reports, scanRequest } = yield* request(run())
        // What the reconciler does at the deadline.
        const outcome = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest)).pipe(
          Effect.timeoutOption("300 millis")
        )
        expect(Option.isNone(outcome)).toBe(true)
        expect(yield* Ref.get(started)).toBe(3)
        expect((yield* reports).at(-1)!.map((entry) => entry.phase)).toEqual(["Pending", "Pending", "Pending"])
        expect(yield* leftovers).toEqual({ jobs: [], pods: [] })
      }).pipe(Effect.provide(simulation({ nodes: [node("a"), node("b"), node("c")], executor })))
    }))

  it.live("rides out transient API errors (a third of all calls failing) and still scans every node once", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const executor = () => Ref.update(calls, (n) => n + 1).pipe(Effect.as(succeed(sampleReport)))
      yield* Effect.gen(function*() {
        const cluster = yield* SimulatedCluster
        yield* cluster.setFaults({ errorRate: 0.33, seed: 7 })
        const { scanRequest } = yield* request(run())
        const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))
        expect(report.failure).toBeUndefined()
        expect(report.backendStatus!.nodes!.map((entry) => `${entry.name}=${entry.phase}`)).toEqual(["a=Succeeded", "b=Succeeded", "c=Succeeded"])
        expect(byId(report.checks, "cis.1.1.12")).toMatchObject({ outcome: "fail", subjectCounts: { fail: 3 } })
        // The run's Jobs and Pods are watched (re-listed when a watch fails), never read one by one.
        const counts = yield* cluster.requestCounts
        expect(counts.watch).toBeGreaterThanOrEqual(2)
        expect(counts.get).toBe(0)
        // One kube-bench Pod per node: retried requests never started a second Job.
        expect(yield* Ref.get(calls)).toBe(3)
      }).pipe(Effect.provide(simulation({ nodes: [node("a"), node("b"), node("c")], executor })))
    }))

  describe("node selection", () => {
    const nodes = [
      node("cp-1", { "kubernetes.io/role": "master", "kubernetes.io/os": "linux" }),
      node("w-1", { "kubernetes.io/os": "linux" }),
      node("w-2"),
      node("win-1", { "kubernetes.io/os": "windows" })
    ]
    const scanned = (selector: Record<string, string> | undefined) =>
      Effect.gen(function*() {
        const { scanRequest } = yield* request(run(selector === undefined ? {} : { targetNodeSelector: selector }))
        const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))
        return report.backendStatus!.nodes!.map((entry) => entry.name)
      })

    it.live("targetNodeSelector picks the nodes; without one every Linux node is scanned", () =>
      Effect.gen(function*() {
        expect(yield* scanned({ "kubernetes.io/role": "master" })).toEqual(["cp-1"])
        expect(yield* scanned(undefined)).toEqual(["cp-1", "w-1", "w-2"])
      }).pipe(Effect.provide(simulation({ nodes, executor: () => Effect.succeed(succeed(sampleReport)) }))))

    it.live("no matching node fails the scan with NoNodesMatched and creates no Job", () =>
      Effect.gen(function*() {
        const failure = yield* Effect.flip(scanned({ pool: "gpu" }))
        expect(failure).toMatchObject({ _tag: "ScanFailed", reason: "NoNodesMatched", message: "No Linux Node matches targetNodeSelector pool=gpu." })
        expect((yield* (yield* SimulatedCluster).requestCounts).create).toBe(0)
      }).pipe(Effect.provide(simulation({ nodes, executor: () => Effect.succeed(succeed(sampleReport)) }))))
  })

  it.live("the demo executor serves saved reports as kube-bench Pod logs", () =>
    Effect.gen(function*() {
      const reports: Record<string, string> = { "cp-1": sampleReport, "w-1": reportWith({ "4.2.10": "PASS" }) }
      const executor = kubeBenchDemoExecutor((name) => reports[name], { duration: "10 millis" })
      yield* Effect.gen(function*() {
        const { scanRequest } = yield* request(run())
        const report = yield* Effect.scoped((yield* KubeBenchScanner).scan(scanRequest))
        expect(report.failure?.reason).toBe("NodeScanFailed") // "nodeless" has no report: it fails like kube-bench would
        expect(byId(report.checks, "cis.4.2.10")).toMatchObject({ outcome: "fail", subjectCounts: { pass: 1, fail: 1 } })
        expect(report.backendStatus!.nodes!.find((entry) => entry.name === "nodeless")!.message).toMatch(/no kube-bench report for node nodeless/)
      }).pipe(Effect.provide(simulation({ nodes: [node("cp-1"), node("w-1"), node("nodeless")], executor })))
    }))
})
