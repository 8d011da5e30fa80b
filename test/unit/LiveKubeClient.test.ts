import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Metrics } from "../../src/services/Metrics.ts"
import { KubeClient } from "../../src/services/kube/KubeClient.ts"
import { LiveKubeClient, type LiveKubeClientOptions } from "../../src/services/kube/LiveKubeClient.ts"
import { Resources } from "../../src/services/kube/Resources.ts"
import {
  type Handler,
  json,
  makeTestCertificate,
  startFakeApiServer,
  status,
  writeKubeconfig
} from "./support/FakeApiServer.ts"

const certificate = makeTestCertificate()
const token = "test-token-4f1c"
const runsPath = "/apis/security.ugallu.io/v1alpha1/namespaces/team-a/compliancescanruns"

const run = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "security.ugallu.io/v1alpha1",
  kind: "ComplianceScanRun",
  metadata: { name, namespace: "team-a", resourceVersion: "7" },
  ...extra
})

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "live-kube-client-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A fake API server answering with `handler`, and the client built by the public Layer from a kubeconfig naming it. */
const setup = (handler: Handler, options: Omit<LiveKubeClientOptions, "kubeconfig"> = {}) =>
  Effect.gen(function*() {
    const server = yield* startFakeApiServer(certificate, handler)
    const dir = yield* tempDir
    const kubeconfig = writeKubeconfig(dir, { server: server.url, certificate, token })
    const context = yield* Layer.build(
      LiveKubeClient.layer({ ...options, kubeconfig }).pipe(Layer.provideMerge(Metrics.layerTest))
    )
    return { server, client: Context.get(context, KubeClient), metrics: Context.get(context, Metrics) }
  })

const metricsText = (metrics: Metrics["Service"]) => metrics.render.pipe(Effect.map((rendered) => rendered.body))

/** The server never answers; the handler just keeps the connection open. */
const neverAnswer: Handler = () => {}

const waitFor = <A>(what: string, promise: Promise<A>) =>
  Effect.promise(() => promise).pipe(
    Effect.timeoutOrElse({ duration: "3 seconds", orElse: () => Effect.die(new Error(`timed out waiting for ${what}`)) })
  )

describe("LiveKubeClient", () => {
  it.live("sends the kubeconfig's bearer token over TLS and returns the object", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((_, response) => json(response, 200, run("nightly")))
      const object = yield* client.get(Resources.ComplianceScanRun, "team-a", "nightly")
      assert.strictEqual(object.metadata.name, "nightly")
      const request = server.received[0]!
      assert.strictEqual(request.method, "GET")
      assert.strictEqual(request.pathname, `${runsPath}/nightly`)
      assert.strictEqual(request.headers.authorization, `Bearer ${token}`)
    }))

  it.live("maps API server errors to typed errors carrying the server's message, and counts them", () =>
    Effect.gen(function*() {
      const answers: Record<string, [number, unknown]> = {
        missing: [404, status(404, "NotFound", 'compliancescanruns "missing" not found')],
        exists: [409, status(409, "AlreadyExists", 'compliancescanruns "exists" already exists')],
        // The Status reason decides, not the wording: this Conflict's message says "already exists".
        stale: [409, status(409, "Conflict", 'Operation cannot be fulfilled on leases "leader": a holder already exists')],
        expired: [410, status(410, "Expired", "too old resource version: 5 (120)")],
        invalid: [422, status(422, "Invalid", 'spec.backend: Unsupported value: "nmap"')],
        denied: [403, status(403, "Forbidden", 'compliancescanruns is forbidden: User "x" cannot get')],
        broken: [500, status(500, "InternalError", "etcdserver: request timed out")],
        proxy: [502, "<html>Bad Gateway</html>"],
        huge: [413, status(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")],
        toobig: [500, status(500, "InternalError", "etcdserver: request is too large")],
        readyz: [200, "ok"]
      }
      const { client, metrics } = yield* setup((request, response) => {
        const [code, body] = answers[request.pathname.split("/").at(-1)!]!
        if (typeof body === "string") {
          response.writeHead(code, { "Content-Type": "text/html" })
          response.end(body)
        } else json(response, code, body)
      })
      const failure = (name: string) =>
        client.get(Resources.ComplianceScanRun, "team-a", name).pipe(
          Effect.flip,
          Effect.map((error) => ({ tag: error._tag, message: error.message }))
        )
      assert.deepStrictEqual(yield* failure("missing"), { tag: "NotFound", message: 'compliancescanruns "missing" not found' })
      assert.deepStrictEqual(yield* failure("exists"), {
        tag: "AlreadyExists",
        message: 'compliancescanruns "exists" already exists'
      })
      assert.deepStrictEqual(yield* failure("stale"), {
        tag: "Conflict",
        message: 'Operation cannot be fulfilled on leases "leader": a holder already exists'
      })
      assert.deepStrictEqual(yield* failure("expired"), { tag: "Gone", message: "too old resource version: 5 (120)" })
      assert.deepStrictEqual(yield* failure("invalid"), { tag: "Invalid", message: 'spec.backend: Unsupported value: "nmap"' })
      assert.deepStrictEqual(yield* failure("denied"), {
        tag: "Forbidden",
        message: 'compliancescanruns is forbidden: User "x" cannot get'
      })
      assert.deepStrictEqual(yield* failure("broken"), { tag: "Transient", message: "HTTP 500: etcdserver: request timed out" })
      assert.deepStrictEqual(yield* failure("proxy"), { tag: "Transient", message: "HTTP 502: <html>Bad Gateway</html>" })
      // Objects over the API server's or etcd's limit: permanent, whatever the status code.
      assert.deepStrictEqual(yield* failure("huge"), { tag: "TooLarge", message: "Request entity too large: limit is 3145728" })
      assert.deepStrictEqual(yield* failure("toobig"), { tag: "TooLarge", message: "etcdserver: request is too large" })

      const text = yield* metricsText(metrics)
      for (const code of ["404", "410", "422", "403", "502", "413"]) {
        assert.include(text, `ugallu_compliance_scan_api_requests_total{verb="get",resource="compliancescanruns",code="${code}"} 1`)
      }
      assert.include(text, `ugallu_compliance_scan_api_requests_total{verb="get",resource="compliancescanruns",code="409"} 2`)
      assert.include(text, `ugallu_compliance_scan_api_requests_total{verb="get",resource="compliancescanruns",code="500"} 2`)
    }))

  it.live("fails with Transient when the API server cannot be reached", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // A server that is started and stopped again leaves a port nobody listens on.
      const url = yield* Effect.scoped(startFakeApiServer(certificate, neverAnswer).pipe(Effect.map((s) => s.url)))
      const kubeconfig = writeKubeconfig(dir, { server: url, certificate, token })
      const context = yield* Layer.build(LiveKubeClient.layer({ kubeconfig }).pipe(Layer.provideMerge(Metrics.layerTest)))
      const error = yield* Context.get(context, KubeClient).get(Resources.Pod, "team-a", "p").pipe(Effect.flip)
      assert.strictEqual(error._tag, "Transient")
      assert.match(error.message, /ECONNREFUSED/)
      assert.include(
        yield* metricsText(Context.get(context, Metrics)),
        `ugallu_compliance_scan_api_requests_total{verb="get",resource="pods",code="<error>"} 1`
      )
    }))

  it.live("patch sends a JSON merge patch, to the /status subresource when asked", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((_, response) => json(response, 200, run("nightly")))
      yield* client.patch(Resources.ComplianceScanRun, "team-a", "nightly", { metadata: { labels: { a: "b" } } })
      yield* client.patch(Resources.ComplianceScanRun, "team-a", "nightly", { status: { phase: "Running" } }, {
        subresource: "status"
      })
      const [main, statusPatch] = server.received
      assert.strictEqual(main!.method, "PATCH")
      assert.strictEqual(main!.pathname, `${runsPath}/nightly`)
      assert.strictEqual(main!.headers["content-type"], "application/merge-patch+json")
      assert.deepStrictEqual(JSON.parse(main!.body), { metadata: { labels: { a: "b" } } })
      assert.strictEqual(statusPatch!.pathname, `${runsPath}/nightly/status`)
      assert.strictEqual(statusPatch!.headers["content-type"], "application/merge-patch+json")
      assert.deepStrictEqual(JSON.parse(statusPatch!.body), { status: { phase: "Running" } })
    }))

  it.live("create POSTs to the collection, replace and replaceStatus PUT, delete sends the propagation policy", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((request, response) =>
        request.method === "DELETE"
          ? json(response, 200, { kind: "Status", apiVersion: "v1", status: "Success" })
          : json(response, request.method === "POST" ? 201 : 200, run("nightly"))
      )
      const object = run("nightly", { status: { phase: "Done" } })
      yield* client.create(Resources.ComplianceScanRun, object)
      yield* client.replace(Resources.ComplianceScanRun, object)
      yield* client.replaceStatus(Resources.ComplianceScanRun, object)
      yield* client.delete(Resources.Job, "scans", "kube-bench-node-1", { propagationPolicy: "Background" })
      const [create, replace, replaceStatus, remove] = server.received
      assert.deepStrictEqual([create!.method, create!.pathname], ["POST", runsPath])
      assert.deepStrictEqual(JSON.parse(create!.body), object)
      assert.deepStrictEqual([replace!.method, replace!.pathname], ["PUT", `${runsPath}/nightly`])
      assert.strictEqual(JSON.parse(replace!.body).metadata.resourceVersion, "7")
      assert.deepStrictEqual([replaceStatus!.method, replaceStatus!.pathname], ["PUT", `${runsPath}/nightly/status`])
      assert.deepStrictEqual(
        [remove!.method, remove!.pathname],
        ["DELETE", "/apis/batch/v1/namespaces/scans/jobs/kube-bench-node-1"]
      )
      assert.deepStrictEqual(JSON.parse(remove!.body), {
        apiVersion: "v1",
        kind: "DeleteOptions",
        propagationPolicy: "Background"
      })
    }))

  it.live("a namespaced resource without a namespace is Invalid and sends nothing", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((_, response) => json(response, 200, run("x")))
      const error = yield* client.get(Resources.Pod, undefined, "p").pipe(Effect.flip)
      assert.strictEqual(error._tag, "Invalid")
      assert.strictEqual(server.received.length, 0)
    }))

  it.live("list passes selectors and paging, fills in apiVersion/kind and returns the continue token", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((_, response) =>
        json(response, 200, {
          apiVersion: "v1",
          kind: "PodList",
          metadata: { resourceVersion: "1234", continue: "page-2-token" },
          items: [{ metadata: { name: "a", namespace: "team-a" } }, { metadata: { name: "b", namespace: "team-a" } }]
        })
      )
      const page = yield* client.list(Resources.Pod, {
        namespace: "team-a",
        labelSelector: "app=web,tier!=db",
        fieldSelector: "spec.nodeName=node-1",
        limit: 2,
        continue: "page-1-token"
      })
      assert.deepStrictEqual(page, {
        items: [
          { apiVersion: "v1", kind: "Pod", metadata: { name: "a", namespace: "team-a" } },
          { apiVersion: "v1", kind: "Pod", metadata: { name: "b", namespace: "team-a" } }
        ],
        resourceVersion: "1234",
        continue: "page-2-token"
      })
      const request = server.received[0]!
      assert.strictEqual(request.pathname, "/api/v1/namespaces/team-a/pods")
      assert.deepStrictEqual(Object.fromEntries(request.query), {
        labelSelector: "app=web,tier!=db",
        fieldSelector: "spec.nodeName=node-1",
        limit: "2",
        continue: "page-1-token"
      })
      // The last page has no continue token; cluster-wide lists have no namespace segment.
      const all = yield* client.list(Resources.Namespace)
      assert.strictEqual(server.received[1]!.pathname, "/api/v1/namespaces")
      assert.strictEqual(server.received[1]!.url, "/api/v1/namespaces")
      assert.strictEqual(all.items.length, 2)
    }))

  it.live("listPage parses each object only when it is reached; a malformed one throws naming the request", () =>
    Effect.gen(function*() {
      const { client } = yield* setup((request, response) =>
        json(response, 200, {
          kind: "PodList",
          metadata: { resourceVersion: "9", continue: "next" },
          items: request.url?.includes("broken") === true
            ? [{ metadata: { name: "a" } }, { spec: {} }]
            : [{ metadata: { name: "a", labels: { items: "[{}]" } } }, { apiVersion: "v1", kind: "Pod", metadata: { name: "b" } }]
        })
      )
      const listPage = client.listPage!
      const page = yield* listPage(Resources.Pod, { namespace: "team-a", limit: 2 })
      assert.strictEqual(page.size, 2)
      assert.strictEqual(page.continue, "next")
      assert.strictEqual(page.resourceVersion, "9")
      const objects = [...page.objects()]
      assert.deepStrictEqual(objects, [
        { apiVersion: "v1", kind: "Pod", metadata: { name: "a", labels: { items: "[{}]" } } },
        { apiVersion: "v1", kind: "Pod", metadata: { name: "b" } }
      ])
      // Each iteration parses again: nothing of the page is kept parsed between two readers.
      assert.notStrictEqual([...page.objects()][0], objects[0])

      const broken = yield* listPage(Resources.Pod, { namespace: "team-a", labelSelector: "broken" })
      const reached: Array<string> = []
      assert.throws(
        () => {
          for (const object of broken.objects()) reached.push(object.metadata.name)
        },
        /GET \/api\/v1\/namespaces\/team-a\/pods\?labelSelector=broken: the API server answered with something that is not a Kubernetes object/
      )
      assert.deepStrictEqual(reached, ["a"])
    }))

  it.live("listPage asks built-in kinds for protobuf when told to, and reads whichever encoding the server answers with", () =>
    Effect.gen(function*() {
      // A real answer of the cluster tier's API server, both ways (test/fixtures/kube-protobuf).
      const fixtures = path.join(import.meta.dirname, "../fixtures/kube-protobuf")
      const protobuf = fs.readFileSync(path.join(fixtures, "pods.pb"))
      const asJson = JSON.parse(fs.readFileSync(path.join(fixtures, "pods.json"), "utf8"))
      const { server, client } = yield* setup((request, response) => {
        if (request.url?.includes("json-answer") === true) return json(response, 200, asJson)
        if (request.url?.includes("gone-answer") === true) {
          // A Status in protobuf: runtime.Unknown {raw = 2: Status {message = 3, reason = 4, code = 6}}.
          const message = Buffer.from("too old resource version")
          const status = Buffer.concat([Buffer.from([0x1a, message.length]), message, Buffer.from([0x22, 7]), Buffer.from("Expired"), Buffer.from([0x30, 0x9a, 0x03])])
          response.writeHead(410, { "Content-Type": "application/vnd.kubernetes.protobuf" })
          return response.end(Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x12, status.length]), status]))
        }
        response.writeHead(200, { "Content-Type": "application/vnd.kubernetes.protobuf" })
        response.end(protobuf)
      })
      const listPage = client.listPage!
      const expected = asJson.items.map((item: Record<string, unknown>) => ({ apiVersion: "v1", kind: "Pod", ...item }))
      const page = yield* listPage(Resources.Pod, { limit: 1, protobuf: true })
      assert.strictEqual(server.received.at(-1)!.headers.accept, "application/vnd.kubernetes.protobuf, application/json")
      assert.deepStrictEqual({ encoding: page.encoding, size: page.size, continue: page.continue }, { encoding: "protobuf", size: 1, continue: asJson.metadata.continue })
      assert.deepStrictEqual([...page.objects()], expected)
      // A server (or proxy) that answers JSON all the same.
      const fromJson = yield* listPage(Resources.Pod, { limit: 1, labelSelector: "json-answer", protobuf: true })
      assert.deepStrictEqual({ encoding: fromJson.encoding, objects: [...fromJson.objects()] }, { encoding: "json", objects: expected })
      // An error answer in protobuf keeps its status and message.
      const gone = yield* Effect.flip(listPage(Resources.Pod, { limit: 1, labelSelector: "gone-answer", protobuf: true }))
      assert.deepStrictEqual({ tag: gone._tag, message: gone.message }, { tag: "Gone", message: "too old resource version" })
      // Without the option (and for kinds it has no schema for) the client asks for JSON.
      yield* Effect.flip(listPage(Resources.Pod, { limit: 1 }))
      assert.strictEqual(server.received.at(-1)!.headers.accept, "application/json")
    }))

  it.live("a protobuf answer it cannot read fails as Transient (retried), and the client asks for JSON from then on", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((request, response) => {
        if (request.headers.accept === "application/json") return json(response, 200, { kind: "PodList", metadata: { resourceVersion: "3" }, items: [{ metadata: { name: "a" } }] })
        // The envelope says raw = 2 holds 1,000 bytes; three follow.
        response.writeHead(200, { "Content-Type": "application/vnd.kubernetes.protobuf" })
        response.end(Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x12, 0xe8, 0x07, 1, 2, 3]))
      })
      const listPage = client.listPage!
      const failure = yield* Effect.flip(listPage(Resources.Pod, { limit: 1, protobuf: true }))
      assert.strictEqual(failure._tag, "Transient")
      assert.match(failure.message, /^pods in protobuf: a value runs past the end; reading them as JSON from now on$/u)
      const again = yield* listPage(Resources.Pod, { limit: 1, protobuf: true })
      assert.strictEqual(server.received.at(-1)!.headers.accept, "application/json")
      assert.deepStrictEqual({ encoding: again.encoding, names: [...again.objects()].map((pod) => pod.metadata.name) }, { encoding: "json", names: ["a"] })
    }))

  it.live("podLogs reads the log as text with container and limitBytes", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((_, response) => {
        response.writeHead(200, { "Content-Type": "text/plain" })
        response.end('{"Controls":[]}\n')
      })
      const log = yield* client.podLogs("scans", "kube-bench-abc", { container: "kube-bench", limitBytes: 1048576 })
      assert.strictEqual(log, '{"Controls":[]}\n')
      const request = server.received[0]!
      assert.strictEqual(request.pathname, "/api/v1/namespaces/scans/pods/kube-bench-abc/log")
      assert.deepStrictEqual(Object.fromEntries(request.query), { container: "kube-bench", limitBytes: "1048576" })
    }))

  it.live("watch parses events split across chunks and ends when the server closes", () =>
    Effect.gen(function*() {
      const lines = [
        JSON.stringify({ type: "ADDED", object: run("first", { spec: { note: "grüße" } }) }),
        JSON.stringify({ type: "MODIFIED", object: { metadata: { name: "second", namespace: "team-a" } } }),
        JSON.stringify({ type: "BOOKMARK", object: { kind: "ComplianceScanRun", metadata: { resourceVersion: "99" } } }),
        JSON.stringify({ type: "DELETED", object: run("first") })
      ]
      const bytes = Buffer.from(lines.join("\n") + "\n", "utf8")
      const umlaut = bytes.indexOf(Buffer.from("ü")) + 1 // inside the two-byte character
      const cuts = [10, umlaut, bytes.indexOf("\n") + 1, bytes.length - 5, bytes.length]
      const { server, client } = yield* setup((_, response) => {
        response.writeHead(200, { "Content-Type": "application/json" })
        response.flushHeaders()
        let from = 0
        const writeNext = (index: number) => {
          if (index === cuts.length) return response.end()
          response.write(bytes.subarray(from, cuts[index]))
          from = cuts[index]!
          setTimeout(() => writeNext(index + 1), 15)
        }
        writeNext(0)
      })
      const events = yield* client.watch(Resources.ComplianceScanRun, {
        namespace: "team-a",
        resourceVersion: "42",
        timeoutSeconds: 300
      }).pipe(Stream.runCollect)
      assert.deepStrictEqual(events, [
        { type: "ADDED", object: run("first", { spec: { note: "grüße" } }) },
        {
          type: "MODIFIED",
          object: {
            apiVersion: "security.ugallu.io/v1alpha1",
            kind: "ComplianceScanRun",
            metadata: { name: "second", namespace: "team-a" }
          }
        },
        { type: "BOOKMARK", resourceVersion: "99" },
        { type: "DELETED", object: run("first") }
      ])
      const request = server.received[0]!
      assert.strictEqual(request.pathname, runsPath)
      assert.deepStrictEqual(Object.fromEntries(request.query), {
        watch: "1",
        resourceVersion: "42",
        allowWatchBookmarks: "true",
        timeoutSeconds: "300"
      })
    }))

  it.live("a watch ERROR event with code 410 fails the stream with Gone after the earlier events", () =>
    Effect.gen(function*() {
      const { client } = yield* setup((_, response) => {
        response.writeHead(200, { "Content-Type": "application/json" })
        response.write(JSON.stringify({ type: "ADDED", object: run("first") }) + "\n")
        response.write(
          JSON.stringify({ type: "ERROR", object: status(410, "Expired", "too old resource version: 42 (180)") }) + "\n"
        )
        // Like the API server, keep the connection open: the client must stop on the ERROR itself.
      })
      const seen: Array<string> = []
      const error = yield* client.watch(Resources.ComplianceScanRun, { namespace: "team-a", resourceVersion: "42" }).pipe(
        Stream.runForEach((event) => Effect.sync(() => seen.push(event.type))),
        Effect.flip
      )
      assert.deepStrictEqual(seen, ["ADDED"])
      assert.deepStrictEqual({ tag: error._tag, message: error.message }, {
        tag: "Gone",
        message: "too old resource version: 42 (180)"
      })
    }))

  it.live("a 403 from an API server that is not ready yet (still starting) is Transient, not Forbidden", () =>
    Effect.gen(function*() {
      const { client } = yield* setup((request, response) =>
        request.pathname === "/readyz"
          ? json(response, 500, "[-]poststarthook/rbac/bootstrap-roles failed: not finished")
          : json(response, 403, status(403, "Forbidden", 'jobs.batch is forbidden: User "x" cannot watch'))
      )
      const error = yield* client.get(Resources.Job, "team-a", "j").pipe(Effect.flip)
      assert.strictEqual(error._tag, "Transient")
      assert.match(error.message, /jobs.batch is forbidden.*not ready: \/readyz 500/u)
    }))

  it.live("a watch refused with 403 fails with Forbidden", () =>
    Effect.gen(function*() {
      const { client } = yield* setup((request, response) =>
        request.pathname === "/readyz"
          ? json(response, 200, "ok")
          : json(response, 403, status(403, "Forbidden", "cannot watch resource compliancescanruns"))
      )
      const error = yield* client.watch(Resources.ComplianceScanRun, { resourceVersion: "1" }).pipe(
        Stream.runDrain,
        Effect.flip
      )
      assert.deepStrictEqual({ tag: error._tag, message: error.message }, {
        tag: "Forbidden",
        message: "cannot watch resource compliancescanruns"
      })
    }))

  it.live("stopping or interrupting a watch consumer closes the connection on the server", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup((_, response) => {
        response.writeHead(200, { "Content-Type": "application/json" })
        response.write(JSON.stringify({ type: "ADDED", object: run("first") }) + "\n")
      })
      const watch = client.watch(Resources.ComplianceScanRun, { namespace: "team-a", resourceVersion: "1" })

      // A consumer that has what it wants.
      const first = yield* watch.pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual(first.length, 1)
      assert.strictEqual(yield* waitFor("the first watch to close", server.received[0]!.outcome), "aborted")

      // A consumer fiber interrupted while waiting for more events.
      const fiber = yield* watch.pipe(Stream.runDrain, Effect.forkChild)
      const second = yield* server.request(1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* waitFor("the second watch to close", second.outcome), "aborted")
    }))

  it.live("interrupting a slow request aborts it on the server", () =>
    Effect.gen(function*() {
      const { server, client } = yield* setup(neverAnswer)
      const fiber = yield* client.get(Resources.ComplianceScanRun, "team-a", "slow").pipe(Effect.forkChild)
      const request = yield* server.request(0)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* waitFor("the request to close", request.outcome), "aborted")
    }))

  it.live("a request without an answer within requestTimeout fails Transient and is aborted", () =>
    Effect.gen(function*() {
      const { server, client, metrics } = yield* setup(neverAnswer, { requestTimeout: "200 millis" })
      const error = yield* client.list(Resources.Node).pipe(Effect.flip)
      assert.strictEqual(error._tag, "Transient")
      assert.match(error.message, /^GET \/api\/v1\/nodes: no answer within/)
      assert.strictEqual(yield* waitFor("the request to close", server.received[0]!.outcome), "aborted")
      assert.include(
        yield* metricsText(metrics),
        `ugallu_compliance_scan_api_requests_total{verb="list",resource="nodes",code="<timeout>"} 1`
      )
    }))
})

describe("LiveKubeClient configuration", () => {
  it.live("without --kubeconfig, KUBECONFIG is used and its missing files are skipped", () =>
    Effect.gen(function*() {
      const server = yield* startFakeApiServer(certificate, (_, response) => json(response, 200, run("nightly")))
      const dir = yield* tempDir
      const kubeconfig = writeKubeconfig(dir, { server: server.url, certificate, token })
      const missing = path.join(dir, "missing.yaml")
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const previous = process.env.KUBECONFIG
          process.env.KUBECONFIG = [missing, kubeconfig].join(path.delimiter)
          return previous
        }),
        (previous) =>
          Effect.sync(() => {
            if (previous === undefined) delete process.env.KUBECONFIG
            else process.env.KUBECONFIG = previous
          })
      )
      const context = yield* Layer.build(LiveKubeClient.layer().pipe(Layer.provideMerge(Metrics.layerTest)))
      const object = yield* Context.get(context, KubeClient).get(Resources.ComplianceScanRun, "team-a", "nightly")
      assert.strictEqual(object.metadata.name, "nightly")
      assert.strictEqual(server.received[0]!.headers.authorization, `Bearer ${token}`)
    }))

  const buildError = (options: LiveKubeClientOptions) =>
    Layer.build(LiveKubeClient.layer(options).pipe(Layer.provide(Metrics.layerTest))).pipe(Effect.flip)

  it.live("a missing kubeconfig file fails construction with KubeConfigError naming the file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "does-not-exist.yaml")
      const error = yield* buildError({ kubeconfig: file })
      assert.strictEqual(error._tag, "KubeConfigError")
      assert.include(error.message, file)
    }))

  it.live("an invalid kubeconfig fails construction with KubeConfigError naming the file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const garbage = path.join(dir, "garbage.yaml")
      fs.writeFileSync(garbage, "clusters: [ {name: a, cluster: {}} ]\n")
      const error = yield* buildError({ kubeconfig: garbage })
      assert.strictEqual(error._tag, "KubeConfigError")
      assert.include(error.message, garbage)
      assert.include(error.message, "server is missing")

      const notYaml = path.join(dir, "not-yaml.yaml")
      fs.writeFileSync(notYaml, "clusters: [unclosed\n")
      const yamlError = yield* buildError({ kubeconfig: notYaml })
      assert.strictEqual(yamlError._tag, "KubeConfigError")
      assert.include(yamlError.message, notYaml)
    }))

  it.live("an unknown context or an unreadable CA file fails construction with KubeConfigError", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const kubeconfig = writeKubeconfig(dir, { server: "https://127.0.0.1:1", certificate, token })
      const contextError = yield* buildError({ kubeconfig, context: "production" })
      assert.strictEqual(contextError._tag, "KubeConfigError")
      assert.include(contextError.message, kubeconfig)
      assert.include(contextError.message, '"production" not found')

      const caFile = path.join(dir, "missing-ca.crt")
      fs.writeFileSync(
        kubeconfig,
        fs.readFileSync(kubeconfig, "utf8").replace(/certificate-authority-data: .*/, `certificate-authority: ${caFile}`)
      )
      const caError = yield* buildError({ kubeconfig })
      assert.strictEqual(caError._tag, "KubeConfigError")
      assert.include(caError.message, caFile)
    }))
})
