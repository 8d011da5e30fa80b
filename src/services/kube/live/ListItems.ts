/**
 * A List answer split into its items' JSON texts without parsing them, so a caller can parse
 * one object, use it and drop it before parsing the next. JSON.parse of a whole page of 500
 * Pods keeps all of them alive while the page is worked on: they outlive the young
 * generation and every page ends up in the old one, which made garbage collection about a
 * third of a CEL scan's CPU (bench/scale-cel.ts). Parsed one by one, each object dies young.
 */

export interface SplitList {
  /** The List without its items (`items: []`): apiVersion, kind, metadata. */
  readonly envelope: unknown
  /** Each item's JSON text, in order. */
  readonly items: ReadonlyArray<string>
}

const quote = 0x22
const backslash = 0x5c
const openBrace = 0x7b
const closeBrace = 0x7d
const openBracket = 0x5b
const closeBracket = 0x5d
const colon = 0x3a

/**
 * Finds the top-level `items` array of a JSON object and the text of each of its elements,
 * which must be objects. Undefined when the text is not shaped that way (the caller then
 * parses it whole, which reports any syntax error); each item's own syntax is checked when
 * it is parsed. One pass over the text: strings are skipped with their escapes, and only
 * depth changes are tracked.
 */
export const splitList = (text: string): SplitList | undefined => {
  let depth = 0
  /** The last string seen at depth 1 followed by a colon: the key of the value being read. */
  let key: string | undefined
  let stringStart = -1
  let itemsStart = -1
  let itemsEnd = -1
  let itemStart = -1
  const items: Array<string> = []
  const length = text.length
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index)
    // Between the items: only objects, commas and blanks (anything else, say a string or
    // a number, is not a list this splitter understands).
    if (depth === 2 && itemsStart !== -1 && itemsEnd === -1 && code !== openBrace && code !== closeBracket && code !== 0x2c && code > 0x20) {
      return undefined
    }
    if (code === quote) {
      stringStart = index
      index++
      while (index < length) {
        const inner = text.charCodeAt(index)
        if (inner === backslash) index += 2
        else if (inner === quote) break
        else index++
      }
      if (index >= length) return undefined
      if (depth === 1) {
        let next = index + 1
        while (next < length && text.charCodeAt(next) <= 0x20) next++
        if (text.charCodeAt(next) === colon) key = text.slice(stringStart + 1, index)
      }
      continue
    }
    if (code === openBrace || code === openBracket) {
      if (depth === 1 && code === openBracket && key === "items" && itemsStart === -1) itemsStart = index
      else if (depth === 2 && itemsStart !== -1 && itemsEnd === -1) itemStart = index
      depth++
    } else if (code === closeBrace || code === closeBracket) {
      depth--
      if (depth < 0) return undefined
      if (depth === 2 && itemStart !== -1) {
        items.push(text.slice(itemStart, index + 1))
        itemStart = -1
      } else if (depth === 1 && code === closeBracket && itemsStart !== -1 && itemsEnd === -1) itemsEnd = index
    }
  }
  if (depth !== 0 || itemsStart === -1 || itemsEnd === -1) return undefined
  let envelope: unknown
  try {
    envelope = JSON.parse(`${text.slice(0, itemsStart)}[]${text.slice(itemsEnd + 1)}`)
  } catch {
    return undefined
  }
  return { envelope, items }
}
