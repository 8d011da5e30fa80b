import { boundAlert } from "./AlertBudget.ts"
import type { FalcoEvent } from "./FalcoEvent.ts"

/**
 * Shrinks alerts before the receiver buffers them: cuts them to the alert budget (which
 * keeps only the output fields checks read), and shares one copy of the strings and tag
 * lists that repeat from alert to alert (rule names, hosts, a rule's tags).
 */
export class EventCompactor {
  readonly #strings = new Map<string, string>()
  readonly #tagLists = new Map<string, ReadonlyArray<string>>()
  readonly #limit: number

  /** `limit` bounds each table: a sender inventing new names cannot grow it forever. */
  constructor(limit = 10_000) {
    this.#limit = limit
  }

  #string(value: string): string {
    const known = this.#strings.get(value)
    if (known !== undefined) return known
    if (this.#strings.size >= this.#limit) this.#strings.clear()
    this.#strings.set(value, value)
    return value
  }

  #tags(tags: ReadonlyArray<string>): ReadonlyArray<string> {
    const key = tags.join("\u0000")
    const known = this.#tagLists.get(key)
    if (known !== undefined) return known
    if (this.#tagLists.size >= this.#limit) this.#tagLists.clear()
    const shared = Object.freeze(tags.map((tag) => this.#string(tag)))
    this.#tagLists.set(key, shared)
    return shared
  }

  compact(received: FalcoEvent): FalcoEvent {
    const event = boundAlert(received)
    const outputFields: Record<string, string> = {}
    for (const [name, value] of Object.entries(event.outputFields)) outputFields[name] = this.#string(value)
    return {
      time: event.time,
      timeMillis: event.timeMillis,
      priority: event.priority,
      rule: this.#string(event.rule),
      output: event.output,
      outputFields,
      hostname: this.#string(event.hostname),
      tags: this.#tags(event.tags),
      source: this.#string(event.source)
    }
  }
}
