import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ByteChunks } from "../../src/services/kube/live/ByteChunks.ts"
import { splitList } from "../../src/services/kube/live/ListItems.ts"
import { builtInMessages } from "../../src/services/kube/protobuf/MessageSchema.ts"
import { decodeProtobufList, type ProtobufPrune, protobufStatusJson, UnreadableProtobuf } from "../../src/services/kube/protobuf/ProtobufList.ts"

/**
 * The protobuf list decoder on real answers of the cluster tier's API server (fixtures read
 * both ways, see their README) and on answers built here to reach what the API server does
 * not send on its own: each refusal, and the exact JSON of Time, IntOrString and numbers.
 * test/cluster/ProtobufLists.test.ts compares every built-in kind on the live API server.
 */
const fixtures = join(import.meta.dirname, "../fixtures/kube-protobuf")
const fixture = (name: string) => ({
  protobuf: readFileSync(join(fixtures, `${name}.pb`)),
  json: JSON.parse(readFileSync(join(fixtures, `${name}.json`), "utf8")) as { metadata: { resourceVersion: string }; items: Array<unknown> }
})
const schema = builtInMessages()
const message = (key: string) => schema.kinds.get(key)!

/** The answer cut in chunks of these sizes (repeated), as a socket may hand them over. */
const chunked = (bytes: Buffer, sizes: ReadonlyArray<number>) => {
  const chunks: Array<Buffer> = []
  for (let at = 0, index = 0; at < bytes.length; index++) {
    const size = Math.max(1, sizes[index % sizes.length]!)
    chunks.push(Buffer.from(bytes.subarray(at, at + size)))
    at += size
  }
  return new ByteChunks(chunks)
}
const chunkings = [[1], [7], [13, 1, 5, 64], [16384]]

const decodeAll = (answer: ByteChunks, key: string, prune?: ProtobufPrune) => {
  const page = decodeProtobufList(answer, message(key), prune)
  return { ...page, objects: [...page.items()] }
}

// A small protobuf writer, to build answers the API server would not send.
const varint = (value: number | bigint): Buffer => {
  let rest = BigInt.asUintN(64, BigInt(value))
  const bytes: Array<number> = []
  do {
    const low = Number(rest & 0x7fn)
    rest >>= 7n
    bytes.push(rest === 0n ? low : low | 0x80)
  } while (rest !== 0n)
  return Buffer.from(bytes)
}
const numberField = (field: number, value: number | bigint) => Buffer.concat([varint(field * 8), varint(value)])
const bytesField = (field: number, value: Buffer | string) => {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value
  return Buffer.concat([varint(field * 8 + 2), varint(bytes.length), bytes])
}
/** A List answer: "k8s\0", runtime.Unknown {raw = 2: List {metadata = 1, items = 2...}}. */
const listAnswer = (items: ReadonlyArray<Buffer>, continueToken = "") =>
  new ByteChunks([Buffer.concat([
    Buffer.from([0x6b, 0x38, 0x73, 0x00]),
    bytesField(1, Buffer.concat([bytesField(1, "v1"), bytesField(2, "PodList")])),
    bytesField(2, Buffer.concat([bytesField(1, Buffer.concat([bytesField(2, "42"), bytesField(3, continueToken)])), ...items.map((item) => bytesField(2, item))]))
  ])])
/** A Pod {metadata = 1 {name = 1, ...}, spec = 2, ...} with extra bytes in its metadata and its spec. */
const pod = (metadata: Buffer = Buffer.alloc(0), spec: Buffer = Buffer.alloc(0), rest: Buffer = Buffer.alloc(0)) =>
  Buffer.concat([bytesField(1, Buffer.concat([bytesField(1, "p"), metadata])), bytesField(2, spec), rest])
const onlyPod = (item: Buffer) => decodeAll(listAnswer([item]), "v1|Pod").objects[0] as Record<string, any>

describe("protobuf lists", () => {
  it("decodes the real API server's answers into exactly their JSON, however the socket cut them", () => {
    for (const [name, key] of [["pods", "v1|Pod"], ["nodes", "v1|Node"]] as const) {
      const { protobuf, json } = fixture(name)
      for (const sizes of chunkings) {
        const page = decodeAll(chunked(protobuf, sizes), key)
        expect(page.resourceVersion).toBe(json.metadata.resourceVersion)
        expect(page.size).toBe(json.items.length)
        expect(page.objects).toStrictEqual(json.items)
        // The same keys in the same order.
        expect(JSON.stringify(page.objects)).toBe(JSON.stringify(json.items))
      }
    }
  })

  it("leaves out what the scan does not read exactly as the JSON path does", () => {
    const { protobuf } = fixture("nodes")
    const jsonText = readFileSync(join(fixtures, "nodes.json"))
    for (const prune of [{ dropManagedFields: true }, { keepMembers: new Set(["spec"]) }, { dropManagedFields: true, keepMembers: new Set<string>() }]) {
      const split = splitList(jsonText, { ...(prune.dropManagedFields === true ? { dropManagedFields: true } : {}), ...(prune.keepMembers === undefined ? {} : { keepMembers: prune.keepMembers }) })!
      const fromJson = [...split.items()].map((text) => JSON.parse(text))
      const fromProtobuf = decodeAll(chunked(protobuf, [13, 1, 5, 64]), "v1|Node", prune).objects
      expect(JSON.stringify(fromProtobuf)).toBe(JSON.stringify(fromJson))
      // Something was left out.
      expect(JSON.stringify(fromProtobuf).length).toBeLessThan(JSON.stringify(fixture("nodes").json.items).length)
    }
  })

  it("reads the continue token and decodes items only when they are reached", () => {
    const answer = listAnswer([pod(), pod(), Buffer.from([0xff])], "next-page")
    const page = decodeProtobufList(answer, message("v1|Pod"))
    expect([page.size, page.continue, page.resourceVersion]).toEqual([3, "next-page", "42"])
    const items = page.items()
    expect(items.next().value).toMatchObject({ metadata: { name: "p" } })
    expect(items.next().value).toMatchObject({ metadata: { name: "p" } })
    // The third is broken: it throws when reached, not before.
    expect(() => items.next()).toThrow(UnreadableProtobuf)
  })

  it("writes absent and zero fields as encoding/json writes the Go struct", () => {
    const decoded = onlyPod(pod(Buffer.alloc(0), Buffer.concat([
      numberField(11, 0), // hostNetwork false: a plain bool with omitempty, left out
      numberField(27, 0), // shareProcessNamespace false: a pointer, kept
      numberField(4, 0) // terminationGracePeriodSeconds 0: a pointer, kept
    ])))
    expect(decoded.spec.hostNetwork).toBeUndefined()
    expect(decoded.spec.shareProcessNamespace).toBe(false)
    expect(decoded.spec.terminationGracePeriodSeconds).toBe(0)
    // containers has no omitempty: null when there are none; a struct is never left out.
    expect(decoded.spec.containers).toBeNull()
    expect(decoded.status).toEqual({})
    // creationTimestamp is omitzero (k8s.io/apimachinery v0.36).
    expect("creationTimestamp" in decoded.metadata).toBe(false)
  })

  it("writes times, int-or-strings and large numbers as the API server's JSON has them", () => {
    const time = (seconds: number | bigint) => bytesField(8, seconds === 0 ? Buffer.alloc(0) : numberField(1, seconds))
    const at = (seconds: number | bigint) => onlyPod(pod(time(seconds))).metadata.creationTimestamp
    expect(at(1_700_000_000)).toBe("2023-11-14T22:13:20Z")
    expect(at(-62135596800)).toBeUndefined() // Go's zero time: null, which omitzero leaves out
    expect(at(253402300799)).toBe("9999-12-31T23:59:59Z")
    expect(() => at(253402300800)).toThrow(/year 10000/u)
    // activeDeadlineSeconds (int64) past 2^53: the double JSON.parse gives for its digits.
    expect(onlyPod(pod(Buffer.alloc(0), numberField(5, 9007199254740993n))).spec.activeDeadlineSeconds).toBe(JSON.parse("9007199254740993"))
    // A negative int32 is ten bytes on the wire.
    const priority = onlyPod(pod(Buffer.alloc(0), numberField(25, -5))).spec.priority
    expect(priority).toBe(-5)
    // Container {name = 1, livenessProbe = 10 {handler = 1 {tcpSocket = 3 {port = 1}}}} with an IntOrString port.
    const probe = (port: Buffer) => bytesField(2, Buffer.concat([bytesField(1, "c"), bytesField(10, bytesField(1, bytesField(3, bytesField(1, port))))]))
    const portOf = (port: Buffer) => onlyPod(pod(Buffer.alloc(0), probe(port))).spec.containers[0].livenessProbe.tcpSocket.port
    expect(portOf(Buffer.concat([numberField(1, 0), numberField(2, 8080)]))).toBe(8080)
    expect(portOf(Buffer.concat([numberField(1, 1), bytesField(3, "http")]))).toBe("http")
    expect(() => portOf(numberField(1, 2))).toThrow(/IntOrString of type 2/u)
  })

  it("refuses what it cannot decode exactly, so the kind is read as JSON", () => {
    // A field this build does not know (an API server newer than its schema).
    expect(() => onlyPod(pod(Buffer.alloc(0), numberField(999, 1)))).toThrow(/field 999 of api\/core\/v1.PodSpec/u)
    // Invalid UTF-8: Go's JSON and JavaScript replace it differently.
    expect(() => onlyPod(pod(bytesField(3, Buffer.from([0x61, 0xe2, 0x82]))))).toThrow(/not UTF-8/u)
    // ... while a U+FFFD written as such is text like any other.
    expect(onlyPod(pod(bytesField(3, "a\uFFFD"))).metadata.namespace).toBe("a\uFFFD")
    // A wire type that does not fit the field, and lengths past the end.
    expect(() => onlyPod(pod(Buffer.alloc(0), bytesField(11, "x")))).toThrow(UnreadableProtobuf)
    expect(() => decodeAll(new ByteChunks([Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), varint(18), varint(1000)])]), "v1|Pod")).toThrow(/past the end/u)
    expect(() => decodeAll(new ByteChunks([Buffer.from("{\"items\":[]}")]), "v1|Pod")).toThrow(/not a protobuf answer/u)
  })

  it("reads an error answer in protobuf as the Status JSON the error mapping reads", () => {
    const status = new ByteChunks([Buffer.concat([
      Buffer.from([0x6b, 0x38, 0x73, 0x00]),
      bytesField(1, Buffer.concat([bytesField(1, "v1"), bytesField(2, "Status")])),
      bytesField(2, Buffer.concat([bytesField(2, "Failure"), bytesField(3, "the continue token has expired"), bytesField(4, "Expired"), numberField(6, 410)]))
    ])])
    expect(JSON.parse(protobufStatusJson(status)!)).toEqual({ message: "the continue token has expired", reason: "Expired", code: 410 })
    expect(protobufStatusJson(new ByteChunks([Buffer.from("{\"kind\":\"Status\"}")]))).toBeUndefined()
  })
})
