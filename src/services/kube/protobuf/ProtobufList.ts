import { isUtf8 } from "node:buffer"
import type { ByteChunks } from "../live/ByteChunks.ts"
import { type Field, type Message, ValueKind } from "./MessageSchema.ts"

/**
 * A list page in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
 * decoded into exactly the objects JSON.parse makes of the JSON the API server sends for the
 * same page: same keys in the same order, same omitted members, same `null`s, same numbers
 * and strings. The API server spends less CPU writing protobuf than JSON (a third less in a
 * 100,000-Pod CEL scan, docs/cel.md), and such a scan waits on the API server.
 *
 * What makes it exact is the Go side of the JSON, which the .proto files do not carry:
 * encoding/json writes the Go struct (omitempty, omitzero, pointers, embedded structs, map
 * keys sorted, a nil slice as null), and a few types write themselves (Time, Quantity,
 * IntOrString, raw JSON). MessageSchema has those facts, read from k8s.io/api by
 * scripts/protobuf-schema. Anything else is refused with UnreadableProtobuf rather than
 * guessed: a field number the schema does not know (an API server newer than the schema),
 * invalid UTF-8 (Go's JSON replaces it byte by byte, JavaScript by sequence), a time outside
 * years 0-9999, malformed raw JSON. The caller then reads the kind as JSON.
 */

/** The page cannot be decoded exactly: read it as JSON instead. */
export class UnreadableProtobuf extends Error {
  override readonly name = "UnreadableProtobuf"
}

/** The 4 bytes every protobuf answer of the API server starts with ("k8s\0"). */
const magic = 0x6b387300

export interface ProtobufPrune {
  /** The item's top-level members read besides `metadata`: others' message, list and map values become null, never decoded. */
  readonly keepMembers?: ReadonlySet<string>
  /** Leave the item's `metadata.managedFields` out. */
  readonly dropManagedFields?: boolean
}

export interface ProtobufPage {
  readonly resourceVersion: string
  readonly continue: string
  readonly size: number
  /** Each item decoded when it is reached. Throws UnreadableProtobuf. */
  readonly items: () => Generator<Record<string, unknown>>
}

/** Where a message is: an item, the item's own metadata, or anywhere else (nothing pruned). */
const nestedLevel = 0
const itemLevel = 1
const itemMetadataLevel = 2

/** Go's time.Time zero value (January 1, year 1) in Unix seconds: metav1.Time writes it as null. */
const zeroTimeSeconds = -62135596800

const pad = (value: number, width: number) => String(value).padStart(width, "0")

/** The JSON of a metav1.Time of `seconds`: RFC 3339 in UTC, whole seconds; null for the zero time. */
const timeText = (seconds: number): string | null => {
  if (seconds === zeroTimeSeconds) return null
  const date = new Date(seconds * 1000)
  const year = date.getUTCFullYear()
  // Go writes other years in its own way; none the API server accepts.
  if (!(year >= 0 && year <= 9999)) throw new UnreadableProtobuf(`a time in year ${year}`)
  return `${pad(year, 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}Z`
}

/** The JSON of Go's zero value of a kind (nil for bytes, messages, raw JSON; the zero time is null). */
const zeroValue = (kind: ValueKind): unknown => {
  switch (kind) {
    case ValueKind.String:
      return ""
    case ValueKind.Bool:
      return false
    case ValueKind.Int32:
    case ValueKind.Int64:
    case ValueKind.IntOrString:
      return 0
    case ValueKind.Quantity:
      return "0"
    default:
      return null
  }
}

/** The JSON of a field that is absent from the wire (a struct aside), or `undefined` when JSON leaves it out. */
const absentValue = (field: Field): unknown => {
  if (field.repeated || field.kind === ValueKind.Map || field.pointer) return field.omitEmpty ? undefined : null
  if (field.kind === ValueKind.Time) return field.omitZero ? undefined : null
  // omitempty leaves out empty strings, false, 0 and nil bytes; never a Quantity or an IntOrString (structs).
  const scalar = field.kind === ValueKind.String || field.kind === ValueKind.Bool || field.kind === ValueKind.Int32 || field.kind === ValueKind.Int64 || field.kind === ValueKind.Bytes
  return field.omitEmpty && scalar ? undefined : zeroValue(field.kind)
}

/** Whether omitempty leaves out a present value (structs are never left out; encoding/json cannot tell them empty). */
const omittedWhenPresent = (field: Field, value: unknown): boolean => {
  if (field.omitZero && value === null) return true
  if (!field.omitEmpty || field.pointer || field.repeated) return false
  switch (field.kind) {
    case ValueKind.String:
    case ValueKind.Bytes:
      return value === ""
    case ValueKind.Bool:
      return value === false
    case ValueKind.Int32:
    case ValueKind.Int64:
      return value === 0
    default:
      return false
  }
}

/** What both readers below share: lengths and skipping, over their own way to read a number. */
abstract class WireReader {
  at = 0
  abstract varint(): number
  /** Where the bytes end. */
  abstract limit(): number

  /** The end of the length-delimited value starting here. */
  end(): number {
    const length = this.varint()
    const end = this.at + length
    if (end > this.limit()) throw new UnreadableProtobuf("a value runs past the end")
    return end
  }

  skip(wire: number): void {
    if (wire === 0) this.varint()
    else if (wire === 2) this.at = this.end()
    else if (wire === 1) this.at += 8
    else if (wire === 5) this.at += 4
    else throw new UnreadableProtobuf(`wire type ${wire}`)
  }
}

/** Decodes one item, in place in the chunk that holds it (or a copy, when the socket split it). */
class Decoder extends WireReader {
  bytes: Buffer = Buffer.alloc(0)
  /** Where the item ends in `bytes`. */
  stop = 0
  /**
   * The slots of the messages being decoded, one array per depth, reused from one message to
   * the next: a fresh array per message was a third of what decoding allocated.
   */
  readonly slotsByDepth: Array<Array<unknown>> = []
  depth = 0
  keepMembers: ReadonlySet<string> | undefined
  dropManagedFields = false

  constructor(prune: ProtobufPrune = {}) {
    super()
    this.keepMembers = prune.keepMembers
    this.dropManagedFields = prune.dropManagedFields === true
  }

  limit(): number {
    return this.stop
  }

  varint(): number {
    const bytes = this.bytes
    let byte = bytes[this.at++]!
    if (byte < 0x80) return byte
    let value = byte & 0x7f
    byte = bytes[this.at++]!
    value |= (byte & 0x7f) << 7
    if (byte < 0x80) return value
    byte = bytes[this.at++]!
    value |= (byte & 0x7f) << 14
    if (byte < 0x80) return value
    byte = bytes[this.at++]!
    value |= (byte & 0x7f) << 21
    if (byte < 0x80) return value
    // More than 28 bits (large int64s, negative numbers as 10 bytes): exactly, as Go reads it.
    let big = BigInt(value)
    for (let shift = 28n; shift < 70n; shift += 7n) {
      if (this.at >= bytes.length) throw new UnreadableProtobuf("a number runs past the end")
      byte = bytes[this.at++]!
      big |= BigInt(byte & 0x7f) << shift
      if (byte < 0x80) return Number(BigInt.asIntN(64, big))
    }
    throw new UnreadableProtobuf("a number longer than 10 bytes")
  }

  text(end: number): string {
    const value = this.bytes.toString("utf8", this.at, end)
    // U+FFFD in the text: either written so (valid) or a replaced invalid sequence.
    if (value.includes("\uFFFD") && !isUtf8(this.bytes.subarray(this.at, end))) throw new UnreadableProtobuf("a string that is not UTF-8")
    this.at = end
    return value
  }

  int32(): number {
    const value = this.varint()
    return (value | 0) === value ? value : Number(BigInt.asIntN(32, BigInt(value)))
  }

  /** The message whose bytes end at `end`, as JSON would have it. */
  message(message: Message, end: number, level = nestedLevel): Record<string, unknown> {
    const fields = message.fields
    // Left empty by the message that used them last (below).
    const slots = (this.slotsByDepth[this.depth++] ??= [])
    while (this.at < end) {
      const key = this.varint()
      const field = message.byNumber[key >>> 3]
      if (field === undefined) throw new UnreadableProtobuf(`field ${key >>> 3} of ${message.name}, which this build does not know`)
      const wire = key & 7
      if (level === itemLevel) {
        if (this.keepMembers !== undefined && field.json !== "metadata" && !this.keepMembers.has(field.json) && (field.kind === ValueKind.Message || field.kind === ValueKind.Map || field.repeated)) {
          this.skip(wire)
          slots[field.slot] = null
          continue
        }
        // The item's own metadata, not the templates' inside it (as the JSON path cuts).
        if (this.dropManagedFields && field.json === "metadata" && field.kind === ValueKind.Message && wire === 2) {
          slots[field.slot] = this.message(field.message!, this.end(), itemMetadataLevel)
          continue
        }
      } else if (level === itemMetadataLevel && field.json === "managedFields") {
        this.skip(wire)
        continue
      }
      if (field.kind === ValueKind.Map) this.mapEntry(field, wire, slots)
      else if (field.repeated) {
        const list = slots[field.slot] as Array<unknown> | undefined
        if (list === undefined) slots[field.slot] = [this.value(field.kind, field.message, wire)]
        else list.push(this.value(field.kind, field.message, wire))
      } else {
        // Go would merge a message given twice; the API server never writes one twice.
        if (field.kind === ValueKind.Message && slots[field.slot] !== undefined) throw new UnreadableProtobuf(`${message.name}.${field.json} twice`)
        slots[field.slot] = this.value(field.kind, field.message, wire)
      }
    }
    if (this.at !== end) throw new UnreadableProtobuf(`${message.name} runs past its length`)
    const object: Record<string, unknown> = {}
    for (const field of fields) {
      const value = slots[field.slot]
      slots[field.slot] = undefined
      if (field.inline) {
        Object.assign(object, value === undefined ? this.empty(field.message!) : value)
        continue
      }
      if (value === undefined) {
        const absent = field.kind === ValueKind.Message && !field.pointer && !field.repeated ? this.empty(field.message!) : absentValue(field)
        if (absent !== undefined) object[field.json] = absent
      } else if (!omittedWhenPresent(field, value)) object[field.json] = value
    }
    this.depth--
    return object
  }

  /** A message with no fields on the wire: its zero value as JSON. */
  empty(message: Message): Record<string, unknown> {
    return this.message(message, this.at)
  }

  mapEntry(field: Field, wire: number, slots: Array<unknown>): void {
    if (wire !== 2) throw new UnreadableProtobuf(`wire type ${wire} for map ${field.json}`)
    const end = this.end()
    let key = ""
    let value: unknown = zeroValue(field.valueKind)
    while (this.at < end) {
      const tag = this.varint()
      if (tag === 10) key = this.text(this.end())
      else if (tag >>> 3 === 2) value = this.value(field.valueKind, field.message, tag & 7)
      else throw new UnreadableProtobuf(`map entry field ${tag >>> 3}`)
    }
    let map = slots[field.slot] as Record<string, unknown> | undefined
    if (map === undefined) slots[field.slot] = map = {}
    map[key] = value
  }

  value(kind: ValueKind, message: Message | undefined, wire: number): unknown {
    if (kind === ValueKind.Bool || kind === ValueKind.Int32 || kind === ValueKind.Int64) {
      if (wire !== 0) throw new UnreadableProtobuf(`wire type ${wire} for a number`)
      return kind === ValueKind.Bool ? this.varint() !== 0 : kind === ValueKind.Int32 ? this.int32() : this.varint()
    }
    if (wire !== 2) throw new UnreadableProtobuf(`wire type ${wire} for a length-delimited value`)
    const end = this.end()
    switch (kind) {
      case ValueKind.String:
        return this.text(end)
      case ValueKind.Bytes: {
        const value = this.bytes.toString("base64", this.at, end)
        this.at = end
        return value
      }
      case ValueKind.Message:
        return this.message(message!, end)
      case ValueKind.Time:
        return this.time(end)
      case ValueKind.Quantity:
        return this.quantity(end)
      case ValueKind.IntOrString:
        return this.intOrString(end)
      default:
        return this.rawJson(end)
    }
  }

  /** metav1.Timestamp {seconds = 1, nanos = 2}; metav1.Time drops the nanoseconds. */
  time(end: number): string | null {
    // Time.Unmarshal: no bytes at all is the zero time (what a time of 0 seconds marshals to).
    if (this.at === end) return null
    let seconds = 0
    while (this.at < end) {
      const tag = this.varint()
      if (tag === 8) seconds = this.varint()
      else this.skip(tag & 7)
    }
    return timeText(seconds)
  }

  /** resource.Quantity {string = 1}: written by the API server in its canonical form, which its JSON writes too. */
  quantity(end: number): string {
    let value = ""
    while (this.at < end) {
      const tag = this.varint()
      if (tag === 10) value = this.text(this.end())
      else this.skip(tag & 7)
    }
    return value === "" ? "0" : value
  }

  /** intstr.IntOrString {type = 1, intVal = 2, strVal = 3}. */
  intOrString(end: number): number | string {
    let type = 0
    let number = 0
    let text = ""
    while (this.at < end) {
      const tag = this.varint()
      if (tag === 8) type = this.varint()
      else if (tag === 16) number = this.int32()
      else if (tag === 26) text = this.text(this.end())
      else this.skip(tag & 7)
    }
    if (type === 0) return number
    if (type === 1) return text
    throw new UnreadableProtobuf(`IntOrString of type ${type}`)
  }

  /** RawExtension / FieldsV1 {raw = 1}: JSON as it is. */
  rawJson(end: number): unknown {
    let value: unknown = null
    while (this.at < end) {
      const tag = this.varint()
      if (tag !== 10) {
        this.skip(tag & 7)
        continue
      }
      const rawEnd = this.end()
      try {
        value = JSON.parse(this.bytes.toString("utf8", this.at, rawEnd))
      } catch {
        throw new UnreadableProtobuf("raw JSON that does not parse")
      }
      this.at = rawEnd
    }
    return value
  }
}

/** Whether the answer is in Kubernetes' protobuf envelope. */
export const isProtobufAnswer = (answer: ByteChunks): boolean =>
  answer.length >= 4 && answer.byteAt(0) * 0x1000000 + answer.byteAt(1) * 0x10000 + answer.byteAt(2) * 0x100 + answer.byteAt(3) === magic

/**
 * Reads the few top-level bytes of an answer kept in chunks (ByteChunks): a key and a
 * length per item. Joining a page into one buffer would cost a fresh mapping per page.
 */
class TopLevel extends WireReader {
  readonly answer: ByteChunks
  constructor(answer: ByteChunks, at: number) {
    super()
    this.answer = answer
    this.at = at
  }

  limit(): number {
    return this.answer.length
  }

  varint(): number {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.answer.byteAt(this.at++)
      if (byte === -1) throw new UnreadableProtobuf("the answer ends inside a number")
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return value
    }
    throw new UnreadableProtobuf("a length or key too large")
  }

  text(end: number): string {
    const decoder = new Decoder()
    decoder.bytes = this.answer.slice(this.at, end)
    decoder.stop = decoder.bytes.length
    const text = decoder.text(decoder.stop)
    this.at = end
    return text
  }
}

/**
 * A list answer: "k8s\0", then runtime.Unknown {typeMeta = 1, raw = 2, ...} whose raw is the
 * List {metadata = 1 (ListMeta), items = 2}. Only the list's top level is read here; each item
 * is decoded when the caller reaches it, so a page's objects can die young one by one.
 */
export const decodeProtobufList = (answer: ByteChunks, item: Message, prune: ProtobufPrune = {}): ProtobufPage => {
  if (!isProtobufAnswer(answer)) throw new UnreadableProtobuf("not a protobuf answer")
  const top = new TopLevel(answer, 4)
  let rawStart = -1
  let rawEnd = -1
  while (top.at < answer.length) {
    const tag = top.varint()
    if (tag === 18) {
      rawEnd = top.end()
      rawStart = top.at
      top.at = rawEnd
    } else top.skip(tag & 7)
  }
  if (rawStart === -1) throw new UnreadableProtobuf("an answer without its object")
  let resourceVersion = ""
  let continueToken = ""
  /** Each item's start and end, in pairs. */
  const items: Array<number> = []
  top.at = rawStart
  while (top.at < rawEnd) {
    const tag = top.varint()
    if (tag === 10) {
      const metaEnd = top.end()
      while (top.at < metaEnd) {
        const metaTag = top.varint()
        if (metaTag === 18) resourceVersion = top.text(top.end())
        else if (metaTag === 26) continueToken = top.text(top.end())
        else top.skip(metaTag & 7)
      }
    } else if (tag === 18) {
      const itemEnd = top.end()
      items.push(top.at, itemEnd)
      top.at = itemEnd
    } else top.skip(tag & 7)
  }
  return {
    resourceVersion,
    continue: continueToken,
    size: items.length / 2,
    *items() {
      const decoder = new Decoder(prune)
      /** Where an item the socket split is copied to, grown to the largest such item. */
      let scratch = Buffer.alloc(0)
      let chunk = 0
      for (let index = 0; index < items.length; index += 2) {
        const start = items[index]!
        const end = items[index + 1]!
        // Items come in order: the chunk holding this one is this chunk or a later one.
        while (chunk + 1 < answer.starts.length && answer.starts[chunk + 1]! <= start) chunk++
        const chunkStart = answer.starts[chunk]!
        if (end - chunkStart <= answer.buffers[chunk]!.length) {
          decoder.bytes = answer.buffers[chunk]!
          decoder.at = start - chunkStart
          decoder.stop = end - chunkStart
        } else {
          if (scratch.length < end - start) scratch = Buffer.allocUnsafe(Math.max(end - start, 2 * scratch.length))
          answer.copy(scratch, 0, start, end)
          decoder.bytes = scratch
          decoder.at = 0
          decoder.stop = end - start
        }
        yield decoder.message(item, decoder.stop, itemLevel)
      }
    }
  }
}

/**
 * An error answer in protobuf (runtime.Unknown around a metav1.Status {message = 3,
 * reason = 4, code = 6}) as the JSON Status the API server would have sent, for the error
 * mapping that reads JSON; undefined when it is not one.
 */
export const protobufStatusJson = (answer: ByteChunks): string | undefined => {
  try {
    if (!isProtobufAnswer(answer)) return undefined
    const top = new TopLevel(answer, 4)
    let rawEnd = -1
    while (top.at < answer.length && rawEnd === -1) {
      const tag = top.varint()
      if (tag === 18) rawEnd = top.end()
      else top.skip(tag & 7)
    }
    if (rawEnd === -1) return undefined
    const status: { message?: string; reason?: string; code?: number } = {}
    while (top.at < rawEnd) {
      const tag = top.varint()
      if (tag === 26) status.message = top.text(top.end())
      else if (tag === 34) status.reason = top.text(top.end())
      else if (tag === 48) status.code = top.varint()
      else top.skip(tag & 7)
    }
    return JSON.stringify(status)
  } catch (error) {
    if (error instanceof UnreadableProtobuf) return undefined
    throw error
  }
}
