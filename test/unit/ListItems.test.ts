import { describe, expect, it } from "vitest"
import { ByteChunks } from "../../src/services/kube/live/ByteChunks.ts"
import { type SplitOptions, splitList } from "../../src/services/kube/live/ListItems.ts"

/** What JSON.parse of the whole text gives, the way splitList hands it out. */
const parsedWhole = (text: string) => {
  const { items, ...envelope } = JSON.parse(text) as { items: Array<unknown> }
  return { envelope: { ...envelope, items: [] }, items }
}

/** A text as the socket may hand it over: in chunks of these sizes, in turn. */
const chunked = (text: string, sizes: ReadonlyArray<number>): ByteChunks => {
  const bytes = Buffer.from(text, "utf8")
  const chunks: Array<Buffer> = []
  for (let at = 0, turn = 0; at < bytes.length; turn++) {
    const size = sizes[turn % sizes.length]!
    chunks.push(bytes.subarray(at, at + size))
    at += size
  }
  return new ByteChunks(chunks)
}

/** Chunkings that cut every key, escape, item and cut somewhere: one byte, small primes, a mix with empty chunks. */
const chunkings: ReadonlyArray<ReadonlyArray<number>> = [[1], [2], [3], [7], [13, 1, 0, 5, 64], [4096]]

/** The split's texts, the same (or the same refusal) whichever way the bytes are chunked. */
const splitTexts = (text: string, options: SplitOptions = {}) => {
  const texts = (answer: Buffer | ByteChunks) => {
    const split = splitList(answer, options)
    return split === undefined ? undefined : { envelope: split.envelope, size: split.size, items: [...split.items()] }
  }
  const whole = texts(Buffer.from(text, "utf8"))
  for (const sizes of chunkings) expect(texts(chunked(text, sizes)), `chunks of ${sizes.join(", ")}`).toEqual(whole)
  return whole
}

const parsedSplit = (text: string, options: SplitOptions = {}) => {
  const split = splitTexts(text, options)
  if (split === undefined) return undefined
  expect(split.size).toBe(split.items.length)
  return { envelope: split.envelope, items: split.items.map((item) => JSON.parse(item) as unknown) }
}

describe("splitList (a List's items as texts, parsed one by one)", () => {
  it("gives exactly the items JSON.parse gives, whatever their strings hold", () => {
    const tricky = [
      { metadata: { name: "a", annotations: { note: "braces } ] { [ and \"quotes\" and \\\\ backslashes \\" } } },
      { metadata: { name: "b", labels: { items: "[1, 2]" }, items: [{ nested: "items" }] }, spec: { list: [[], {}, [{}]] } },
      { metadata: { name: "c\u00e9\u{1F600}" }, data: { "k\"ey": "v\\\"al" }, n: -1.5e3, t: true, z: null },
      { metadata: { name: "" } }
    ]
    const lists = [
      JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "7", continue: "tok\"en" }, items: tricky }),
      JSON.stringify({ items: tricky, metadata: { resourceVersion: "8" }, kind: "List" }, null, 4),
      JSON.stringify({ kind: "PodList", metadata: { items: [{ not: "these" }] }, items: [] }),
      // Keys that only look like `items`, next to multi-byte text (the split is done on bytes).
      JSON.stringify({ item: [{ not: "these" }], "\u00edtems": [{ nor: "these" }], itemsX: [{ nor: "these" }], "\u00e9": "\u{1F600}", items: tricky }),
      ` \n{ "items" : [ ${JSON.stringify(tricky[0])} , ${JSON.stringify(tricky[1])} ] , "kind":"X" } \n`
    ]
    for (const text of lists) expect(parsedSplit(text)).toEqual(parsedWhole(text))
  })

  it("declines what it is not sure of, so the caller parses the text whole", () => {
    for (
      const text of [
        JSON.stringify({ kind: "PodList", items: null }),
        JSON.stringify({ kind: "PodList" }),
        JSON.stringify({ items: [{ a: 1 }, 2] }),
        JSON.stringify({ items: ["x", { a: 1 }] }),
        JSON.stringify({ items: [[{ a: 1 }]] }),
        JSON.stringify([{ items: [{ a: 1 }] }]),
        '{"items": [{"a": 1}',
        '{"items": [{"a": "unterminated}]}',
        '{"items": [{"a": 1}]} trailing',
        '{"kind": bad, "items": [{"a": 1}]}'
      ]
    ) {
      expect(splitTexts(text), text).toBeUndefined()
    }
  })

  it("leaves out each item's metadata.managedFields when asked, and nothing else", () => {
    const managed = [{ manager: "kubectl", fieldsV1: { "f:metadata": { "f:labels": { "f:managedFields": {} } }, "k:{\"name\":\"app\"}": {} } }]
    const items = [
      { metadata: { managedFields: managed, name: "first", namespace: "a" }, spec: { x: 1 } },
      { metadata: { name: "middle", managedFields: managed, labels: { managedFields: "a label" } } },
      { metadata: { name: "last", annotations: { note: "\"managedFields\": [] }" }, managedFields: managed } },
      { metadata: { managedFields: [] }, kind: "Only" },
      // Not the item's own metadata: kept.
      { metadata: { name: "template" }, spec: { template: { metadata: { managedFields: managed } } }, managedFields: managed },
      // Not an array or object: kept as it is (nothing to gain).
      { metadata: { name: "null", managedFields: null } },
      { metadata: { name: "caf\u00e9 \u{1F600}", managedFields: managed, uid: "u" } },
      { status: {}, metadata: { name: "no-managed-fields" } }
    ]
    const withoutManagedFields = (text: string) => {
      const whole = parsedWhole(text)
      for (const item of whole.items as Array<{ metadata: Record<string, unknown> }>) {
        if (typeof item.metadata.managedFields === "object" && item.metadata.managedFields !== null) delete item.metadata.managedFields
      }
      return whole
    }
    for (
      const text of [
        JSON.stringify({ kind: "PodList", metadata: { resourceVersion: "1", managedFields: managed }, items }),
        JSON.stringify({ kind: "PodList", items }, null, 2),
        JSON.stringify({ items }, null, "\t").replaceAll(",", " ,\n ")
      ]
    ) {
      expect(parsedSplit(text, { dropManagedFields: true })).toEqual(withoutManagedFields(text))
      // Without the option, everything is kept.
      expect(parsedSplit(text)).toEqual(parsedWhole(text))
    }
  })

  it("gives null for the object and array members not kept, and keeps everything else as it is", () => {
    const managed = [{ manager: "kubectl", fieldsV1: { "f:status": {} } }]
    const items = [
      // Values shorter than the `null` that stands for them, in the first item (nothing to reuse).
      { metadata: { name: "e" }, status: {}, data: [] },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "a", managedFields: managed }, spec: { containers: [{ name: "c" }] }, status: { phase: "Running", conditions: [{ type: "Ready" }] } },
      // Members in another order, a replaced one first and last, values that only look like keys.
      { status: { note: "\"spec\": {}, \"metadata\": [" }, metadata: { name: "b", labels: { status: "x" } }, spec: { status: { nested: true } }, data: ["1", { two: 2 }] },
      // Scalars are kept whatever their name (nothing to gain), and so is an empty item.
      { metadata: { name: "c" }, status: "Pending", replicas: 3, ready: true, gone: null },
      {},
      // A key written with escapes may spell a kept member: kept.
      { metadata: { name: "d" } }
    ]
    const escaped = JSON.stringify({ kind: "List", items }).replace('{"metadata":{"name":"d"}}', '{"metadata":{"name":"d"},"sp\\u0065c":{"x":1},"st\\u0061tus":{"y":2}}')
    const expected = (text: string, manageless: boolean) => {
      const whole = parsedWhole(text)
      for (const item of whole.items as Array<Record<string, unknown>>) {
        for (const [key, value] of Object.entries(item)) {
          if (!["apiVersion", "kind", "metadata", "spec"].includes(key) && typeof value === "object" && value !== null) item[key] = null
        }
        const metadata = item.metadata as Record<string, unknown> | undefined
        if (manageless && metadata !== undefined) delete metadata.managedFields
      }
      return whole
    }
    for (const text of [JSON.stringify({ kind: "PodList", items }), JSON.stringify({ kind: "PodList", items }, null, 2)]) {
      expect(parsedSplit(text, { keepMembers: new Set(["spec"]) })).toEqual(expected(text, false))
      expect(parsedSplit(text, { keepMembers: new Set(["spec"]), dropManagedFields: true })).toEqual(expected(text, true))
      expect(parsedSplit(text, { keepMembers: new Set(["spec", "status", "data"]) })).toEqual(parsedWhole(text))
    }
    const escapedItem = parsedSplit(escaped, { keepMembers: new Set(["spec"]) })!.items[5]
    expect(escapedItem).toEqual({ metadata: { name: "d" }, spec: { x: 1 }, status: { y: 2 } })
  })

  it("agrees with JSON.parse on random lists, whatever it is asked to leave out", () => {
    // A seeded generator (mulberry32): the same lists on every run.
    let seed = 15
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
    }
    const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(random() * values.length)]!
    const names = ["apiVersion", "kind", "metadata", "spec", "status", "data", "items", "managedFields", "name", "x\"y", "\u00e9", "{[", ""]
    const text = () => Array.from({ length: Math.floor(random() * 6) }, () => pick(["a", "\"", "\\", "{", "}", "[", "]", ":", ",", " ", "\n", "\u00e9", "\u{1F600}", "managedFields", "\"status\":{"])).join("")
    const value = (depth: number): unknown => {
      const kind = depth > 3 ? Math.floor(random() * 4) : Math.floor(random() * 6)
      if (kind === 0) return null
      if (kind === 1) return random() < 0.5
      if (kind === 2) return Math.round(random() * 1e6) / 100 - 50
      if (kind === 3) return text()
      if (kind === 4) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1))
      return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [pick(names), value(depth + 1)]))
    }
    const item = () => {
      const members: Record<string, unknown> = Object.fromEntries(Array.from({ length: Math.floor(random() * 5) }, () => [pick(names), value(1)]))
      if (random() < 0.8) {
        members.metadata = { name: text(), ...(random() < 0.7 ? { managedFields: value(2) } : {}), ...(value(2) as object) }
      }
      return members
    }
    const expected = (listText: string, options: SplitOptions) => {
      const whole = parsedWhole(listText)
      for (const entry of whole.items as Array<Record<string, unknown>>) {
        const metadata = entry.metadata
        if (options.dropManagedFields === true && typeof metadata === "object" && metadata !== null && !Array.isArray(metadata)) {
          const managed = (metadata as Record<string, unknown>).managedFields
          if (typeof managed === "object" && managed !== null) delete (metadata as Record<string, unknown>).managedFields
        }
        if (options.keepMembers === undefined) continue
        for (const [key, member] of Object.entries(entry)) {
          // A key the text writes with escapes is kept (it may spell a kept one).
          const escaped = JSON.stringify(key).includes("\\")
          if (!escaped && !["apiVersion", "kind", "metadata", ...options.keepMembers].includes(key) && typeof member === "object" && member !== null) entry[key] = null
        }
      }
      return whole
    }
    const optionSets: ReadonlyArray<SplitOptions> = [{}, { dropManagedFields: true }, { keepMembers: new Set(["spec"]) }, { dropManagedFields: true, keepMembers: new Set(["status", "data"]) }]
    let compared = 0
    for (let round = 0; round < 300; round++) {
      const list = { kind: "List", metadata: value(1), items: Array.from({ length: Math.floor(random() * 5) }, item) }
      const listText = JSON.stringify(list, null, pick([undefined, 1, "\t"]))
      for (const options of optionSets) {
        expect(parsedSplit(listText, options), listText).toEqual(expected(listText, options))
        compared++
      }
    }
    expect(compared).toBe(1_200)
  })

  it("hands each item's own syntax error to its parser", () => {
    const items = [...(splitList(Buffer.from('{"items": [{"a": 1}, {"b": tru}]}'))?.items() ?? [])]
    expect(items).toEqual(['{"a": 1}', '{"b": tru}'])
    expect(() => JSON.parse(items[1]!)).toThrow()
  })
})
