import { type Environment, EvaluationError } from "@marcbachmann/cel-js"
import { celCompare, celEquals, celTypeName, int64Max, int64Min } from "../CelValue.ts"
import { meteringFunctions, meteringUnits, textUnits } from "../CostInstrumentation.ts"
import { FormatError, formatString } from "./Format.ts"
import { CIDR, IPAddress } from "./IpAddress.ts"
import { Quantity } from "./Quantity.ts"
import { Re2Patterns, Re2SyntaxError } from "./Re2Patterns.ts"
import { UrlValue } from "./UrlValue.ts"

/**
 * The Kubernetes CEL libraries users know from ValidatingAdmissionPolicy, registered on a
 * @marcbachmann/cel-js Environment: lists, regex (RE2), url, quantity, ip/cidr, format,
 * sets, the strings extensions the engine lacks, and the metering functions that
 * CostInstrumentation inserts. Every function charges the cost meter for its input size.
 */
export interface LibraryServices {
  /** Charges the current evaluation's cost meter; throws when a bound is exhausted. */
  readonly charge: (units: number) => void
  readonly patterns: Re2Patterns
}

// Namespaces for `sets.contains(...)`, `lists.range(...)`, `strings.quote(...)` and `ip.isCanonical(...)`: the
// engine resolves `x.f()` on a constant of a registered type.
class SetsNamespace {}
class StringsNamespace {}
class IpNamespace {}
class ListsNamespace {}

/** What a macro sees of the engine's type checker and evaluator (see the package README). */
interface MacroChecker {
  readonly check: (node: unknown, context: unknown) => unknown
}
interface MacroEvaluator {
  readonly run: (node: unknown, context: unknown) => unknown
}

const fail = (message: string): never => {
  throw new EvaluationError(message)
}

/** Runs a library function, turning its own errors into CEL evaluation errors. */
const guarded = <A extends ReadonlyArray<any>, R>(handler: (...args: A) => R) => (...args: A): R => {
  try {
    return handler(...args)
  } catch (error) {
    if (error instanceof FormatError || error instanceof Re2SyntaxError) return fail(error.message)
    throw error
  }
}

const asList = (value: unknown): ReadonlyArray<unknown> => (Array.isArray(value) ? value : value instanceof Set ? [...value] : fail(`expected a list, got ${celTypeName(value)}`))

const orderOf = (left: unknown, right: unknown, what: string): number =>
  celCompare(left, right) ?? fail(`${what}: cannot compare ${celTypeName(left)} with ${celTypeName(right)}`)

const sumOf = (list: ReadonlyArray<unknown>): unknown => {
  if (list.length === 0) return 0n
  if (list.every((item) => typeof item === "bigint")) {
    const total = (list as ReadonlyArray<bigint>).reduce((sum, item) => sum + item, 0n)
    return total > int64Max || total < int64Min ? fail("sum: integer overflow") : total
  }
  if (list.every((item) => typeof item === "number")) return (list as ReadonlyArray<number>).reduce((sum, item) => sum + item, 0)
  return fail(`sum: the list must hold only ints or only doubles, got ${[...new Set(list.map(celTypeName))].join(", ")}`)
}

const extreme = (list: ReadonlyArray<unknown>, name: string, sign: 1 | -1): unknown => {
  if (list.length === 0) return fail(`${name}: the list is empty`)
  let best = list[0]
  for (const item of list.slice(1)) if (sign * orderOf(item, best, name) > 0) best = item
  return best
}

const indexOf = (list: ReadonlyArray<unknown>, value: unknown, fromEnd: boolean): bigint => {
  if (fromEnd) {
    for (let index = list.length - 1; index >= 0; index--) if (celEquals(list[index], value)) return BigInt(index)
  } else {
    for (let index = 0; index < list.length; index++) if (celEquals(list[index], value)) return BigInt(index)
  }
  return -1n
}

const containsAll = (container: ReadonlyArray<unknown>, items: ReadonlyArray<unknown>): boolean =>
  items.every((item) => container.some((candidate) => celEquals(candidate, item)))

const parsed = <T>(value: T | undefined, what: string, text: string): T => value ?? fail(`${what}: invalid value ${JSON.stringify(text)}`)

export const registerKubernetesLibrary = (env: Environment, services: LibraryServices): void => {
  const { charge, patterns } = services
  const define = (signature: string, handler: (...args: Array<any>) => unknown) =>
    env.registerFunction(signature, guarded(handler), { async: false })

  // Metering (inserted by CostInstrumentation, not meant for users). Macros, not functions:
  // a function call on a dyn value makes the engine work out the value's type deeply at
  // run time, which cost more than the evaluation itself; a macro runs its argument as is.
  const meteringMacro = (units: (value: unknown) => number) => ({ args }: { readonly args: ReadonlyArray<unknown> }) => ({
    argument: args[0],
    async: false,
    typeCheck: (checker: MacroChecker, macro: { readonly argument: unknown }, context: unknown) => checker.check(macro.argument, context),
    evaluate: (evaluator: MacroEvaluator, macro: { readonly argument: unknown }, context: unknown) => {
      const value = evaluator.run(macro.argument, context)
      charge(units(value))
      return value
    }
  })
  env.registerFunction(`${meteringFunctions.iterate}(ast): dyn`, meteringMacro(meteringUnits.iterate))
  env.registerFunction(`${meteringFunctions.size}(ast): dyn`, meteringMacro(meteringUnits.built))

  // Regular expressions: RE2 syntax and linear-time matching.
  const matches = (text: string, pattern: string) => {
    charge(textUnits(text))
    return patterns.matches(text, pattern)
  }
  define(`${meteringFunctions.matches}(string, string): bool`, matches)
  define("matches(string, string): bool", matches)
  define("string.find(string): string", (text: string, pattern: string) => {
    charge(textUnits(text))
    return patterns.find(text, pattern)
  })
  define("string.findAll(string): list<string>", (text: string, pattern: string) => {
    charge(textUnits(text))
    return patterns.findAll(text, pattern)
  })
  define("string.findAll(string, int): list<string>", (text: string, pattern: string, limit: bigint) => {
    charge(textUnits(text))
    return patterns.findAll(text, pattern, Number(limit))
  })

  // Strings extensions the engine does not have.
  define("string.charAt(int): string", (text: string, index: bigint) => {
    const position = Number(index)
    if (position < 0 || position > text.length) return fail(`charAt: index ${index} out of range`)
    return text.charAt(position)
  })
  define("string.replace(string, string): string", (text: string, search: string, replacement: string) => {
    charge(textUnits(text))
    return text.replaceAll(search, () => replacement)
  })
  define("string.replace(string, string, int): string", (text: string, search: string, replacement: string, limit: bigint) => {
    charge(textUnits(text))
    if (limit < 0n) return text.replaceAll(search, () => replacement)
    let result = text
    let from = 0
    for (let count = 0n; count < limit; count++) {
      const at = result.indexOf(search, from)
      if (at < 0) break
      result = result.slice(0, at) + replacement + result.slice(at + search.length)
      from = at + replacement.length + (search === "" ? 1 : 0)
    }
    return result
  })
  define("string.reverse(): string", (text: string) => {
    charge(textUnits(text))
    return [...text].reverse().join("")
  })
  define("string.format(list): string", (template: string, args: ReadonlyArray<unknown>) => {
    charge(textUnits(template) + args.length)
    const output = formatString(template, args)
    charge(textUnits(output))
    return output
  })
  env.registerType("StringsNamespace", StringsNamespace)
  env.registerConstant("strings", "StringsNamespace", new StringsNamespace())
  define("StringsNamespace.quote(string): string", (_namespace: StringsNamespace, text: string) => {
    charge(textUnits(text))
    return JSON.stringify(text)
  })

  // Lists.
  define("list<A>.isSorted(): bool", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length)
    for (let index = 1; index < list.length; index++) if (orderOf(list[index - 1], list[index], "isSorted") > 0) return false
    return true
  })
  define("list<A>.sum(): A", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length)
    return sumOf(list)
  })
  define("list<A>.min(): A", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length)
    return extreme(list, "min", -1)
  })
  define("list<A>.max(): A", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length)
    return extreme(list, "max", 1)
  })
  define("list<A>.indexOf(A): int", (list: ReadonlyArray<unknown>, value: unknown) => {
    charge(1 + list.length)
    return indexOf(list, value, false)
  })
  define("list<A>.lastIndexOf(A): int", (list: ReadonlyArray<unknown>, value: unknown) => {
    charge(1 + list.length)
    return indexOf(list, value, true)
  })
  define("list<A>.slice(int, int): list<A>", (list: ReadonlyArray<unknown>, start: bigint, end: bigint) => {
    charge(1 + list.length)
    if (start < 0n || end < start || end > BigInt(list.length)) return fail(`slice: invalid range [${start}, ${end}) for a list of ${list.length}`)
    return list.slice(Number(start), Number(end))
  })
  define("list<A>.reverse(): list<A>", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length)
    return [...list].reverse()
  })
  define("list<A>.distinct(): list<A>", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length * list.length)
    const distinct: Array<unknown> = []
    for (const item of list) if (!distinct.some((seen) => celEquals(seen, item))) distinct.push(item)
    return distinct
  })
  define("list<A>.sort(): list<A>", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length * Math.max(1, Math.ceil(Math.log2(list.length + 1))))
    return [...list].sort((left, right) => orderOf(left, right, "sort"))
  })
  env.registerType("ListsNamespace", ListsNamespace)
  env.registerConstant("lists", "ListsNamespace", new ListsNamespace())
  define("ListsNamespace.range(int): list<int>", (_namespace: ListsNamespace, count: bigint) => {
    if (count < 0n) return fail(`lists.range: negative count ${count}`)
    charge(1 + Number(count))
    return Array.from({ length: Number(count) }, (_, index) => BigInt(index))
  })
  define("list.flatten(): list", (list: ReadonlyArray<unknown>) => {
    charge(1 + list.length)
    const flat = list.flatMap((item) => (Array.isArray(item) ? item : [item]))
    charge(flat.length)
    return flat
  })

  // Sets (lists compared as sets, with CEL equality).
  env.registerType("SetsNamespace", SetsNamespace)
  env.registerConstant("sets", "SetsNamespace", new SetsNamespace())
  const setOperation = (operation: (a: ReadonlyArray<unknown>, b: ReadonlyArray<unknown>) => boolean) =>
    (_namespace: SetsNamespace, left: unknown, right: unknown) => {
      const a = asList(left)
      const b = asList(right)
      charge(1 + a.length * b.length)
      return operation(a, b)
    }
  define("SetsNamespace.contains(list, list): bool", setOperation(containsAll))
  define("SetsNamespace.equivalent(list, list): bool", setOperation((a, b) => containsAll(a, b) && containsAll(b, a)))
  define("SetsNamespace.intersects(list, list): bool", setOperation((a, b) => b.some((item) => a.some((candidate) => celEquals(candidate, item)))))

  // URLs.
  env.registerType("kubernetes.URL", UrlValue)
  define("url(string): kubernetes.URL", (text: string) => parsed(UrlValue.parse(text), "url", text))
  define("isURL(string): bool", (text: string) => UrlValue.parse(text) !== undefined)
  define("kubernetes.URL.getScheme(): string", (url: UrlValue) => url.scheme)
  define("kubernetes.URL.getHost(): string", (url: UrlValue) => url.host)
  define("kubernetes.URL.getHostname(): string", (url: UrlValue) => url.getHostname())
  define("kubernetes.URL.getPort(): string", (url: UrlValue) => url.getPort())
  define("kubernetes.URL.getEscapedPath(): string", (url: UrlValue) => url.path)
  define("kubernetes.URL.getQuery(): map<string, list<string>>", (url: UrlValue) => url.getQuery())
  define("string(kubernetes.URL): string", (url: UrlValue) => url.toString())

  // IP addresses and CIDR ranges.
  env.registerType("net.IP", IPAddress)
  env.registerType("net.CIDR", CIDR)
  env.registerType("IpNamespace", IpNamespace)
  env.registerConstant("ip", "IpNamespace", new IpNamespace())
  const ipOf = (text: string) => parsed(IPAddress.parse(text), "ip", text)
  const cidrOf = (text: string) => parsed(CIDR.parse(text), "cidr", text)
  define("ip(string): net.IP", ipOf)
  define("isIP(string): bool", (text: string) => IPAddress.parse(text) !== undefined)
  define("IpNamespace.isCanonical(string): bool", (_namespace: IpNamespace, text: string) => {
    ipOf(text)
    return IPAddress.isCanonical(text)
  })
  define("net.IP.family(): int", (address: IPAddress) => BigInt(address.family))
  define("net.IP.isUnspecified(): bool", (address: IPAddress) => address.isUnspecified())
  define("net.IP.isLoopback(): bool", (address: IPAddress) => address.isLoopback())
  define("net.IP.isLinkLocalMulticast(): bool", (address: IPAddress) => address.isLinkLocalMulticast())
  define("net.IP.isLinkLocalUnicast(): bool", (address: IPAddress) => address.isLinkLocalUnicast())
  define("net.IP.isGlobalUnicast(): bool", (address: IPAddress) => address.isGlobalUnicast())
  define("string(net.IP): string", (address: IPAddress) => address.toString())
  define("cidr(string): net.CIDR", cidrOf)
  define("isCIDR(string): bool", (text: string) => CIDR.parse(text) !== undefined)
  define("net.CIDR.containsIP(net.IP): bool", (range: CIDR, address: IPAddress) => range.containsIP(address))
  define("net.CIDR.containsIP(string): bool", (range: CIDR, text: string) => range.containsIP(ipOf(text)))
  define("net.CIDR.containsCIDR(net.CIDR): bool", (range: CIDR, other: CIDR) => range.containsCIDR(other))
  define("net.CIDR.containsCIDR(string): bool", (range: CIDR, text: string) => range.containsCIDR(cidrOf(text)))
  define("net.CIDR.ip(): net.IP", (range: CIDR) => range.address)
  define("net.CIDR.masked(): net.CIDR", (range: CIDR) => range.masked())
  define("net.CIDR.prefixLength(): int", (range: CIDR) => BigInt(range.prefixLength))
  define("string(net.CIDR): string", (range: CIDR) => range.toString())
  env.registerOperator("net.IP == net.IP", (a: IPAddress, b: IPAddress) => a.equals(b))
  env.registerOperator("net.CIDR == net.CIDR", (a: CIDR, b: CIDR) => a.equals(b))

  // Quantities.
  env.registerType("kubernetes.Quantity", Quantity)
  const quantityOf = (text: string) => parsed(Quantity.parse(text), "quantity", text)
  define("quantity(string): kubernetes.Quantity", quantityOf)
  define("isQuantity(string): bool", (text: string) => Quantity.parse(text) !== undefined)
  define("kubernetes.Quantity.isInteger(): bool", (quantity: Quantity) => quantity.isInteger())
  define("kubernetes.Quantity.asInteger(): int", (quantity: Quantity) =>
    quantity.asInteger() ?? fail(`asInteger: ${quantity} is not an integer in the int64 range`)
  )
  define("kubernetes.Quantity.asApproximateFloat(): double", (quantity: Quantity) => quantity.asApproximateFloat())
  define("kubernetes.Quantity.sign(): int", (quantity: Quantity) => quantity.sign())
  define("kubernetes.Quantity.add(kubernetes.Quantity): kubernetes.Quantity", (a: Quantity, b: Quantity) => a.add(b))
  define("kubernetes.Quantity.add(int): kubernetes.Quantity", (a: Quantity, b: bigint) => a.add(Quantity.fromInteger(b)))
  define("kubernetes.Quantity.sub(kubernetes.Quantity): kubernetes.Quantity", (a: Quantity, b: Quantity) => a.sub(b))
  define("kubernetes.Quantity.sub(int): kubernetes.Quantity", (a: Quantity, b: bigint) => a.sub(Quantity.fromInteger(b)))
  define("kubernetes.Quantity.isGreaterThan(kubernetes.Quantity): bool", (a: Quantity, b: Quantity) => a.compareTo(b) > 0)
  define("kubernetes.Quantity.isLessThan(kubernetes.Quantity): bool", (a: Quantity, b: Quantity) => a.compareTo(b) < 0)
  define("kubernetes.Quantity.compareTo(kubernetes.Quantity): int", (a: Quantity, b: Quantity) => BigInt(a.compareTo(b)))
  env.registerOperator("kubernetes.Quantity == kubernetes.Quantity", (a: Quantity, b: Quantity) => a.equals(b))
}
