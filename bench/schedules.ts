// bench/schedules: 1,000 ComplianceScanSchedules (`* * * * *`, with jitter) firing in the same
// minute on the simulated cluster, with an instant scanner. Waits for the next minute that
// is at least 20 s away (so that creating the schedules is over), then watches that minute.
// Prints the scheduled runs created, runs/s, how late each run was created after its
// planned start (scheduled time + its jitter offset), and API requests per scheduled run:
// those of the schedule controller alone and of everything (the runs' own reconciles too).
//   npx node bench/schedules.ts [schedules] [jitter]
import { Effect, Layer, References, Stream } from "effect"
import { scheduledTimeAnnotation } from "../src/api/ComplianceScanSchedule.ts"
import { type ScanReport, Scanners, scannersOf } from "../src/backends/Scanner.ts"
import { operatorLayer, runOperator } from "../src/Operator.ts"
import { jitterOffsetMillis, scheduledRunName } from "../src/schedules/ScheduleRuns.ts"
import { KubeClient } from "../src/services/kube/KubeClient.ts"
import { Resources } from "../src/services/kube/Resources.ts"
import { SimulatedCluster } from "../sim/cluster/SimulatedCluster.ts"
import { Metrics } from "../src/services/Metrics.ts"
import { OperatorConfig } from "../src/services/OperatorConfig.ts"
import { parseDurationMillis } from "../src/api/Duration.ts"

const scheduleCount = Number(process.argv[2] ?? 1000)
const jitter = process.argv[3] ?? "30s"
const namespace = "bench"

const instant: ScanReport = { checks: [{ checkID: "bench.pass", title: "a pass", outcome: "pass", severity: "low" }] }

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

/** Every call, by `verb resource[/subresource]`, and when each run create landed. */
const calls = new Map<string, number>()
const runCreatedAt = new Map<string, number>()
let counting = false
const count = (key: string) => {
  if (counting) calls.set(key, (calls.get(key) ?? 0) + 1)
}

const countingClient = Layer.effect(
  KubeClient,
  Effect.gen(function*() {
    const kube = yield* KubeClient
    return KubeClient.of({
      ...kube,
      get: (resource, ns, name) => Effect.suspend(() => (count(`get ${resource.plural}`), kube.get(resource, ns, name))),
      list: (resource, options) => Effect.suspend(() => (count(`list ${resource.plural}`), kube.list(resource, options))),
      create: (resource, object) =>
        Effect.suspend(() => {
          count(`create ${resource.plural}`)
          return kube.create(resource, object).pipe(
            Effect.tap(() => Effect.sync(() => {
              if (resource === Resources.ComplianceScanRun) runCreatedAt.set(object.metadata.name, Date.now())
            }))
          )
        }),
      replace: (resource, object) => Effect.suspend(() => (count(`update ${resource.plural}`), kube.replace(resource, object))),
      patch: (resource, ns, name, patch, options) =>
        Effect.suspend(() => (count(`patch ${resource.plural}${options?.subresource === undefined ? "" : "/status"}`), kube.patch(resource, ns, name, patch, options))),
      delete: (resource, ns, name, options) => Effect.suspend(() => (count(`delete ${resource.plural}`), kube.delete(resource, ns, name, options))),
      watch: (resource, options) => Stream.suspend(() => (count(`watch ${resource.plural}`), kube.watch(resource, options)))
    })
  })
)

const program = Effect.gen(function*() {
  const kube = yield* KubeClient
  yield* Effect.forkChild(runOperator)
  for (let i = 0; i < scheduleCount; i++) {
    yield* kube.create(Resources.ComplianceScanSchedule, {
      apiVersion: "security.ugallu.io/v1alpha1",
      kind: "ComplianceScanSchedule",
      metadata: { name: `fleet-${i}`, namespace },
      spec: { schedule: "* * * * *", jitter, successfulRunsHistoryLimit: 1, runTemplate: { backend: "cel" } }
    })
  }
  const now = Date.now()
  let fireAt = Math.ceil(now / 60_000) * 60_000
  if (fireAt - now < 20_000) fireAt += 60_000
  console.log(`${scheduleCount} schedules created; they fire at ${new Date(fireAt).toISOString()} (in ${((fireAt - now) / 1000).toFixed(0)} s)`)
  // Counting starts a little before the minute, once the schedules' first passes are over.
  yield* Effect.sleep(Math.max(0, fireAt - Date.now() - 2_000))
  counting = true
  const jitterMillis = Math.min(parseDurationMillis(jitter) ?? 0, 30_000)
  const windowEnd = fireAt + jitterMillis + 15_000
  const names = Array.from({ length: scheduleCount }, (_, i) => `fleet-${i}`)
  while (Date.now() < windowEnd && !names.every((name) => runCreatedAt.has(scheduledRunName(name, fireAt)))) yield* Effect.sleep(250)
  // Let the last runs' reconciles finish before the counts are read.
  yield* Effect.sleep(5_000)
  counting = false

  const created = names.filter((name) => runCreatedAt.has(scheduledRunName(name, fireAt)))
  const times = created.map((name) => runCreatedAt.get(scheduledRunName(name, fireAt))!).sort((a, b) => a - b)
  const lateness = created
    .map((name) => runCreatedAt.get(scheduledRunName(name, fireAt))! - (fireAt + jitterOffsetMillis(namespace, name, jitterMillis)))
    .sort((a, b) => a - b)
  const perSecond = new Map<number, number>()
  for (const time of times) perSecond.set(Math.floor((time - fireAt) / 1000), (perSecond.get(Math.floor((time - fireAt) / 1000)) ?? 0) + 1)
  const spread = (times.at(-1)! - times[0]!) / 1000
  const total = [...calls.values()].reduce((sum, n) => sum + n, 0)
  const schedulerCalls = [...calls.entries()].filter(([key]) =>
    key.includes("compliancescanschedules") || key === "create compliancescanruns" || key === "delete compliancescanruns"
  )
  const schedulerTotal = schedulerCalls.reduce((sum, [, n]) => sum + n, 0)
  const annotated = (yield* kube.list(Resources.ComplianceScanRun, { namespace })).items
    .filter((run) => run.metadata.annotations?.[scheduledTimeAnnotation] === new Date(fireAt).toISOString())
  console.log(`schedules                         ${scheduleCount} (* * * * *, jitter ${jitter})`)
  console.log(`scheduled runs created            ${created.length} (${annotated.length} in the API with that scheduled time)`)
  console.log(`first .. last run created         +${((times[0]! - fireAt) / 1000).toFixed(2)} s .. +${((times.at(-1)! - fireAt) / 1000).toFixed(2)} s after the minute`)
  console.log(`runs/s over the spread            ${(created.length / Math.max(spread, 0.001)).toFixed(0)} (peak ${Math.max(...perSecond.values())} in one second)`)
  console.log(`created after planned start p50   ${percentile(lateness, 0.5)} ms`)
  console.log(`created after planned start p99   ${percentile(lateness, 0.99)} ms (max ${lateness.at(-1)} ms)`)
  console.log(`schedule-controller requests/run  ${(schedulerTotal / created.length).toFixed(2)} (${schedulerCalls.map(([key, n]) => `${key} ${n}`).join(", ")})`)
  console.log(`all API requests/run              ${(total / created.length).toFixed(2)} (runs reconciled too, history pruned)`)
  console.log(`peak RSS                          ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
})

const simulated = SimulatedCluster.layer({
  objects: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }],
  historySize: 100_000
})
const layer = operatorLayer(Layer.succeed(Scanners, scannersOf([{ name: "cel", scan: () => Effect.succeed(instant) }]))).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      countingClient.pipe(Layer.provide(simulated)),
      Metrics.layerTest,
      OperatorConfig.layer({ leaderElect: false, maxConcurrentRuns: 50 })
    )
  )
)

// Logs off: the bench measures the scheduler, not the console.
await Effect.runPromise(
  Effect.scoped(program).pipe(Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Error"))
)
