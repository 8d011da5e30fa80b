import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Schema, type Scope } from "effect"

/**
 * Throwaway certificates for the simulated Falco, the demo, tests and the bench: a CA, a
 * server certificate and a client certificate made with the `openssl` command line in a
 * temporary directory that is removed when the Scope closes. Never for production.
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

const defaultDnsNames = ["localhost"]
const defaultIpAddresses = ["127.0.0.1", "::1"]
const hourMillis = 3_600_000
const dayMillis = 24 * hourMillis

const runOpenssl = (dir: string, args: ReadonlyArray<string>) =>
  Effect.callback<void, CertificateGenerationFailed>((resume) => {
    execFile("openssl", [...args], { cwd: dir }, (error, _stdout, stderr) => {
      if (error === null) resume(Effect.void)
      else resume(Effect.fail(new CertificateGenerationFailed({ message: `openssl ${args[0]} failed: ${stderr.trim() || error.message}` })))
    })
  })

const fileEffect = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new CertificateGenerationFailed({ message: `${what}: ${String(cause)}` })
  })

/** `openssl ca` wants GeneralizedTime-like `YYYYMMDDHHMMSSZ`. */
const opensslTime = (date: Date): string => date.toISOString().replace(/[-:T]/gu, "").replace(/\.\d+Z$/u, "Z")

const extensionsFor = (options: IssueOptions): string => {
  const common = [
    "basicConstraints = critical,CA:FALSE",
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid"
  ]
  if (options.usage === "client") {
    return [...common, "keyUsage = critical,digitalSignature", "extendedKeyUsage = clientAuth"].join("\n")
  }
  const names = [
    ...(options.dnsNames ?? defaultDnsNames).map((name) => `DNS:${name}`),
    ...(options.ipAddresses ?? defaultIpAddresses).map((address) => `IP:${address}`)
  ]
  return [
    ...common,
    "keyUsage = critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage = serverAuth",
    `subjectAltName = ${names.join(",")}`
  ].join("\n")
}

/**
 * One `openssl ca` invocation with its own config and database file, so that issuing
 * several certificates at once from the same CA never shares state.
 */
const issueFrom = (dir: string, ca: CertificateFiles, validDays: number) => (options: IssueOptions) =>
  Effect.gen(function*() {
    const name = options.name
    // Real wall-clock time on purpose: TLS peers check validity against it, not a test clock.
    const now = Date.now()
    const notBefore = options.notBefore ?? new Date(now - hourMillis)
    const notAfter = options.notAfter ?? new Date(now + validDays * dayMillis)
    const config = [
      "[ca]",
      "default_ca = issuer",
      "[issuer]",
      `database = ${name}.index`,
      `serial = ${name}.serial`,
      "new_certs_dir = .",
      "default_md = sha256",
      "policy = any_name",
      "unique_subject = no",
      "copy_extensions = none",
      "[any_name]",
      "commonName = supplied",
      "[extensions]",
      extensionsFor(options),
      ""
    ].join("\n")
    yield* fileEffect("writing the openssl config", async () => {
      await writeFile(join(dir, `${name}.cnf`), config)
      await writeFile(join(dir, `${name}.index`), "")
      // A random serial: certificates of separate runs must never look like the same one.
      await writeFile(join(dir, `${name}.serial`), `${randomBytes(16).toString("hex")}\n`)
    })
    yield* runOpenssl(dir, [
      "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${options.commonName}`
    ])
    yield* runOpenssl(dir, [
      "ca", "-batch", "-notext", "-config", `${name}.cnf`,
      "-cert", ca.certFile, "-keyfile", ca.keyFile, "-in", `${name}.csr`, "-out", `${name}.crt`,
      "-extensions", "extensions",
      "-startdate", opensslTime(notBefore), "-enddate", opensslTime(notAfter)
    ])
    return yield* readPair(dir, name)
  })

const readPair = (dir: string, name: string) =>
  fileEffect(`reading ${name}`, async (): Promise<CertificateFiles> => {
    const certFile = join(dir, `${name}.crt`)
    const keyFile = join(dir, `${name}.key`)
    return { certFile, keyFile, cert: await readFile(certFile, "utf8"), key: await readFile(keyFile, "utf8") }
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
      fileEffect("creating a temporary directory", () => mkdtemp(join(tmpdir(), "falco-certs-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
    )
    yield* runOpenssl(dir, [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", "ca.key", "-out", "ca.crt", "-days", String(validDays),
      "-subj", `/CN=${options.caCommonName ?? "falco-test-ca"}`,
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign"
    ])
    const ca = yield* readPair(dir, "ca")
    const issue = issueFrom(dir, ca, validDays)
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
