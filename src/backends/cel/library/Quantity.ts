import { type CelTypedValue, int64Max, int64Min } from "../CelValue.ts"

/**
 * Kubernetes resource quantities (`500m`, `1.5Gi`, `1e3`) as exact rationals, for the
 * Kubernetes CEL `quantity` library. Unlike resource.Quantity this keeps full precision
 * (no rounding up to nano units); comparisons and sums are exact.
 */

const binarySuffixes: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n
}

const decimalExponents: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 }

/** Exponents beyond this are rejected: 10^huge as a bigint would be a cheap denial of service. */
const maxExponent = 1000

const grammar = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE]?))$/

const absolute = (value: bigint): bigint => (value < 0n ? -value : value)

const greatestCommonDivisor = (a: bigint, b: bigint): bigint => {
  let x = absolute(a)
  let y = absolute(b)
  while (y !== 0n) [x, y] = [y, x % y]
  return x
}

export class Quantity implements CelTypedValue {
  readonly numerator: bigint
  /** Always positive; the fraction is kept reduced. */
  readonly denominator: bigint
  readonly text: string

  constructor(numerator: bigint, denominator: bigint, text?: string) {
    const divisor = greatestCommonDivisor(numerator, denominator) || 1n
    const sign = denominator < 0n ? -1n : 1n
    this.numerator = (sign * numerator) / divisor
    this.denominator = (sign * denominator) / divisor
    this.text = text ?? Quantity.#format(this.numerator, this.denominator)
  }

  get celTypeName(): string {
    return "kubernetes.Quantity"
  }

  static parse(text: string): Quantity | undefined {
    const match = grammar.exec(text)
    if (!match) return undefined
    const [, sign, number, exponentSuffix, binarySuffix, decimalSuffix] = match
    const [whole = "", fraction = ""] = number!.split(".")
    let numerator = BigInt((whole || "0") + fraction) * (sign === "-" ? -1n : 1n)
    let denominator = 10n ** BigInt(fraction.length)
    let exponent = 0
    if (exponentSuffix !== undefined) exponent = Number(exponentSuffix.slice(1))
    else if (binarySuffix !== undefined) numerator *= binarySuffixes[binarySuffix]!
    else exponent = decimalExponents[decimalSuffix ?? ""]!
    if (Math.abs(exponent) > maxExponent) return undefined
    if (exponent >= 0) numerator *= 10n ** BigInt(exponent)
    else denominator *= 10n ** BigInt(-exponent)
    return new Quantity(numerator, denominator, text)
  }

  static fromInteger(value: bigint): Quantity {
    return new Quantity(value, 1n)
  }

  static #format(numerator: bigint, denominator: bigint): string {
    if (denominator === 1n) return numerator.toString()
    return `${numerator}/${denominator}`
  }

  isInteger(): boolean {
    return this.denominator === 1n
  }

  /** The integer value, or undefined when it has a fraction or does not fit an int64. */
  asInteger(): bigint | undefined {
    if (!this.isInteger() || this.numerator > int64Max || this.numerator < int64Min) return undefined
    return this.numerator
  }

  asApproximateFloat(): number {
    return Number(this.numerator) / Number(this.denominator)
  }

  sign(): bigint {
    return this.numerator > 0n ? 1n : this.numerator < 0n ? -1n : 0n
  }

  add(other: Quantity): Quantity {
    return new Quantity(
      this.numerator * other.denominator + other.numerator * this.denominator,
      this.denominator * other.denominator
    )
  }

  sub(other: Quantity): Quantity {
    return this.add(new Quantity(-other.numerator, other.denominator))
  }

  compareTo(other: Quantity): number {
    const difference = this.numerator * other.denominator - other.numerator * this.denominator
    return difference > 0n ? 1 : difference < 0n ? -1 : 0
  }

  equals(other: unknown): boolean {
    return other instanceof Quantity && this.compareTo(other) === 0
  }

  toString(): string {
    return this.text
  }
}
