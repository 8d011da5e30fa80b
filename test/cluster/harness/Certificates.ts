import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** Files of a throwaway PKI for one control plane (openssl, EC P-256: fast to generate). */
export interface Certificates {
  readonly caCert: string
  readonly caKey: string
  /** Serving certificate for localhost / 127.0.0.1 (API server and kwok), signed by the CA. */
  readonly servingCert: string
  readonly servingKey: string
  /** Signs and verifies ServiceAccount tokens. */
  readonly serviceAccountKey: string
  /** PEM text of the CA certificate. */
  readonly caPem: string
}

const openssl = (dir: string, args: ReadonlyArray<string>) => {
  try {
    execFileSync("openssl", [...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? ""
    throw new Error(`openssl ${args.join(" ")} failed: ${(error as Error).message}\n${stderr}`)
  }
}

export const makeCertificates = (dir: string): Certificates => {
  const file = (name: string) => join(dir, name)
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  openssl(dir, [
    "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7", "-subj", "/CN=cluster-tests-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"
  ])
  openssl(dir, ["req", ...ec, "-keyout", "serving.key", "-out", "serving.csr", "-subj", "/CN=localhost"])
  writeFileSync(
    file("serving.ext"),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=DNS:localhost,IP:127.0.0.1"
    ].join("\n") + "\n"
  )
  openssl(dir, [
    "x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", "serving.crt", "-days", "7", "-extfile", "serving.ext"
  ])
  openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "service-account.key"])
  return {
    caCert: file("ca.crt"),
    caKey: file("ca.key"),
    servingCert: file("serving.crt"),
    servingKey: file("serving.key"),
    serviceAccountKey: file("service-account.key"),
    caPem: readFileSync(file("ca.crt"), "utf8")
  }
}
