import { Clock, Context, Effect, Layer } from "effect"
import type { KubeClient } from "../../services/kube/KubeClient.ts"
import { ListAgain, MalformedObject, UnreadableEncoding } from "../../services/kube/KubeObject.ts"
import type { PageBudget } from "../../services/kube/ListWatch.ts"
import { Metrics } from "../../services/Metrics.ts"
import { type Scanner, ScanFailed, type ScanRequest } from "../Scanner.ts"
import { type CelEngineLimits, defaultCelEngineLimits, makeCelJsEngine } from "./CelJsEngine.ts"
import { CelCompileError, CelInventoryFailed, CelRuleSetInvalid } from "./CelErrors.ts"
import { scanInventory } from "./CelInventory.ts"
import { resolveRuleSet, runVariableReads, runVariables } from "./CelRuleSet.ts"
import type { CelTarget } from "./CelTarget.ts"
import { compileRules } from "./CompiledRule.ts"
import { type CostLimits, CostMeter, defaultCostLimits } from "./CostMeter.ts"
import { ProgramCache } from "./ProgramCache.ts"
import { maxSubjectsPerCheck, RuleTallies, type RulesOutcome } from "./RuleEvaluation.ts"
import { defaultPacksDirectory, loadRulePacks } from "./RulePacks.ts"

/**
 * The `cel` backend: user rules (`spec.cel.rules`) and built-in packs (`spec.profile`)
 * evaluated against the cluster's objects of the kinds the rules name. One check per rule; a rule that does
 * not compile fails the run (CELCompileError), an object a rule cannot evaluate becomes an
 * `error` subject, and a rule that exceeds the cost or time bounds fails the run
 * (CELCostExceeded / CELTimeout). Nothing is created in the cluster, so there is nothing to
 * clean up.
 *
 * The layer owns the engine, the compiled-program cache (kept across runs) and the packs,
 * which are loaded and compiled when it is built: a broken pack stops startup.
 */

export interface CelScannerOptions {
  readonly costLimits: CostLimits
  readonly engineLimits: CelEngineLimits
  /** Wall-clock bound of one run's evaluation (listing not counted); the run's own deadline also applies. */
  readonly maxEvaluationMillis: number
  /** Compiled programs kept across runs (least recently used dropped first). */
  readonly programCacheSize: number
  readonly maxSubjectsPerCheck: number
  /** Objects in the first list request of each kind. */
  readonly pageSize: number
  /** Later requests ask for as many objects as fit in the budget's bytes (ListWatch.nextPageLimit). */
  readonly pageBudget: PageBudget
  /** Evaluations between two yields to the other fibers. */
  readonly yieldEvery: number
  readonly packsDirectory: string
}

export const defaultCelScannerOptions: CelScannerOptions = {
  costLimits: defaultCostLimits,
  engineLimits: defaultCelEngineLimits,
  maxEvaluationMillis: 60_000,
  programCacheSize: 1_000,
  maxSubjectsPerCheck,
  pageSize: 500,
  // Pods of 2-4 KB reach the cap; objects of 100 KB get pages of about 80.
  pageBudget: { bytes: 8 * 2 ** 20, maxLimit: 2_000 },
  yieldEvery: 2_000,
  packsDirectory: defaultPacksDirectory
}

export class CelScanner extends Context.Service<
  CelScanner,
  Scanner & {
    /** Names of the built-in packs `spec.profile` accepts. */
    readonly profiles: ReadonlyArray<string>
  }
>()("compliance-scan/backends/cel/CelScanner") {
  private static readonly make = (overrides: Partial<CelScannerOptions>): Effect.Effect<CelScanner["Service"], never, KubeClient | Metrics> =>
    Effect.gen(function*() {
      const options: CelScannerOptions = { ...defaultCelScannerOptions, ...overrides }
      const metrics = yield* Metrics
      const evaluationsTotal = metrics.counter({
        name: "ugallu_compliance_scan_cel_evaluations_total",
        help: "CEL expression evaluations (rules and messages) against objects."
      })
      const cacheRequests = metrics.counter({
        name: "ugallu_compliance_scan_cel_program_cache_requests_total",
        help: "Lookups of compiled CEL programs, by result (hit or miss).",
        labelNames: ["result"]
      })
      const engine = makeCelJsEngine(options.engineLimits)
      const cache = new ProgramCache(engine, options.programCacheSize)
      const compile = cache.compile.bind(cache)
      const packs = yield* loadRulePacks(options.packsDirectory, compile).pipe(
        Effect.catch((error) => Effect.die(new Error(`built-in CEL rule pack "${error.pack}" is broken: ${error.message}`)))
      )
      const kube = yield* Effect.context<KubeClient>()

      const recordCache = (hitsBefore: number, missesBefore: number) => {
        cacheRequests.inc({ result: "hit" }, cache.hits - hitsBefore)
        cacheRequests.inc({ result: "miss" }, cache.misses - missesBefore)
      }

      const scan = Effect.fn("CelScanner.scan")(function*(request: ScanRequest) {
        const spec = request.run.spec
        const ruleSet = resolveRuleSet(packs, spec.profile, spec.cel?.rules ?? [])
        if (ruleSet instanceof CelRuleSetInvalid) return yield* ScanFailed.from(ruleSet)
        const [hits, misses] = [cache.hits, cache.misses]
        const rules = compileRules(compile, ruleSet)
        recordCache(hits, misses)
        if (rules instanceof CelCompileError) return yield* ScanFailed.from(rules)

        const clock = yield* Clock.Clock
        const now = () => clock.currentTimeMillisUnsafe()
        // The time bound counts evaluation only, not the time pages take to arrive (a large
        // cluster's list is the API server's work); the run's own deadline bounds both.
        const started = now()
        let evaluatedMillis = 0
        let evaluatingSince: number | undefined
        const evaluationClock = () => {
          const wall = now()
          if (wall > request.deadline) return Number.POSITIVE_INFINITY
          return started + evaluatedMillis + (evaluatingSince === undefined ? 0 : wall - evaluatingSince)
        }
        const meter = new CostMeter(options.costLimits, { start: started, millis: options.maxEvaluationMillis }, evaluationClock)
        const variables = runVariables(packs, spec.profile, compile)
        const tallies = new RuleTallies(engine, rules, meter, { maxSubjects: options.maxSubjectsPerCheck, yieldEvery: options.yieldEvery, variables })
        /** Evaluates one page, letting other fibers run (lease renewal, probes) and the run's deadline interrupt us. */
        const consume = (targets: Iterable<CelTarget>) =>
          Effect.gen(function*() {
            const steps = tallies.evaluate(targets)
            /**
             * One stretch of evaluation. An object of the page that cannot be read fails the
             * scan (malformed JSON from the server), or lists the kind again (a page in protobuf
             * with what this build does not know: the client reads it as JSON from then on).
             */
            const step = (): IteratorResult<void, boolean> | CelInventoryFailed | ListAgain => {
              evaluatingSince = now()
              try {
                return steps.next()
              } catch (error) {
                if (error instanceof MalformedObject) return new CelInventoryFailed({ message: error.message })
                if (error instanceof UnreadableEncoding) return new ListAgain({ message: error.message })
                throw error
              } finally {
                evaluatedMillis += now() - evaluatingSince
                evaluatingSince = undefined
              }
            }
            let next = step()
            while (!(next instanceof CelInventoryFailed) && !(next instanceof ListAgain) && next.done !== true) {
              yield* Effect.yieldNow
              next = step()
            }
            if (next instanceof CelInventoryFailed || next instanceof ListAgain) return yield* next
            if (tallies.exceeded !== undefined) return yield* tallies.exceeded
          })
        const statistics = yield* scanInventory(rules, engine.fromJson, {
          pageSize: options.pageSize,
          pageBudget: options.pageBudget,
          deadline: request.deadline,
          variableReads: runVariableReads(packs, spec.profile)
        }, {
          consume,
          refuse: (kind, reason) => tallies.refuse(kind, reason),
          mark: () => tallies.mark(),
          rewind: (mark) => tallies.rewind(mark)
        }).pipe(
          // Only after the list started over several times (ListWatch.maxListRestarts).
          Effect.catchTag("ListAgain", (error) => Effect.fail(new CelInventoryFailed({ message: error.message }))),
          Effect.mapError(ScanFailed.from),
          Effect.provide(kube)
        )
        const outcome: RulesOutcome = tallies.outcome()
        evaluationsTotal.inc(outcome.evaluations)
        yield* Effect.logDebug("CEL scan evaluated").pipe(
          Effect.annotateLogs({
            rules: rules.length,
            ...statistics,
            evaluations: outcome.evaluations,
            costUnits: meter.used
          })
        )
        if (outcome._tag === "Exceeded") return yield* ScanFailed.from(outcome.error)
        return { checks: outcome.checks }
      })

      return CelScanner.of({
        name: "cel",
        profiles: [...packs.keys()].sort(),
        scan
      })
    })

  /** The scanner: default limits and the built-in packs, or some options changed (tests, benchmarks). */
  static readonly layer = (overrides: Partial<CelScannerOptions> = {}): Layer.Layer<CelScanner, never, KubeClient | Metrics> =>
    Layer.effect(CelScanner, CelScanner.make(overrides))
}
