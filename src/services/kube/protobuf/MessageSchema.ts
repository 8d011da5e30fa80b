import { readFileSync } from "node:fs"
import { join } from "node:path"

/**
 * How the protobuf encoding of a built-in kind maps onto the JSON the API server sends for
 * the same object, read from built-in-messages.json (written by scripts/protobuf-schema from
 * k8s.io/api's Go types: JSON names, omitempty, pointers, embedded structs are struct tags,
 * not in the .proto files).
 */

/** What a field's value is, on the wire and in JSON. */
export const ValueKind = {
  String: 0,
  Bool: 1,
  Int32: 2,
  Int64: 3,
  /** []byte: base64 in JSON. */
  Bytes: 4,
  Message: 5,
  /** metav1.Time: RFC 3339 seconds in JSON, null when zero. */
  Time: 6,
  /** resource.Quantity: its canonical string. */
  Quantity: 7,
  /** intstr.IntOrString: a number or a string. */
  IntOrString: 8,
  /** runtime.RawExtension, metav1.FieldsV1: JSON bytes. */
  RawJson: 9,
  Map: 10
} as const
export type ValueKind = (typeof ValueKind)[keyof typeof ValueKind]

export interface Field {
  readonly json: string
  readonly kind: ValueKind
  /** A map's value kind; the field's kind otherwise. */
  readonly valueKind: ValueKind
  /** The message of a Message field or of a map's Message values. */
  readonly message: Message | undefined
  readonly repeated: boolean
  readonly pointer: boolean
  /** An embedded struct: its fields are the enclosing object's. */
  readonly inline: boolean
  readonly omitEmpty: boolean
  readonly omitZero: boolean
  /** Index in its message's `fields` (Go declaration order, the order of JSON keys). */
  readonly slot: number
}

export interface Message {
  readonly name: string
  readonly fields: ReadonlyArray<Field>
  /** Fields by protobuf field number. */
  readonly byNumber: ReadonlyArray<Field | undefined>
}

interface FieldEntry {
  readonly json?: string
  readonly number: number
  readonly type: string
  readonly mapValue?: string
  readonly repeated?: boolean
  readonly pointer?: boolean
  readonly inline?: boolean
  readonly omitEmpty?: boolean
  readonly omitZero?: boolean
}

interface SchemaFile {
  readonly from: string
  readonly kinds: Readonly<Record<string, string>>
  readonly messages: Readonly<Record<string, ReadonlyArray<FieldEntry>>>
}

const scalarKinds: Readonly<Record<string, ValueKind>> = {
  string: ValueKind.String,
  bool: ValueKind.Bool,
  int32: ValueKind.Int32,
  int64: ValueKind.Int64,
  bytes: ValueKind.Bytes,
  time: ValueKind.Time,
  quantity: ValueKind.Quantity,
  intOrString: ValueKind.IntOrString,
  rawJson: ValueKind.RawJson,
  map: ValueKind.Map
}

export interface MessageSchema {
  /** The k8s.io/api version the schema was generated from. */
  readonly from: string
  /** The message of a kind's objects, by `<apiVersion>|<kind>` (`v1|Pod`, `apps/v1|Deployment`). */
  readonly kinds: ReadonlyMap<string, Message>
}

/** Links the file's messages; throws on a file this decoder does not understand. */
export const linkSchema = (file: SchemaFile): MessageSchema => {
  const messages = new Map<string, { name: string; fields: Array<Field>; byNumber: Array<Field | undefined> }>()
  for (const name of Object.keys(file.messages)) messages.set(name, { name, fields: [], byNumber: [] })
  const kindOf = (type: string): { kind: ValueKind; message: Message | undefined } => {
    const scalar = scalarKinds[type]
    if (scalar !== undefined) return { kind: scalar, message: undefined }
    const message = messages.get(type)
    if (message === undefined) throw new Error(`protobuf schema: unknown type ${type}`)
    return { kind: ValueKind.Message, message }
  }
  for (const [name, entries] of Object.entries(file.messages)) {
    const message = messages.get(name)!
    for (const entry of entries) {
      const own = kindOf(entry.type)
      const value = entry.mapValue === undefined ? own : kindOf(entry.mapValue)
      const field: Field = {
        json: entry.json ?? "",
        kind: own.kind,
        valueKind: value.kind,
        message: value.message,
        repeated: entry.repeated === true,
        pointer: entry.pointer === true,
        inline: entry.inline === true,
        omitEmpty: entry.omitEmpty === true,
        omitZero: entry.omitZero === true,
        slot: message.fields.length
      }
      message.fields.push(field)
      message.byNumber[entry.number] = field
    }
  }
  const kinds = new Map<string, Message>()
  for (const [key, name] of Object.entries(file.kinds)) kinds.set(key, kindOf(name).message!)
  return { from: file.from, kinds }
}

let shipped: MessageSchema | undefined

/** The message of a resource's objects, if the schema has it. */
export const messageOfResource = (schema: MessageSchema, resource: { readonly apiVersion: string; readonly kind: string }): Message | undefined =>
  schema.kinds.get(`${resource.apiVersion}|${resource.kind}`)

/** The schema shipped with this build (read once, on first use). */
export const builtInMessages = (): MessageSchema =>
  shipped ??= linkSchema(JSON.parse(readFileSync(join(import.meta.dirname, "built-in-messages.json"), "utf8")) as SchemaFile)
