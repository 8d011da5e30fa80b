import forge from "node-forge"
import { generateKeyPair, randomBytes } from "node:crypto"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Effect, Schema, type Scope } from "effect"

/**
 * Throwaway certificates for the simulated Falco, the demo, tests and the bench: a CA, a
 * server certificate and a client certificate, made in process with node-forge and keys from
 * Node's crypto (no `openssl` binary), written to a temporary directory that is removed when
 * the Scope closes. Never for production.
 */

export class CertificateGenerationFailed extends Schema.TaggedError<CertificateGenerationFailed>()(
  "CertificateGenerationFailed",
  { message: Schema.String }
) {}

/** A certificate and its key, as files (for flags) and as PEM text (for in-process servers). */
export interface CertificateFiles {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: string
  readonly key: string
}

export interface IssueOptions {
  /** File stem inside the directory (`<name>.crt`, `<name>.key`); must be unique. */
  readonly name: string
  readonly commonName: string
  readonly usage: "server" | "client"
  /** DNS names and IP addresses for a server certificate (default localhost, 127.0.0.1, ::1). */
  readonly dnsNames?: ReadonlyArray<string>
  readonly ipAddresses?: ReadonlyArray<string>
  /** Validity (default: from one hour ago for `validDays` days). Past dates make an expired certificate. */
  readonly notBefore?: Date
  readonly notAfter?: Date
}

export interface TestCertificates {
  readonly dir: string
  /** The CA: `certFile` is the bundle both sides trust. */
  readonly ca: CertificateFiles
  readonly server: CertificateFiles
  readonly client: CertificateFiles
  /** Issues one more certificate from the same CA (an expired client, another server name). */
  readonly issue: (options: IssueOptions) => Effect.Effect<CertificateFiles, CertificateGenerationFailed>
}

export interface TestCertificatesOptions {
  /** CN of the CA; two sets with different CNs are two unrelated CAs. */
  readonly caCommonName?: string
  readonly serverDnsNames?: ReadonlyArray<string>
  readonly serverIpAddresses?: ReadonlyArray<string>
  readonly clientCommonName?: string
  readonly validDays?: number
}

const generateKeyPairAsync = promisify(generateKeyPair)
const defaultDnsNames = ["localhost"]
const defaultIpAddresses = ["127.0.0.1", "::1"]
const hourMillis = 3_600_000
const dayMillis = 24 * hourMillis

const certificateEffect = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new CertificateGenerationFailed({ message: `${what}: ${String(cause)}` })
  })

/** The CA's certificate and key, kept as forge objects to sign with. */
interface Issuer {
  readonly certificate: forge.pki.Certificate
  readonly key: forge.pki.rsa.PrivateKey
}

interface KeyPair {
  readonly publicKey: forge.pki.rsa.PublicKey
  readonly privateKey: forge.pki.rsa.PrivateKey
  /** PKCS#8 PEM, which Node's TLS (and Falco's gRPC client) read. */
  readonly privateKeyPem: string
}

/** RSA 2048 made by Node's native crypto (forge's pure-JavaScript generator is slow). */
const generateKeys = () =>
  certificateEffect("generating a key", async (): Promise<KeyPair> => {
    const { publicKey, privateKey } = await generateKeyPairAsync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" }
    })
    return {
      publicKey: forge.pki.publicKeyFromPem(publicKey),
      privateKey: forge.pki.privateKeyFromPem(privateKey),
      privateKeyPem: privateKey
    }
  })

/** A random positive serial: certificates of separate runs must never look like the same one. */
const randomSerial = () => {
  const bytes = randomBytes(16)
  bytes[0] = bytes[0]! & 0x7f
  return bytes.toString("hex")
}

/** forge's GeneralName types: 2 = dNSName, 7 = iPAddress. */
const extensionsFor = (options: IssueOptions): ReadonlyArray<object> => {
  const common = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: true }
  ]
  if (options.usage === "client") {
    return [...common, { name: "keyUsage", critical: true, digitalSignature: true }, { name: "extKeyUsage", clientAuth: true }]
  }
  return [
    ...common,
    { name: "keyUsage", critical: true, digitalSignature: true, keyEncipherment: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        ...(options.dnsNames ?? defaultDnsNames).map((value) => ({ type: 2, value })),
        ...(options.ipAddresses ?? defaultIpAddresses).map((ip) => ({ type: 7, ip }))
      ]
    }
  ]
}

interface CertificateSpec {
  readonly commonName: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly extensions: ReadonlyArray<object>
}

/** Signs a certificate for `keys`; self-signed when there is no issuer. */
const sign = (spec: CertificateSpec, keys: KeyPair, issuer: Issuer | undefined) =>
  certificateEffect(`signing ${spec.commonName}`, async () => {
    const certificate = forge.pki.createCertificate()
    certificate.publicKey = keys.publicKey
    certificate.serialNumber = randomSerial()
    certificate.validity.notBefore = spec.notBefore
    certificate.validity.notAfter = spec.notAfter
    certificate.setSubject([{ name: "commonName", value: spec.commonName }])
    certificate.setIssuer(issuer === undefined ? certificate.subject.attributes : issuer.certificate.subject.attributes)
    // forge fills `keyIdentifier: true` with the subject's own key id; the authority is the issuer.
    certificate.setExtensions(spec.extensions.map((extension) =>
      "keyIdentifier" in extension && issuer !== undefined
        ? { ...extension, keyIdentifier: issuer.certificate.generateSubjectKeyIdentifier().getBytes() }
        : extension
    ))
    certificate.sign(issuer?.key ?? keys.privateKey, forge.md.sha256.create())
    return certificate
  })

/** Writes `<name>.crt` and `<name>.key` (owner-only) into the directory. */
const writePair = (dir: string, name: string, certificate: forge.pki.Certificate, keys: KeyPair) =>
  certificateEffect(`writing ${name}`, async (): Promise<CertificateFiles> => {
    const certFile = join(dir, `${name}.crt`)
    const keyFile = join(dir, `${name}.key`)
    const cert = forge.pki.certificateToPem(certificate)
    await writeFile(certFile, cert)
    await writeFile(keyFile, keys.privateKeyPem, { mode: 0o600 })
    return { certFile, keyFile, cert, key: keys.privateKeyPem }
  })

const issueFrom = (dir: string, issuer: Issuer, validDays: number) => (options: IssueOptions) =>
  Effect.gen(function*() {
    // Real wall-clock time on purpose: TLS peers check validity against it, not a test clock.
    const now = Date.now()
    const keys = yield* generateKeys()
    const certificate = yield* sign({
      commonName: options.commonName,
      notBefore: options.notBefore ?? new Date(now - hourMillis),
      notAfter: options.notAfter ?? new Date(now + validDays * dayMillis),
      extensions: extensionsFor(options)
    }, keys, issuer)
    return yield* writePair(dir, options.name, certificate, keys)
  })

/**
 * A fresh CA with a server certificate (for localhost by default) and a client
 * certificate, in a temporary directory removed when the Scope closes.
 */
export const generateTestCertificates = (
  options: TestCertificatesOptions = {}
): Effect.Effect<TestCertificates, CertificateGenerationFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const validDays = options.validDays ?? 2
    const dir = yield* Effect.acquireRelease(
      certificateEffect("creating a temporary directory", () => mkdtemp(join(tmpdir(), "falco-certs-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
    )
    const now = Date.now()
    const caKeys = yield* generateKeys()
    const caCertificate = yield* sign({
      commonName: options.caCommonName ?? "falco-test-ca",
      notBefore: new Date(now - hourMillis),
      notAfter: new Date(now + validDays * dayMillis),
      extensions: [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", critical: true, keyCertSign: true, cRLSign: true },
        { name: "subjectKeyIdentifier" }
      ]
    }, caKeys, undefined)
    const ca = yield* writePair(dir, "ca", caCertificate, caKeys)
    const issue = issueFrom(dir, { certificate: caCertificate, key: caKeys.privateKey }, validDays)
    const [server, client] = yield* Effect.all([
      issue({
        name: "server",
        commonName: "falco-test-server",
        usage: "server",
        dnsNames: options.serverDnsNames ?? defaultDnsNames,
        ipAddresses: options.serverIpAddresses ?? defaultIpAddresses
      }),
      issue({ name: "client", commonName: options.clientCommonName ?? "compliance-scan", usage: "client" })
    ], { concurrency: 2 })
    return { dir, ca, server, client, issue }
  })
