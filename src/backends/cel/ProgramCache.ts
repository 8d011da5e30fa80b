import type { CelCompileResult, CelEngine, CelResultType } from "./CelEngine.ts"
import { LruCache } from "./LruCache.ts"

/**
 * Compiled programs kept across runs, keyed by expression text (parsing costs 10-50x an
 * evaluation, and the same rules come back run after run). Bounded: least recently used
 * programs are dropped. Only successes are kept; a failing expression is compiled again so
 * its error is always reported.
 */
export class ProgramCache {
  readonly engine: CelEngine
  readonly #programs: LruCache<string, CelCompileResult>
  #hits = 0
  #misses = 0

  constructor(engine: CelEngine, capacity: number) {
    this.engine = engine
    this.#programs = new LruCache(capacity)
  }

  get hits(): number {
    return this.#hits
  }

  get misses(): number {
    return this.#misses
  }

  get size(): number {
    return this.#programs.size
  }

  compile(expression: string, resultType: CelResultType): CelCompileResult {
    const key = `${resultType}\u0000${expression}`
    const cached = this.#programs.get(key)
    if (cached !== undefined) {
      this.#hits++
      return cached
    }
    this.#misses++
    const compiled = this.engine.compile(expression, resultType)
    if (compiled._tag === "Compiled") this.#programs.set(key, compiled)
    return compiled
  }
}
