import type { CelTypedValue } from "../CelValue.ts"

/**
 * IP addresses and CIDR ranges for the Kubernetes CEL `ip` and `cidr` libraries, with Go's
 * net/netip rules as Kubernetes applies them: dotted-quad IPv4 without leading zeros,
 * IPv6 with `::` and a trailing IPv4 part, no zones, and no IPv4-mapped IPv6 addresses.
 */

type Family = 4 | 6

const bitsOf = (family: Family): bigint => (family === 4 ? 32n : 128n)

const parseIPv4 = (text: string): bigint | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  let value = 0n
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined
    const octet = Number(part)
    if (octet > 255) return undefined
    value = (value << 8n) | BigInt(octet)
  }
  return value
}

const parseGroups = (text: string): Array<number> | undefined => {
  if (text === "") return []
  const groups: Array<number> = []
  const parts = text.split(":")
  for (const [index, part] of parts.entries()) {
    if (index === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part)
      if (v4 === undefined) return undefined
      groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn))
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined
      groups.push(Number.parseInt(part, 16))
    }
  }
  return groups
}

const parseIPv6 = (text: string): bigint | undefined => {
  if (text.includes("%")) return undefined
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const head = parseGroups(halves[0]!)
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : []
  if (head === undefined || tail === undefined) return undefined
  const missing = 8 - head.length - tail.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined
  let value = 0n
  for (const group of [...head, ...new Array<number>(missing).fill(0), ...tail]) value = (value << 16n) | BigInt(group)
  return value
}

const formatIPv4 = (value: bigint): string =>
  [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString()).join(".")

/** RFC 5952: lower case, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
const formatIPv6 = (value: bigint): string => {
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((value >> shift) & 0xffffn))
  let bestStart = -1
  let bestLength = 1
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start++
      continue
    }
    let end = start
    while (end < 8 && groups[end] === 0) end++
    if (end - start > bestLength) {
      bestStart = start
      bestLength = end - start
    }
    start = end
  }
  const hex = (list: Array<number>) => list.map((group) => group.toString(16)).join(":")
  if (bestStart < 0) return hex(groups)
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`
}

export class IPAddress implements CelTypedValue {
  readonly family: Family
  readonly value: bigint

  constructor(family: Family, value: bigint) {
    this.family = family
    this.value = value
  }

  get celTypeName(): string {
    return "net.IP"
  }

  /** Undefined when the text is not an address Kubernetes' `ip()` accepts. */
  static parse(text: string): IPAddress | undefined {
    if (text.includes(":")) {
      const value = parseIPv6(text)
      // IPv4-mapped IPv6 (::ffff:a.b.c.d) is refused, as Kubernetes does: it hides an IPv4 address.
      if (value === undefined || value >> 32n === 0xffffn) return undefined
      return new IPAddress(6, value)
    }
    const value = parseIPv4(text)
    return value === undefined ? undefined : new IPAddress(4, value)
  }

  static isCanonical(text: string): boolean {
    return IPAddress.parse(text)?.toString() === text
  }

  isUnspecified(): boolean {
    return this.value === 0n
  }

  isLoopback(): boolean {
    return this.family === 4 ? this.value >> 24n === 127n : this.value === 1n
  }

  isMulticast(): boolean {
    return this.family === 4 ? this.value >> 28n === 0xen : this.value >> 120n === 0xffn
  }

  isLinkLocalMulticast(): boolean {
    if (this.family === 4) return this.value >> 8n === 0xe00000n
    return this.value >> 120n === 0xffn && ((this.value >> 112n) & 0xfn) === 2n
  }

  isLinkLocalUnicast(): boolean {
    return this.family === 4 ? this.value >> 16n === 0xa9fen : this.value >> 118n === 0x3fan
  }

  /** Go's IsGlobalUnicast: everything routable, private ranges included. */
  isGlobalUnicast(): boolean {
    if (this.family === 4 && this.value === 0xffffffffn) return false
    return !this.isUnspecified() && !this.isLoopback() && !this.isMulticast() && !this.isLinkLocalUnicast()
  }

  equals(other: unknown): boolean {
    return other instanceof IPAddress && other.family === this.family && other.value === this.value
  }

  toString(): string {
    return this.family === 4 ? formatIPv4(this.value) : formatIPv6(this.value)
  }
}

export class CIDR implements CelTypedValue {
  readonly address: IPAddress
  readonly prefixLength: number

  constructor(address: IPAddress, prefixLength: number) {
    this.address = address
    this.prefixLength = prefixLength
  }

  get celTypeName(): string {
    return "net.CIDR"
  }

  static parse(text: string): CIDR | undefined {
    const slash = text.indexOf("/")
    if (slash < 0) return undefined
    const address = IPAddress.parse(text.slice(0, slash))
    const prefixText = text.slice(slash + 1)
    if (address === undefined || !/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined
    const prefixLength = Number(prefixText)
    if (prefixLength > Number(bitsOf(address.family))) return undefined
    return new CIDR(address, prefixLength)
  }

  #hostBits(): bigint {
    return bitsOf(this.address.family) - BigInt(this.prefixLength)
  }

  containsIP(address: IPAddress): boolean {
    const hostBits = this.#hostBits()
    return address.family === this.address.family && address.value >> hostBits === this.address.value >> hostBits
  }

  containsCIDR(other: CIDR): boolean {
    return other.prefixLength >= this.prefixLength && this.containsIP(other.address)
  }

  masked(): CIDR {
    const hostBits = this.#hostBits()
    return new CIDR(new IPAddress(this.address.family, (this.address.value >> hostBits) << hostBits), this.prefixLength)
  }

  equals(other: unknown): boolean {
    return other instanceof CIDR && other.prefixLength === this.prefixLength && other.address.equals(this.address)
  }

  toString(): string {
    return `${this.address}/${this.prefixLength}`
  }
}
