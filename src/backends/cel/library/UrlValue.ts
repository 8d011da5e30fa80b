import type { CelTypedValue } from "../CelValue.ts"

/**
 * URLs for the Kubernetes CEL `url` library. Like Go's url.ParseRequestURI (which
 * Kubernetes uses) the text must be an absolute URI or an absolute path, and it is split
 * without normalising (no lower-casing, no default-port removal, no `..` resolution).
 */

/** RFC 3986 appendix B: scheme, authority, path, query, fragment. */
const uriPattern = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s
const schemePattern = /^[A-Za-z][A-Za-z0-9+.-]*$/

const hasInvalidEscape = (text: string): boolean => /%(?![0-9A-Fa-f]{2})/.test(text)

const decodeQueryPart = (text: string): string | undefined => {
  try {
    return decodeURIComponent(text.replaceAll("+", " "))
  } catch {
    return undefined
  }
}

export class UrlValue implements CelTypedValue {
  readonly scheme: string
  /** host[:port], without user info. */
  readonly host: string
  readonly path: string
  readonly rawQuery: string
  readonly text: string

  constructor(text: string, scheme: string, host: string, path: string, rawQuery: string) {
    this.text = text
    this.scheme = scheme
    this.host = host
    this.path = path
    this.rawQuery = rawQuery
  }

  get celTypeName(): string {
    return "kubernetes.URL"
  }

  static parse(text: string): UrlValue | undefined {
    // Control characters and spaces are never valid in a request URI.
    if (text === "" || /[\u0000-\u0020\u007f]/.test(text) || hasInvalidEscape(text)) return undefined
    const match = uriPattern.exec(text)
    if (!match) return undefined
    const [, scheme = "", authority, path = "", query = ""] = match
    if (scheme !== "" && !schemePattern.test(scheme)) return undefined
    if (scheme === "" && !text.startsWith("/")) return undefined
    const host = authority === undefined ? "" : authority.slice(authority.lastIndexOf("@") + 1)
    if (host.startsWith("[") && !/^\[[0-9A-Fa-f:.]+\](?::\d*)?$/.test(host)) return undefined
    return new UrlValue(text, scheme, host, path, query)
  }

  getHostname(): string {
    if (this.host.startsWith("[")) return this.host.slice(1, this.host.indexOf("]"))
    const colon = this.host.lastIndexOf(":")
    return colon < 0 ? this.host : this.host.slice(0, colon)
  }

  getPort(): string {
    const afterBracket = this.host.startsWith("[") ? this.host.slice(this.host.indexOf("]") + 1) : this.host
    const colon = afterBracket.lastIndexOf(":")
    return colon < 0 ? "" : afterBracket.slice(colon + 1)
  }

  /** Query parameters: each name with all its values, in order. Undecodable pairs are dropped. */
  getQuery(): Record<string, Array<string>> {
    const query: Record<string, Array<string>> = {}
    for (const pair of this.rawQuery.split("&")) {
      if (pair === "") continue
      const equals = pair.indexOf("=")
      const name = decodeQueryPart(equals < 0 ? pair : pair.slice(0, equals))
      const value = decodeQueryPart(equals < 0 ? "" : pair.slice(equals + 1))
      if (name === undefined || value === undefined) continue
      if (Object.hasOwn(query, name)) query[name]!.push(value)
      else Object.defineProperty(query, name, { value: [value], enumerable: true, writable: true })
    }
    return query
  }

  equals(other: unknown): boolean {
    return other instanceof UrlValue && other.toString() === this.toString()
  }

  toString(): string {
    return this.text
  }
}
