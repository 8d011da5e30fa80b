import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { stringify } from "yaml"
import { generateTestCertificates } from "../../../sim/falco/TestCertificates.ts"
import { makeAgent, makeHttpTransport, readText } from "../../../src/services/kube/live/HttpTransport.ts"
import {
  defaultKubeConfigEnvironment,
  type KubeConfigEnvironment,
  type KubeConfigOptions,
  loadKubeConfig
} from "../../../src/services/kube/live/LoadKubeConfig.ts"
import { type Handler, json, type ReceivedRequest, startFakeApiServer, status } from "../support/FakeApiServer.ts"

// Every authentication form of a kubeconfig against a real TLS server (certificates from the
// simulations' CA), through the same loader, agent and transport as the operator's client.

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "kubeconfig-auth-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const ok: Handler = (_, response) => json(response, 200, { kind: "Namespace", apiVersion: "v1", metadata: { name: "default" } })

/** Answers 401 unless the request carries `Bearer <accepted()>`. */
const acceptingToken = (accepted: () => string): Handler => (request, response) =>
  request.headers.authorization === `Bearer ${accepted()}`
    ? ok(request, response)
    : json(response, 401, status(401, "Unauthorized", "Unauthorized"))

interface KubeconfigParts {
  readonly cluster: Record<string, unknown>
  readonly user?: Record<string, unknown>
}

/** A one-context kubeconfig in `dir`. */
const writeKubeconfig = (dir: string, parts: KubeconfigParts, name = "kubeconfig.yaml") => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "test", cluster: parts.cluster }],
    users: [{ name: "operator", user: parts.user ?? {} }],
    contexts: [{ name: "test", context: { cluster: "test", user: "operator" } }],
    "current-context": "test"
  }))
  return file
}

const environment = (overrides: Partial<KubeConfigEnvironment> = {}): KubeConfigEnvironment => ({
  ...defaultKubeConfigEnvironment(),
  env: {},
  ...overrides
})

/** Loads the configuration and returns a GET through the operator's transport and agent. */
const connect = (options: KubeConfigOptions, env: KubeConfigEnvironment = environment()) =>
  Effect.gen(function*() {
    const loaded = yield* loadKubeConfig(options, env)
    const agent = yield* Effect.acquireRelease(Effect.sync(() => makeAgent(loaded)), (agent) => Effect.sync(() => agent.destroy()))
    const send = makeHttpTransport(loaded, agent)
    return (requestPath = "/api/v1/namespaces/default") =>
      Effect.tryPromise(async () => {
        const response = await send({ method: "GET", path: requestPath }, AbortSignal.timeout(10_000))
        return { status: response.statusCode, body: await readText(response) }
      })
  })

const loadError = (options: KubeConfigOptions, env: KubeConfigEnvironment = environment()) =>
  loadKubeConfig(options, env).pipe(Effect.flip)

const lastRequest = (received: ReadonlyArray<ReceivedRequest>) => received.at(-1)!

/** A small exec credential plugin: prints an ExecCredential, counts its runs, saves KUBERNETES_EXEC_INFO. */
const pluginScript = `
import fs from "node:fs"
const [runsFile, infoFile] = process.argv.slice(2)
fs.appendFileSync(runsFile, "x")
fs.writeFileSync(infoFile, process.env.KUBERNETES_EXEC_INFO ?? "")
if (process.env.PLUGIN_FAIL === "1") { console.error("plugin says: no credentials for this user"); process.exit(3) }
const run = fs.readFileSync(runsFile, "utf8").length
const status = process.env.PLUGIN_CERT
  ? { clientCertificateData: fs.readFileSync(process.env.PLUGIN_CERT, "utf8"), clientKeyData: fs.readFileSync(process.env.PLUGIN_KEY, "utf8") }
  : { token: process.env.PLUGIN_TOKEN + "-" + run }
if (process.env.PLUGIN_EXPIRED === "1") status.expirationTimestamp = new Date(Date.now() - 60000).toISOString()
console.log(JSON.stringify({ apiVersion: process.env.PLUGIN_API_VERSION, kind: "ExecCredential", status }))
`

const writePlugin = (dir: string) => {
  const script = path.join(dir, "plugin.mjs")
  fs.writeFileSync(script, pluginScript)
  const runsFile = path.join(dir, "runs")
  fs.writeFileSync(runsFile, "")
  const infoFile = path.join(dir, "exec-info.json")
  const runs = () => fs.readFileSync(runsFile, "utf8").length
  const exec = (apiVersion: string, env: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    apiVersion,
    command: process.execPath,
    args: [script, runsFile, infoFile],
    env: Object.entries({ PLUGIN_API_VERSION: apiVersion, ...env }).map(([name, value]) => ({ name, value })),
    ...extra
  })
  return { exec, runs, info: () => JSON.parse(fs.readFileSync(infoFile, "utf8")) as { spec: Record<string, unknown> } }
}

describe("kubeconfig authentication", () => {
  it.live("client certificate and key, as files relative to the kubeconfig and as data, authenticate over TLS", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates({ clientCommonName: "operator-client" })
      const server = yield* startFakeApiServer(certs.server, ok, { clientCa: certs.ca.cert })
      const dir = yield* tempDir
      fs.copyFileSync(certs.client.certFile, path.join(dir, "client.crt"))
      fs.copyFileSync(certs.client.keyFile, path.join(dir, "client.key"))
      const cluster = { server: server.url, "certificate-authority": certs.ca.certFile }

      const fromFiles = writeKubeconfig(dir, { cluster, user: { "client-certificate": "client.crt", "client-key": "client.key" } })
      const get = yield* connect({ kubeconfig: fromFiles })
      assert.strictEqual((yield* get()).status, 200)
      assert.strictEqual(lastRequest(server.received).clientCommonName, "operator-client")
      assert.isUndefined(lastRequest(server.received).headers.authorization)

      const base64 = (file: string) => fs.readFileSync(file).toString("base64")
      const fromData = writeKubeconfig(dir, {
        cluster,
        user: { "client-certificate-data": base64(certs.client.certFile), "client-key-data": base64(certs.client.keyFile) }
      }, "data.yaml")
      assert.strictEqual((yield* (yield* connect({ kubeconfig: fromData }))()).status, 200)
      assert.strictEqual(lastRequest(server.received).clientCommonName, "operator-client")

      // A key that does not belong to the certificate is refused when loading.
      const other = yield* certs.issue({ name: "other", commonName: "other", usage: "client" })
      const mismatched = writeKubeconfig(dir, {
        cluster,
        user: { "client-certificate": certs.client.certFile, "client-key": other.keyFile }
      }, "mismatched.yaml")
      const error = yield* loadError({ kubeconfig: mismatched })
      assert.strictEqual(error._tag, "KubeConfigError")
      assert.include(error.message, mismatched)
      assert.include(error.message, "client certificate/key")
    }))

  it.live("tls-server-name verifies the certificate under that name; insecure-skip-tls-verify skips verification", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      const named = yield* certs.issue({ name: "named", commonName: "api", usage: "server", dnsNames: ["api.internal"], ipAddresses: [] })
      const server = yield* startFakeApiServer(named, acceptingToken(() => "t"))
      const dir = yield* tempDir
      const cluster = { server: server.url, "certificate-authority": certs.ca.certFile }

      const withoutName = yield* connect({ kubeconfig: writeKubeconfig(dir, { cluster, user: { token: "t" } }, "a.yaml") })
      const refused = yield* withoutName().pipe(Effect.flip)
      assert.match(String(refused.cause), /altnames|IP: 127\.0\.0\.1/i)

      const withName = writeKubeconfig(dir, { cluster: { ...cluster, "tls-server-name": "api.internal" }, user: { token: "t" } }, "b.yaml")
      assert.strictEqual((yield* (yield* connect({ kubeconfig: withName }))()).status, 200)

      const insecure = writeKubeconfig(dir, { cluster: { server: server.url, "insecure-skip-tls-verify": true }, user: { token: "t" } }, "c.yaml")
      assert.strictEqual((yield* (yield* connect({ kubeconfig: insecure }))()).status, 200)
    }))

  it.live("username/password send basic auth; as and as-groups send impersonation headers", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      const server = yield* startFakeApiServer(certs.server, ok)
      const dir = yield* tempDir
      const kubeconfig = writeKubeconfig(dir, {
        cluster: { server: server.url, "certificate-authority": certs.ca.certFile },
        user: { username: "admin", password: "s3cret", as: "jane", "as-groups": ["auditors", "viewers"] }
      })
      assert.strictEqual((yield* (yield* connect({ kubeconfig }))()).status, 200)
      const headers = lastRequest(server.received).headers
      assert.strictEqual(headers.authorization, `Basic ${Buffer.from("admin:s3cret").toString("base64")}`)
      assert.strictEqual(headers["impersonate-user"], "jane")
      assert.strictEqual(headers["impersonate-group"], "auditors, viewers")
    }))

  it.live("a token file is read again after its refresh period, and at once when the server answers 401", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      let accepted = "first"
      const server = yield* startFakeApiServer(certs.server, acceptingToken(() => accepted))
      const dir = yield* tempDir
      const tokenFile = path.join(dir, "token")
      fs.writeFileSync(tokenFile, "first\n")
      const kubeconfig = writeKubeconfig(dir, {
        cluster: { server: server.url, "certificate-authority": certs.ca.certFile },
        user: { tokenFile: "token" }
      })

      // Refresh period 0: every request reads the file.
      const eager = yield* connect({ kubeconfig }, environment({ tokenFileRefreshMillis: 0 }))
      assert.strictEqual((yield* eager()).status, 200)
      fs.writeFileSync(tokenFile, "second")
      accepted = "second"
      const before = server.received.length
      assert.strictEqual((yield* eager()).status, 200)
      assert.strictEqual(server.received.length, before + 1, "the new token went out with the first request")

      // The default minute: the old token is used until the server refuses it, then the file is read again.
      const lazy = yield* connect({ kubeconfig })
      assert.strictEqual((yield* lazy()).status, 200)
      fs.writeFileSync(tokenFile, "third")
      accepted = "third"
      const start = server.received.length
      assert.strictEqual((yield* lazy()).status, 200)
      assert.deepStrictEqual(
        server.received.slice(start).map((request) => request.headers.authorization),
        ["Bearer second", "Bearer third"]
      )

      // A token that is not accepted after the re-read is the server's answer.
      accepted = "fourth"
      assert.strictEqual((yield* lazy()).status, 401)
    }))

  it.live("an exec plugin (v1) gets its env, args and KUBERNETES_EXEC_INFO; its token is cached and renewed on 401", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      let accepted = "exec-token-1"
      const server = yield* startFakeApiServer(certs.server, acceptingToken(() => accepted))
      const dir = yield* tempDir
      const plugin = writePlugin(dir)
      const kubeconfig = writeKubeconfig(dir, {
        cluster: {
          server: server.url,
          "certificate-authority": certs.ca.certFile,
          extensions: [{ name: "client.authentication.k8s.io/exec", extension: { audience: "operator" } }]
        },
        user: {
          exec: plugin.exec("client.authentication.k8s.io/v1", { PLUGIN_TOKEN: "exec-token" }, {
            interactiveMode: "Never",
            provideClusterInfo: true
          })
        }
      })
      const get = yield* connect({ kubeconfig })
      assert.strictEqual(plugin.runs(), 1, "run once when loading")
      assert.strictEqual((yield* get()).status, 200)
      assert.strictEqual((yield* get()).status, 200)
      assert.strictEqual(plugin.runs(), 1, "no expiration: the credential is cached")
      const spec = plugin.info().spec
      assert.strictEqual(spec.interactive, false)
      const cluster = spec.cluster as Record<string, unknown>
      assert.strictEqual(cluster.server, server.url)
      assert.deepStrictEqual(cluster.config, { audience: "operator" })
      assert.strictEqual(Buffer.from(String(cluster["certificate-authority-data"]), "base64").toString(), certs.ca.cert)

      accepted = "exec-token-2"
      const start = server.received.length
      assert.strictEqual((yield* get()).status, 200)
      assert.strictEqual(plugin.runs(), 2, "a 401 runs the plugin again")
      assert.deepStrictEqual(
        server.received.slice(start).map((request) => request.headers.authorization),
        ["Bearer exec-token-1", "Bearer exec-token-2"]
      )
    }))

  it.live("an exec credential past its expirationTimestamp is not reused", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      const server = yield* startFakeApiServer(certs.server, ok)
      const dir = yield* tempDir
      const plugin = writePlugin(dir)
      const kubeconfig = writeKubeconfig(dir, {
        cluster: { server: server.url, "certificate-authority": certs.ca.certFile },
        user: { exec: plugin.exec("client.authentication.k8s.io/v1beta1", { PLUGIN_TOKEN: "short", PLUGIN_EXPIRED: "1" }) }
      })
      const get = yield* connect({ kubeconfig })
      yield* get()
      yield* get()
      assert.strictEqual(plugin.runs(), 3)
      assert.strictEqual(lastRequest(server.received).headers.authorization, "Bearer short-3")
      assert.notProperty(plugin.info().spec, "cluster", "no cluster info unless provideClusterInfo")
    }))

  it.live("an exec plugin (v1beta1) returning a client certificate authenticates over TLS", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates({ clientCommonName: "exec-client" })
      const server = yield* startFakeApiServer(certs.server, ok, { clientCa: certs.ca.cert })
      const dir = yield* tempDir
      const plugin = writePlugin(dir)
      const kubeconfig = writeKubeconfig(dir, {
        cluster: { server: server.url, "certificate-authority": certs.ca.certFile },
        user: {
          exec: plugin.exec("client.authentication.k8s.io/v1beta1", { PLUGIN_CERT: certs.client.certFile, PLUGIN_KEY: certs.client.keyFile })
        }
      })
      assert.strictEqual((yield* (yield* connect({ kubeconfig }))()).status, 200)
      assert.strictEqual(lastRequest(server.received).clientCommonName, "exec-client")
      assert.isUndefined(lastRequest(server.received).headers.authorization)
    }))

  it.live("a failing or missing exec plugin, a v1 plugin without interactiveMode and auth-provider users fail loading with clear messages", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const plugin = writePlugin(dir)
      const cluster = { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true }
      const messageFor = (user: Record<string, unknown>, name: string) =>
        loadError({ kubeconfig: writeKubeconfig(dir, { cluster, user }, name) }).pipe(Effect.map((error) => error.message))

      const failing = yield* messageFor({ exec: plugin.exec("client.authentication.k8s.io/v1beta1", { PLUGIN_FAIL: "1" }) }, "failing.yaml")
      assert.include(failing, path.join(dir, "failing.yaml"))
      assert.include(failing, "plugin says: no credentials for this user")

      const missing = yield* messageFor({
        exec: { apiVersion: "client.authentication.k8s.io/v1beta1", command: "no-such-credential-plugin", installHint: "install it with: brew install it" }
      }, "missing.yaml")
      assert.include(missing, "no-such-credential-plugin")
      assert.include(missing, "brew install it")

      const noMode = yield* messageFor({ exec: plugin.exec("client.authentication.k8s.io/v1", {}) }, "no-mode.yaml")
      assert.include(noMode, "interactiveMode")

      const gcp = yield* messageFor({ "auth-provider": { name: "gcp", config: {} } }, "gcp.yaml")
      assert.include(gcp, 'auth-provider "gcp"')
      assert.include(gcp, "gke-gcloud-auth-plugin")
      const oidc = yield* messageFor({ "auth-provider": { name: "oidc", config: {} } }, "oidc.yaml")
      assert.include(oidc, "kubelogin")
    }))
})

describe("kubeconfig sources", () => {
  it.live("KUBECONFIG files merge as kubectl merges them: the first file that defines a name or current-context wins", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      const server = yield* startFakeApiServer(certs.server, ok)
      const dir = yield* tempDir
      const first = path.join(dir, "first.yaml")
      fs.writeFileSync(first, stringify({
        clusters: [{ name: "shared", cluster: { server: server.url, "certificate-authority": certs.ca.certFile } }],
        users: [{ name: "shared", user: { token: "from-first" } }],
        "current-context": "main"
      }))
      const second = path.join(dir, "second.yaml")
      fs.writeFileSync(second, stringify({
        clusters: [{ name: "shared", cluster: { server: "https://127.0.0.1:1" } }],
        users: [{ name: "shared", user: { token: "from-second" } }, { name: "other", user: { token: "other-token" } }],
        contexts: [
          { name: "main", context: { cluster: "shared", user: "shared" } },
          { name: "alternative", context: { cluster: "shared", user: "other" } }
        ],
        "current-context": "alternative"
      }))
      const env = environment({ env: { KUBECONFIG: [path.join(dir, "missing.yaml"), first, second].join(path.delimiter) } })
      yield* (yield* connect({}, env))()
      assert.strictEqual(lastRequest(server.received).headers.authorization, "Bearer from-first")
      yield* (yield* connect({ context: "alternative" }, env))()
      assert.strictEqual(lastRequest(server.received).headers.authorization, "Bearer other-token")

      // --kubeconfig wins over KUBECONFIG.
      const alone = yield* loadKubeConfig({ kubeconfig: second }, env)
      assert.strictEqual(alone.server.port, "1")
      assert.strictEqual(alone.source, `kubeconfig ${second}`)
    }))

  it.live("in a Pod: the ServiceAccount's CA and token, read again when the server answers 401", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      let accepted = "pod-token-1"
      const server = yield* startFakeApiServer(certs.server, acceptingToken(() => accepted))
      const serviceAccountDir = yield* tempDir
      fs.copyFileSync(certs.ca.certFile, path.join(serviceAccountDir, "ca.crt"))
      fs.writeFileSync(path.join(serviceAccountDir, "token"), "pod-token-1")
      const port = new URL(server.url).port
      const env = environment({ env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port, HOME: serviceAccountDir }, serviceAccountDir })
      const get = yield* connect({}, env)
      assert.strictEqual((yield* get()).status, 200)
      fs.writeFileSync(path.join(serviceAccountDir, "token"), "pod-token-2")
      accepted = "pod-token-2"
      assert.strictEqual((yield* get()).status, 200)
      assert.strictEqual(lastRequest(server.received).headers.authorization, "Bearer pod-token-2")

      fs.rmSync(path.join(serviceAccountDir, "token"))
      const error = yield* loadError({}, env)
      assert.strictEqual(error.source, "in-cluster service account")
      assert.include(error.message, path.join(serviceAccountDir, "token"))
    }))

  it.live("proxy-url: requests to an https server tunnel through the http proxy (CONNECT)", () =>
    Effect.gen(function*() {
      const certs = yield* generateTestCertificates()
      const server = yield* startFakeApiServer(certs.server, acceptingToken(() => "through-proxy"))
      const tunnels: Array<string> = []
      const proxy = yield* Effect.acquireRelease(
        Effect.callback<http.Server>((resume) => {
          const proxyServer = http.createServer((_, response) => response.writeHead(405).end())
          proxyServer.on("connect", (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
            tunnels.push(request.url ?? "")
            const [host, port] = (request.url ?? "").split(":")
            const upstream = net.connect(Number(port), host, () => {
              client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
              upstream.write(head)
              upstream.pipe(client)
              client.pipe(upstream)
            })
            upstream.on("error", () => client.destroy())
            client.on("error", () => upstream.destroy())
          })
          proxyServer.listen(0, "127.0.0.1", () => resume(Effect.succeed(proxyServer)))
        }),
        (proxyServer) => Effect.callback<void>((resume) => {
          proxyServer.closeAllConnections()
          proxyServer.close(() => resume(Effect.void))
        })
      )
      const dir = yield* tempDir
      const kubeconfig = writeKubeconfig(dir, {
        cluster: {
          server: server.url,
          "certificate-authority": certs.ca.certFile,
          "proxy-url": `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
        },
        user: { token: "through-proxy" }
      })
      assert.strictEqual((yield* (yield* connect({ kubeconfig }))()).status, 200)
      assert.deepStrictEqual(tunnels, [new URL(server.url).host])

      const socks = writeKubeconfig(dir, { cluster: { server: server.url, "proxy-url": "socks5://127.0.0.1:1080" } }, "socks.yaml")
      assert.include((yield* loadError({ kubeconfig: socks })).message, "only http:// and https:// proxies")
    }))
})
