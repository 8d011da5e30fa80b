import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import type * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { TLSSocket } from "node:tls"

/** A request as the fake API server received it. */
export interface ReceivedRequest {
  readonly method: string
  /** Path and query string. */
  readonly url: string
  readonly pathname: string
  readonly query: URLSearchParams
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  /** CN of the client certificate the server verified (with `clientCa`), if any. */
  readonly clientCommonName: string | undefined
  /** "aborted" when the client closed the connection before the response was complete. */
  readonly outcome: Promise<"completed" | "aborted">
}

export type Handler = (request: ReceivedRequest, response: http.ServerResponse) => void

export interface FakeApiServer {
  readonly url: string
  readonly received: ReadonlyArray<ReceivedRequest>
  /** The nth request (0-based), once it has arrived. */
  readonly request: (index: number) => Effect.Effect<ReceivedRequest>
}

export interface TestCertificate {
  readonly cert: string
  readonly key: string
}

/** A throwaway self-signed certificate for 127.0.0.1, made with the system's openssl. */
export const makeTestCertificate = (): TestCertificate => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-apiserver-cert-"))
  try {
    const keyFile = path.join(dir, "key.pem")
    const certFile = path.join(dir, "cert.pem")
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=fake-apiserver", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", keyFile, "-out", certFile
    ], { stdio: "ignore" })
    return { cert: fs.readFileSync(certFile, "utf8"), key: fs.readFileSync(keyFile, "utf8") }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Sends a JSON answer. */
export const json = (response: http.ServerResponse, status: number, body: unknown): void => {
  response.writeHead(status, { "Content-Type": "application/json" })
  response.end(JSON.stringify(body))
}

/** A metav1.Status error body as the API server sends it. */
export const status = (code: number, reason: string, message: string) => ({
  kind: "Status",
  apiVersion: "v1",
  metadata: {},
  status: "Failure",
  message,
  reason,
  code
})

/**
 * An HTTPS server on 127.0.0.1 answering with `handler`, closed with the scope. With
 * `clientCa` it asks for client certificates and reports the CN of those the CA signed (like
 * the API server, a request without one still reaches the handler).
 */
export const startFakeApiServer = (
  certificate: TestCertificate,
  handler: Handler,
  options: { readonly clientCa?: string } = {}
) =>
  Effect.acquireRelease(
    Effect.callback<{ server: https.Server; api: FakeApiServer }>((resume) => {
      const received: Array<ReceivedRequest> = []
      const waiting: Array<{ index: number; wake: () => void }> = []
      const tlsOptions = options.clientCa === undefined
        ? {}
        : { ca: options.clientCa, requestCert: true, rejectUnauthorized: false }
      const server = https.createServer({ cert: certificate.cert, key: certificate.key, ...tlsOptions }, (incoming, response) => {
        const chunks: Array<Buffer> = []
        incoming.on("data", (chunk: Buffer) => chunks.push(chunk))
        incoming.on("end", () => {
          const outcome = new Promise<"completed" | "aborted">((resolve) =>
            response.on("close", () => resolve(response.writableFinished ? "completed" : "aborted"))
          )
          const url = new URL(incoming.url ?? "/", "https://127.0.0.1")
          const socket = incoming.socket as TLSSocket
          const peer = socket.authorized ? socket.getPeerCertificate() : undefined
          const request: ReceivedRequest = {
            method: incoming.method ?? "",
            url: incoming.url ?? "",
            pathname: url.pathname,
            query: url.searchParams,
            headers: incoming.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            clientCommonName: peer?.subject?.CN === undefined ? undefined : String(peer.subject.CN),
            outcome
          }
          received.push(request)
          for (const waiter of waiting.filter((w) => w.index < received.length)) waiter.wake()
          handler(request, response)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          server,
          api: {
            url: `https://127.0.0.1:${port}`,
            received,
            request: (index) =>
              Effect.promise(() =>
                index < received.length
                  ? Promise.resolve(received[index]!)
                  : new Promise<ReceivedRequest>((resolve) =>
                    waiting.push({ index, wake: () => resolve(received[index]!) })
                  )
              )
          }
        }))
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ api }) => api))

/** Writes a kubeconfig for `server` trusting `certificate`, authenticating with `token`; returns its path. */
export const writeKubeconfig = (
  dir: string,
  options: { readonly server: string; readonly certificate: TestCertificate; readonly token: string }
): string => {
  const file = path.join(dir, "kubeconfig.yaml")
  const caData = Buffer.from(options.certificate.cert).toString("base64")
  fs.writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: fake",
      "  cluster:",
      `    server: ${options.server}`,
      `    certificate-authority-data: ${caData}`,
      "users:",
      "- name: operator",
      "  user:",
      `    token: ${options.token}`,
      "contexts:",
      "- name: fake",
      "  context:",
      "    cluster: fake",
      "    user: operator",
      "current-context: fake",
      ""
    ].join("\n")
  )
  return file
}
