/**
 * `host:port` as the operator's bind flags take it: `:8443` (all interfaces),
 * `0.0.0.0:8443`, `127.0.0.1:0` (any free port), `[::1]:8443`. Undefined when malformed.
 */
export interface BindAddress {
  /** Undefined = every interface. */
  readonly host: string | undefined
  readonly port: number
}

export const parseBindAddress = (text: string): BindAddress | undefined => {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/u.exec(text.trim())
  if (match === null) return undefined
  const port = Number(match[3])
  if (port > 65_535) return undefined
  const host = match[1] ?? match[2] ?? ""
  return { host: host === "" ? undefined : host, port }
}
