/**
 * A List answer split into its items without parsing them, so a caller can parse one
 * object, use it and drop it before parsing the next. JSON.parse of a whole page of 500
 * Pods keeps all of them alive while the page is worked on: they outlive the young
 * generation and every page ends up in the old one, which made garbage collection about a
 * third of a CEL scan's CPU (bench/scale-cel.ts). Parsed one by one, each object dies young.
 *
 * It works on the answer's bytes, not on its text, and on them as the socket handed them
 * over (ByteChunks): decoding a whole page of 2 MB as UTF-8 took 4-5 ms (V8's path for long
 * strings), decoding its 500 items one by one 0.2 ms. The
 * bytes JSON's structure is made of (quotes, backslashes, brackets) never occur inside a
 * multi-byte UTF-8 sequence, so scanning bytes finds the same boundaries as scanning text.
 */

import { ByteChunks } from "./ByteChunks.ts"

export interface SplitList {
  /** The List without its items (`items: []`): apiVersion, kind, metadata. */
  readonly envelope: unknown
  /** How many items the list holds. */
  readonly size: number
  /** Each item's JSON text, in order, decoded as it is asked for. */
  readonly items: () => Generator<string>
}

const quote = 0x22
const backslash = 0x5c
const openBrace = 0x7b
const closeBrace = 0x7d
const openBracket = 0x5b
const closeBracket = 0x5d
const colon = 0x3a
const comma = 0x2c

const keyBytes = (key: string) => Buffer.from(key, "utf8")
const itemsKey = keyBytes("items")
const metadataKey = keyBytes("metadata")
const managedFieldsKey = keyBytes("managedFields")
/** What stands for a replaced member's value. */
const nullBytes = keyBytes("null")

export interface SplitOptions {
  /**
   * Leave each item's `metadata.managedFields` out of its text (about half of a listed Pod),
   * for callers that never read them: they are then never decoded or parsed.
   */
  readonly dropManagedFields?: boolean
  /**
   * The item's own members the caller reads, besides `apiVersion`, `kind` and `metadata`
   * (always kept): any other member whose value is an object or an array gets `null` instead,
   * never decoded or parsed (a running Pod's `status` is often a third of it, a Secret's
   * `data` all of its payload). Undefined keeps every member.
   */
  readonly keepMembers?: ReadonlySet<string>
}

/** Members of an item that `keepMembers` never replaces. */
const alwaysKept = new Set(["apiVersion", "kind", "metadata"])

/**
 * Whether the item member whose key is at [start, end) is to be replaced: not one of `kept`.
 * A key written with escapes is never replaced: it may spell a kept one. (A function of its
 * own, not a closure in splitList's loop: a closure over the loop's index would move the index
 * out of a register, which made the whole loop 25-75 % slower.)
 */
const isReplaced = (bytes: ByteChunks, start: number, end: number, kept: ReadonlyArray<Buffer>): boolean => {
  for (const key of kept) if (bytes.equals(start, end, key)) return false
  return !bytes.includes(start, end, backslash)
}

/**
 * The part of an item to leave out, `"managedFields": [...]` with one comma next to it, as
 * [from, to); the member and its value were found at [keyStart, valueEnd).
 */
const memberWithComma = (bytes: ByteChunks, keyStart: number, valueEnd: number): [number, number] => {
  const next = bytes.skipBlanks(valueEnd)
  if (bytes.byteAt(next) === comma) return [keyStart, next + 1]
  let previous = keyStart - 1
  while (previous >= 0 && bytes.byteAt(previous) <= 0x20) previous--
  return [bytes.byteAt(previous) === comma ? previous : keyStart, valueEnd]
}

/**
 * Where the string whose content starts at `from` in `view` ends: the index of its closing
 * quote, or `view.length` or more when it goes on in the next chunk (one more when the
 * chunk's last byte is a backslash, whose escaped byte is the next chunk's first). Most of a
 * list is string content: bytes above the backslash (lower-case letters) pass with one comparison.
 */
const stringEnd = (view: Uint8Array, from: number): number => {
  let index = from
  const length = view.length
  while (index < length) {
    const inner = view[index]!
    if (inner > backslash) index++
    else if (inner === quote) return index
    else if (inner === backslash) index += 2
    else index++
  }
  return index
}

/**
 * Finds the top-level `items` array of a JSON object and the bytes of each of its elements,
 * which must be objects. Undefined when the answer is not shaped that way (the caller then
 * parses it whole, which reports any syntax error); each item's own syntax is checked when
 * it is parsed. One pass over the bytes: strings are skipped with their escapes, and only
 * depth changes and the keys at the depths that matter are tracked (the list's keys at
 * depth 1, an item's at 3, its metadata's at 4).
 */
export const splitList = (answer: Buffer | ByteChunks, options: SplitOptions = {}): SplitList | undefined => {
  const bytes = answer instanceof ByteChunks ? answer : new ByteChunks([answer])
  const dropManagedFields = options.dropManagedFields === true
  /** The item's members kept, as bytes to compare keys with; undefined keeps every member. */
  const kept = options.keepMembers === undefined ? undefined : [...alwaysKept, ...options.keepMembers].map(keyBytes)
  /** Whether an item's own keys (depth 3) are read: to find its metadata, or members to replace. */
  const readItemKeys = dropManagedFields || kept !== undefined
  let depth = 0
  /** Whether the last key read at depth 1 was `items`; at depth 3, `metadata`. */
  let readingItems = false
  let readingMetadata = false
  /** Inside the current item's metadata object. */
  let inMetadata = false
  /** Where the key `managedFields` of the current item's metadata starts, while its value is read. */
  let managedKeyStart = -1
  let managedValueOpen = false
  /** Whether the current item's managedFields were already cut (only the first are). */
  let managedCut = false
  /** The last key read at depth 3 names a member to replace; where its value starts, while it is read. */
  let replacing = false
  let replacedStart = -1
  /** Where the string being read starts (its quote), while it goes on from one chunk into the next. */
  let stringStart = -1
  let itemsStart = -1
  let itemsEnd = -1
  let itemStart = -1
  // Each item as three numbers, flat: start, end, and where its cuts start in `cuts`.
  const bounds: Array<number> = []
  // The parts of the items left out, in order, flat: from, to, and 1 when `null` stands in
  // their place (a replaced member's value) or 0 when nothing does (managedFields and a comma).
  const cuts: Array<number> = []
  let itemCuts = 0
  /** Bytes at the start of the next chunk that a string read in this one already passed. */
  let carried = 0
  for (let chunk = 0; chunk < bytes.buffers.length; chunk++) {
    const buffer = bytes.buffers[chunk]!
    // Indexed as a plain Uint8Array: V8 reads a Buffer's bytes more slowly in this loop.
    const view = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length)
    const base = bytes.starts[chunk]!
    const length = view.length
    let local = carried
    carried = 0
    if (stringStart !== -1) {
      // A string the previous chunk ended in.
      local = stringEnd(view, local)
      if (local >= length) {
        carried = local - length
        continue
      }
    }
    for (; local < length; local++) {
      const code = view[local]!
      const index = base + local
      if (stringStart !== -1) {
        // The closing quote of a string: is it a key the split needs?
        if (depth === 1 || (itemStart !== -1 && ((depth === 3 && readItemKeys) || (depth === 4 && inMetadata && dropManagedFields)))) {
          let next = local + 1
          while (next < length && view[next]! <= 0x20) next++
          // The blanks may go on in the next chunks.
          const following = next < length ? view[next]! : bytes.byteAt(bytes.skipBlanks(base + next))
          if (following === colon) {
            if (depth === 1) readingItems = bytes.equals(stringStart + 1, index, itemsKey)
            else if (depth === 3) {
              readingMetadata = bytes.equals(stringStart + 1, index, metadataKey)
              if (kept !== undefined) replacing = isReplaced(bytes, stringStart + 1, index, kept)
            } else managedKeyStart = bytes.equals(stringStart + 1, index, managedFieldsKey) && !managedCut ? stringStart : -1
          }
        }
        stringStart = -1
        continue
      }
      // Between the items: only objects, commas and blanks (anything else, say a string or
      // a number, is not a list this splitter understands).
      if (depth === 2 && itemsStart !== -1 && itemsEnd === -1 && code !== openBrace && code !== closeBracket && code !== comma && code > 0x20) {
        return undefined
      }
      if (code === quote) {
        stringStart = index
        local = stringEnd(view, local + 1)
        if (local >= length) {
          carried = local - length
          break
        }
        // Back on the closing quote: the next turn of the loop reads it as such.
        local--
        continue
      }
      if (code === openBrace || code === openBracket) {
        if (depth === 1 && code === openBracket && readingItems && itemsStart === -1) itemsStart = index
        else if (depth === 2 && itemsStart !== -1 && itemsEnd === -1) itemStart = index
        else if (depth === 3 && itemStart !== -1 && replacing) {
          replacedStart = index
          replacing = false
        } else if (depth === 3 && itemStart !== -1 && readingMetadata && code === openBrace) inMetadata = true
        else if (depth === 4 && inMetadata && managedKeyStart !== -1) managedValueOpen = true
        depth++
      } else if (code === closeBrace || code === closeBracket) {
        depth--
        if (depth < 0) return undefined
        if (depth === 4 && managedValueOpen) {
          const cut = memberWithComma(bytes, managedKeyStart, index + 1)
          cuts.push(cut[0], cut[1], 0)
          managedCut = true
          managedValueOpen = false
          managedKeyStart = -1
        } else if (depth === 3 && replacedStart !== -1) {
          cuts.push(replacedStart, index + 1, 1)
          replacedStart = -1
        } else if (depth === 3 && inMetadata) {
          inMetadata = false
          readingMetadata = false
          managedKeyStart = -1
        } else if (depth === 2 && itemStart !== -1) {
          bounds.push(itemStart, index + 1, itemCuts)
          itemCuts = cuts.length
          itemStart = -1
          managedCut = false
          replacing = false
          readingMetadata = false
        } else if (depth === 1 && code === closeBracket && itemsStart !== -1 && itemsEnd === -1) itemsEnd = index
      }
    }
  }
  if (stringStart !== -1 || depth !== 0 || itemsStart === -1 || itemsEnd === -1) return undefined
  let envelope: unknown
  try {
    envelope = JSON.parse(`${bytes.text(0, itemsStart)}[]${bytes.text(itemsEnd + 1, bytes.length)}`)
  } catch {
    return undefined
  }
  function* items(): Generator<string> {
    // An item with cuts (or across chunks) is copied here without them and decoded once:
    // decoding each part and joining the strings copied the text twice (once per part, once
    // more when JSON.parse flattened the joined string).
    let scratch = Buffer.alloc(0)
    for (let index = 0; index < bounds.length; index += 3) {
      const [start, end, firstCut] = [bounds[index]!, bounds[index + 1]!, bounds[index + 2]!]
      const lastCut = index + 3 < bounds.length ? bounds[index + 5]! : cuts.length
      if (firstCut === lastCut) {
        yield bytes.text(start, end)
        continue
      }
      // A replaced value may be shorter than `null` (`{}`): room for one per cut.
      const room = end - start + (nullBytes.length * (lastCut - firstCut)) / 3
      if (scratch.length < room) scratch = Buffer.allocUnsafe(Math.max(room, 2 * scratch.length))
      let length = 0
      let at = start
      for (let cut = firstCut; cut < lastCut; cut += 3) {
        length += bytes.copy(scratch, length, at, cuts[cut]!)
        if (cuts[cut + 2] === 1) length += nullBytes.copy(scratch, length)
        at = cuts[cut + 1]!
      }
      length += bytes.copy(scratch, length, at, end)
      yield scratch.toString("utf8", 0, length)
    }
  }
  return { envelope, size: bounds.length / 3, items }
}
