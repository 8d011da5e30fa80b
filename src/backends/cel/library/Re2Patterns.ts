import { RE2JS } from "re2js"
import { LruCache } from "../LruCache.ts"

/**
 * Regular expressions with RE2 syntax and linear-time matching (re2js), as Kubernetes CEL
 * has them: a backtracking JavaScript RegExp could be made to run for hours by one pattern.
 * Patterns are compiled once and kept in a bounded cache per engine.
 */
export class Re2SyntaxError extends Error {}

const patternCacheSize = 512

export class Re2Patterns {
  readonly #cache = new LruCache<string, RE2JS | Re2SyntaxError>(patternCacheSize)

  /** The RE2 syntax problem of a pattern, or undefined when it is valid. */
  validate(pattern: string): string | undefined {
    const compiled = this.#compile(pattern)
    return compiled instanceof Re2SyntaxError ? compiled.message : undefined
  }

  compile(pattern: string): RE2JS {
    const compiled = this.#compile(pattern)
    if (compiled instanceof Re2SyntaxError) throw compiled
    return compiled
  }

  #compile(pattern: string): RE2JS | Re2SyntaxError {
    return this.#cache.getOrCreate(pattern, () => {
      try {
        return RE2JS.compile(pattern)
      } catch (error) {
        return new Re2SyntaxError(`invalid RE2 regular expression ${JSON.stringify(pattern)}: ${error instanceof Error ? error.message : String(error)}`)
      }
    })
  }

  /** `matches`: the pattern is found anywhere in the text (use ^...$ to anchor). */
  matches(text: string, pattern: string): boolean {
    return this.compile(pattern).test(text)
  }

  /** `find`: the first match, or "" when there is none. */
  find(text: string, pattern: string): string {
    const matcher = this.compile(pattern).matcher(text)
    return matcher.find() ? (matcher.group() ?? "") : ""
  }

  /** `findAll`: every non-overlapping match, at most `limit` of them when limit >= 0. */
  findAll(text: string, pattern: string, limit = -1): Array<string> {
    const found: Array<string> = []
    if (limit === 0) return found
    const matcher = this.compile(pattern).matcher(text)
    while (matcher.find()) {
      found.push(matcher.group() ?? "")
      if (limit > 0 && found.length >= limit) break
    }
    return found
  }
}
