/**
 * An answer's bytes as the socket handed them over, read as one range without being joined.
 * Joining a 6 MiB list page into one buffer took 26-28 ms: every page was a fresh mapping
 * under the image's MALLOC_MMAP_THRESHOLD_ (which lets freed pages go back to the system),
 * and most of that time was page faults. The chunks (at most 16 KiB, one TLS record each)
 * come from the heap instead.
 *
 * Offsets are over the whole answer. Reads within one chunk take the direct path; those
 * across a boundary (a key or an item split by the socket) copy the pieces.
 */
export class ByteChunks {
  readonly buffers: ReadonlyArray<Buffer>
  /** Where each chunk starts in the whole answer. */
  readonly starts: ReadonlyArray<number>
  readonly length: number

  constructor(buffers: ReadonlyArray<Buffer>) {
    const kept = buffers.filter((buffer) => buffer.length > 0)
    const starts: Array<number> = []
    let length = 0
    for (const buffer of kept) {
      starts.push(length)
      length += buffer.length
    }
    this.buffers = kept
    this.starts = starts
    this.length = length
  }

  /** The chunk holding offset `at` (0 <= at < length). */
  chunkOf(at: number): number {
    let low = 0
    let high = this.starts.length - 1
    while (low < high) {
      const middle = (low + high + 1) >> 1
      if (this.starts[middle]! <= at) low = middle
      else high = middle - 1
    }
    return low
  }

  /** The byte at `at`, or -1 outside the answer. */
  byteAt(at: number): number {
    if (at < 0 || at >= this.length) return -1
    const chunk = this.chunkOf(at)
    return this.buffers[chunk]![at - this.starts[chunk]!]!
  }

  /** Copies [from, to) into `target` at `targetStart`; returns the bytes copied. */
  copy(target: Uint8Array, targetStart: number, from: number, to: number): number {
    let copied = 0
    for (let chunk = from < to ? this.chunkOf(from) : this.buffers.length; chunk < this.buffers.length && from + copied < to; chunk++) {
      const buffer = this.buffers[chunk]!
      const start = this.starts[chunk]!
      const begin = from + copied - start
      const end = Math.min(buffer.length, to - start)
      copied += buffer.copy(target, targetStart + copied, begin, end)
    }
    return copied
  }

  /** [from, to) as bytes of its own when it spans chunks, else a view of its chunk. */
  slice(from: number, to: number): Buffer {
    if (from >= to) return Buffer.alloc(0)
    const chunk = this.chunkOf(from)
    const start = this.starts[chunk]!
    const buffer = this.buffers[chunk]!
    if (to - start <= buffer.length) return buffer.subarray(from - start, to - start)
    const joined = Buffer.allocUnsafe(to - from)
    this.copy(joined, 0, from, to)
    return joined
  }

  /** [from, to) decoded as UTF-8; the whole answer by default. */
  text(from = 0, to = this.length): string {
    return this.slice(from, to).toString("utf8")
  }

  /** Whether [from, to) holds exactly `bytes` (compared in place within a chunk: keys are compared for every item). */
  equals(from: number, to: number, bytes: Uint8Array): boolean {
    if (to - from !== bytes.length) return false
    if (from >= to) return true
    const chunk = this.chunkOf(from)
    const start = this.starts[chunk]!
    const buffer = this.buffers[chunk]!
    if (to - start <= buffer.length) return buffer.compare(bytes, 0, bytes.length, from - start, to - start) === 0
    return Buffer.compare(this.slice(from, to), bytes) === 0
  }

  /** The first offset from `at` on whose byte is not a blank (JSON whitespace or a control byte), or `length`. */
  skipBlanks(at: number): number {
    let next = at
    while (next < this.length && this.byteAt(next) <= 0x20) next++
    return next
  }

  /** Whether [from, to) holds `byte`. */
  includes(from: number, to: number, byte: number): boolean {
    return this.slice(from, to).indexOf(byte) !== -1
  }
}
