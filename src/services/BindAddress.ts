import { Result, Schema } from "effect"

/** A bind flag that is not `host:port`, `:port`, `[v6]:port` or `0`. */
export class InvalidBindAddress extends Schema.TaggedError<InvalidBindAddress>()("InvalidBindAddress", {
  address: Schema.String,
  message: Schema.String
}) {}

/**
 * `host:port` as every bind flag of the operator takes it (metrics, health probes, the Falco
 * receiver): `:8443` (every interface, IPv4 and IPv6), `0.0.0.0:8443`, `127.0.0.1:0` (any
 * free port), `[::1]:8443`.
 */
export interface BindAddress {
  /** Undefined = every interface. */
  readonly host: string | undefined
  readonly port: number
}

/** The one parser of bind flags. `0` turns the endpoint off (controller-runtime's convention): `undefined`. */
export const parseBindAddress = (text: string): Result.Result<BindAddress | undefined, InvalidBindAddress> => {
  const address = text.trim()
  if (address === "0") return Result.succeed(undefined)
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/u.exec(address)
  const port = Number(match?.[3])
  if (match === null || port > 65_535) {
    return Result.fail(
      new InvalidBindAddress({
        address: text,
        message: `invalid bind address ${JSON.stringify(text)}: expected host:port, :port, [v6]:port or 0`
      })
    )
  }
  const host = match[1] ?? match[2] ?? ""
  return Result.succeed({ host: host === "" ? undefined : host, port })
}
