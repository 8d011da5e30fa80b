import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto"
import { readFile } from "node:fs/promises"
import { createSecureContext } from "node:tls"
import { Effect } from "effect"
import { FalcoCredentialsInvalid } from "./FalcoErrors.ts"

/**
 * Reads and checks a certificate, its key and a CA bundle before any connection is tried,
 * so that a bad Secret is reported as what it is (missing file, not PEM, expired, key of
 * another certificate) instead of an opaque handshake error. Read on every call: mounted
 * Secrets are rotated in place.
 */

/** A file and the flag that names it, so messages say which setting to fix. */
export interface ConfiguredFile {
  readonly flag: string
  readonly path: string | undefined
}

export interface CertificateSet {
  readonly cert: Buffer
  readonly key: Buffer
  readonly ca: Buffer
  /** Subject of the certificate, for messages. */
  readonly subject: string
  readonly validTo: Date
}

const pemBlocks = (text: string, label: string): ReadonlyArray<string> =>
  text.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, "gu")) ?? []

const invalid = (message: string) => new FalcoCredentialsInvalid({ message })

const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const readConfigured = (file: ConfiguredFile) =>
  Effect.gen(function*() {
    if (file.path === undefined || file.path === "") return yield* invalid(`${file.flag} is not set`)
    const path = file.path
    return yield* Effect.tryPromise({
      try: () => readFile(path),
      catch: (cause) => invalid(`cannot read ${file.flag} (${path}): ${errorText(cause)}`)
    })
  })

const parseCertificates = (file: ConfiguredFile, content: Buffer) =>
  Effect.gen(function*() {
    const blocks = pemBlocks(content.toString("utf8"), "CERTIFICATE")
    if (blocks.length === 0) return yield* invalid(`${file.flag} (${file.path}) holds no PEM certificate`)
    return yield* Effect.try({
      try: () => blocks.map((block) => new X509Certificate(block)),
      catch: (cause) => invalid(`${file.flag} (${file.path}) is not a valid PEM certificate: ${errorText(cause)}`)
    })
  })

const checkValidity = (file: ConfiguredFile, certificate: X509Certificate, now: number) => {
  if (now > certificate.validToDate.getTime()) {
    return Effect.fail(
      invalid(`the certificate in ${file.flag} (${certificate.subject}) expired on ${certificate.validToDate.toISOString()}`)
    )
  }
  if (now < certificate.validFromDate.getTime()) {
    return Effect.fail(
      invalid(`the certificate in ${file.flag} (${certificate.subject}) is not valid before ${certificate.validFromDate.toISOString()}`)
    )
  }
  return Effect.void
}

const parseKey = (file: ConfiguredFile, content: Buffer) =>
  Effect.try({
    try: (): KeyObject => createPrivateKey(content),
    catch: (cause) => invalid(`${file.flag} (${file.path}) is not a valid PEM private key: ${errorText(cause)}`)
  })

/**
 * Reads `certFile`, `keyFile` and `caFile`, checks that each parses, that the certificate
 * is valid at `now` (epoch ms) and that the key belongs to it.
 */
export const loadCertificateSet = (files: {
  readonly certFile: ConfiguredFile
  readonly keyFile: ConfiguredFile
  readonly caFile: ConfiguredFile
}, now: number): Effect.Effect<CertificateSet, FalcoCredentialsInvalid> =>
  Effect.gen(function*() {
    const [cert, key, ca] = yield* Effect.all([
      readConfigured(files.certFile),
      readConfigured(files.keyFile),
      readConfigured(files.caFile)
    ])
    const [leaf] = yield* parseCertificates(files.certFile, cert)
    yield* parseCertificates(files.caFile, ca)
    yield* checkValidity(files.certFile, leaf!, now)
    const privateKey = yield* parseKey(files.keyFile, key)
    if (!leaf!.checkPrivateKey(privateKey)) {
      return yield* invalid(
        `the key in ${files.keyFile.flag} (${files.keyFile.path}) does not belong to the certificate in ${files.certFile.flag} (${leaf!.subject})`
      )
    }
    // Last word to OpenSSL itself (unsupported algorithms and the like).
    yield* Effect.try({
      try: () => createSecureContext({ cert, key, ca }),
      catch: (cause) => invalid(`OpenSSL refused ${files.certFile.flag}/${files.keyFile.flag}/${files.caFile.flag}: ${errorText(cause)}`)
    })
    return { cert, key, ca, subject: leaf!.subject.replaceAll("\n", ", "), validTo: leaf!.validToDate }
  })
