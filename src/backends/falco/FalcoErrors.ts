import { Schema } from "effect"

/**
 * Why the Falco backend could not collect. Each tag is also its `reason`, the run's
 * `status.reason` (ScanFailed.from), so the reason codes live in one place:
 *
 * - `FalcoCredentialsInvalid`: a client certificate, key or CA file is not set, missing,
 *   unreadable, not PEM, expired or not yet valid, or the key does not match the certificate.
 * - `FalcoTLSHandshakeFailed`: the TLS handshake with Falco failed: the server rejected our
 *   client certificate (unknown CA, expired on its clock) or we rejected its certificate
 *   (wrong CA, name mismatch, expired).
 * - `FalcoStreamFailed`: connected, but a gRPC call (version, outputs stream) ended with an
 *   error status (not Falco on that port, server error, connection lost mid-stream).
 * - `FalcoSpecInvalid`: `spec.falco` cannot be used (a window that is not a duration).
 *
 * `FalcoEndpointUnreachable` (refused, DNS, connect timeout) is not a failure: the run
 * Succeeds with the `falco-endpoint-unreachable` skip check.
 */
export class FalcoCredentialsInvalid extends Schema.TaggedError<FalcoCredentialsInvalid>()("FalcoCredentialsInvalid", {
  message: Schema.String
}) {
  get reason(): "FalcoCredentialsInvalid" {
    return this._tag
  }
}

export class FalcoTLSHandshakeFailed extends Schema.TaggedError<FalcoTLSHandshakeFailed>()("FalcoTLSHandshakeFailed", {
  message: Schema.String
}) {
  get reason(): "FalcoTLSHandshakeFailed" {
    return this._tag
  }
}

export class FalcoStreamFailed extends Schema.TaggedError<FalcoStreamFailed>()("FalcoStreamFailed", {
  message: Schema.String
}) {
  get reason(): "FalcoStreamFailed" {
    return this._tag
  }
}

export class FalcoSpecInvalid extends Schema.TaggedError<FalcoSpecInvalid>()("FalcoSpecInvalid", {
  message: Schema.String
}) {
  get reason(): "FalcoSpecInvalid" {
    return this._tag
  }
}

export class FalcoEndpointUnreachable extends Schema.TaggedError<FalcoEndpointUnreachable>()("FalcoEndpointUnreachable", {
  message: Schema.String
}) {}

/** Errors that end a run Failed; their tag is the reason code. */
export type FalcoScanError = FalcoCredentialsInvalid | FalcoTLSHandshakeFailed | FalcoStreamFailed | FalcoSpecInvalid
