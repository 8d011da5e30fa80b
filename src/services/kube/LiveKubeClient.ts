import { Duration, Effect, Layer, Option, Schema, Stream } from "effect"
import type { Scope } from "effect"
import * as http from "node:http"
import { Metrics } from "../Metrics.ts"
import { KubeClient } from "./KubeClient.ts"
import type { DeleteOptions, ListOptions, LogOptions, PatchOptions, WatchOptions } from "./KubeClient.ts"
import { Invalid, type KubeError, Transient } from "./KubeErrors.ts"
import { type KubeObject, MalformedObject, type ObjectList, type ObjectPage, pageOfList, UnreadableEncoding } from "./KubeObject.ts"
import type { ResourceType } from "./Resources.ts"
import { type HttpRequest, makeAgent, makeHttpTransport, readChunks, readText } from "./live/HttpTransport.ts"
import { KubeConfigError } from "./live/KubeConfigError.ts"
import { type KubeConfigOptions, loadKubeConfig } from "./live/LoadKubeConfig.ts"
import { ByteChunks } from "./live/ByteChunks.ts"
import { splitList } from "./live/ListItems.ts"
import { queryString, resourcePath } from "./live/ResourcePaths.ts"
import { errorFromResponse } from "./live/StatusError.ts"
import { adoptTypeMeta, decodeWatchLine, isKubeObject, withTypeMeta } from "./live/WatchEvents.ts"
import { builtInMessages, type Message, type MessageSchema, messageOfResource } from "./protobuf/MessageSchema.ts"
import { decodeProtobufList, isProtobufAnswer, protobufStatusJson, UnreadableProtobuf } from "./protobuf/ProtobufList.ts"

export { KubeConfigError }
export type { KubeConfigOptions }

export interface LiveKubeClientOptions extends KubeConfigOptions {
  /** Deadline of every request except the body of a watch (default 30 seconds); Transient when exceeded. */
  readonly requestTimeout?: Duration.Input | undefined
  /** What lists of built-in kinds in protobuf are decoded with (ListOptions.protobuf); the schema shipped by default. */
  readonly protobufSchema?: MessageSchema | undefined
}

/** A watch that passes its `timeoutSeconds` by this much without a byte is a dead connection. */
const watchSilenceGrace = Duration.seconds(30)

/** Kubernetes RBAC verbs, the `verb` label of apiRequestsTotal. */
type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete"

const List = Schema.fromJsonString(
  Schema.Struct({
    apiVersion: Schema.optional(Schema.String),
    kind: Schema.optional(Schema.String),
    metadata: Schema.optional(
      Schema.Struct({ resourceVersion: Schema.optional(Schema.String), continue: Schema.optional(Schema.String) })
    ),
    items: Schema.NullOr(Schema.Array(Schema.Unknown))
  })
)
const decodeList = Schema.decodeUnknownOption(List)
/** A List whose items were split off (ListItems): the rest, already parsed. */
const decodeEnvelope = Schema.decodeUnknownOption(List.to)

type ListEnvelope = typeof List.Type

/** Items of a list usually carry no apiVersion/kind; the list's own kind says them. */
const typeOfItems = (resource: ResourceType, list: ListEnvelope) => ({
  apiVersion: list.apiVersion ?? resource.apiVersion,
  kind: list.kind !== undefined && list.kind.endsWith("List") && list.kind !== "List" ? list.kind.slice(0, -"List".length) : resource.kind
})

const pageMetadata = (list: ListEnvelope) => {
  const continueToken = list.metadata?.continue
  return {
    resourceVersion: list.metadata?.resourceVersion ?? "",
    ...(continueToken !== undefined && continueToken !== "" ? { continue: continueToken } : {})
  }
}

/** What lists of built-in kinds ask for (ListOptions.protobuf); the API server answers JSON for kinds it has no protobuf for (custom resources). */
const protobufOrJson = "application/vnd.kubernetes.protobuf, application/json"

const parseItem = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const malformedAnswer = (what: string, body: string) =>
  new Transient({ message: `${what}: the API server answered with something that is not a Kubernetes object: ${body.slice(0, 200)}` })

const parseObject = (what: string, body: string): Effect.Effect<KubeObject, KubeError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return Effect.fail(malformedAnswer(what, body))
  }
  return isKubeObject(parsed) ? Effect.succeed(parsed) : Effect.fail(malformedAnswer(what, body))
}

/** The namespace a namespaced resource needs; checked before any request goes out. */
const namespaceFor = (
  resource: ResourceType,
  namespace: string | undefined,
  name: string
): Effect.Effect<string | undefined, KubeError> =>
  resource.namespaced && (namespace === undefined || namespace === "")
    ? Effect.fail(new Invalid({ message: `${resource.kind} "${name}" is namespaced: a namespace is required` }))
    : Effect.succeed(resource.namespaced ? namespace : undefined)

/**
 * Builds the KubeClient against a real API server. Needs Metrics (every request is counted
 * in apiRequestsTotal{verb,resource,code}) and a Scope (the keep-alive connection pool is
 * closed with it). Fails with KubeConfigError when the configuration cannot be loaded.
 */
const make = (
  options: LiveKubeClientOptions = {}
): Effect.Effect<KubeClient["Service"], KubeConfigError, Metrics | Scope.Scope> =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const loaded = yield* loadKubeConfig(options)
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => makeAgent(loaded)),
      (agent) => Effect.sync(() => agent.destroy())
    )
    const send = makeHttpTransport(loaded, agent)
    const requestTimeout = Duration.fromInputUnsafe(options.requestTimeout ?? Duration.seconds(30))

    /**
     * One HTTP exchange: `read` consumes the response inside the same abortable promise, so
     * interrupting the effect (or the deadline) aborts the request on the wire, and
     * `lifetime` can keep it open past this effect (a watch body). Network errors become
     * Transient here; HTTP statuses are mapped by the callers. Counts the request once.
     */
    const exchange = <A>(
      verb: Verb,
      resourceLabel: string,
      request: HttpRequest,
      read: (response: http.IncomingMessage) => Promise<A>,
      lifetime?: AbortSignal
    ): Effect.Effect<A, KubeError> =>
      Effect.suspend(() => {
        const what = `${request.method} ${request.path}`
        let code = "<aborted>"
        return Effect.tryPromise({
          try: async (signal) => {
            const response = await send(request, lifetime === undefined ? signal : AbortSignal.any([signal, lifetime]))
            code = String(response.statusCode ?? 0)
            return read(response)
          },
          catch: (error) => {
            if (code === "<aborted>") code = "<error>"
            return new Transient({ message: `${what}: ${describe(error)}` })
          }
        }).pipe(
          Effect.timeoutOrElse({
            duration: requestTimeout,
            orElse: () => {
              code = "<timeout>"
              return Effect.fail(
                new Transient({ message: `${what}: no answer within ${Duration.format(requestTimeout)}` })
              )
            }
          }),
          Effect.ensuring(Effect.sync(() => metrics.apiRequestsTotal.inc({ verb, resource: resourceLabel, code })))
        )
      })

    interface Answer<Body> {
      readonly status: number
      readonly statusText: string
      readonly body: Body
    }
    type TextAnswer = Answer<string>
    const readAnswer = async (response: http.IncomingMessage): Promise<TextAnswer> => ({
      status: response.statusCode ?? 0,
      statusText: response.statusMessage ?? "",
      body: await readText(response)
    })
    /** The answer's bytes as they came, for lists: their items are decoded one by one (ListItems). */
    const readChunksAnswer = async (response: http.IncomingMessage): Promise<Answer<ByteChunks>> => ({
      status: response.statusCode ?? 0,
      statusText: response.statusMessage ?? "",
      body: new ByteChunks(await readChunks(response))
    })

    /**
     * A non-2xx answer as the KubeError it means. A 403 is only believed once the server says
     * it is ready: an API server still starting answers 403 until its RBAC caches are filled.
     */
    const failWith = (answer: TextAnswer): Effect.Effect<never, KubeError> => {
      const error = errorFromResponse(answer.status, answer.body, answer.statusText)
      if (answer.status !== 403) return Effect.fail(error)
      return exchange("get", "readyz", { method: "GET", path: "/readyz" }, readAnswer).pipe(
        Effect.flatMap((readyz) =>
          readyz.status === 200
            ? Effect.fail(error)
            : Effect.fail(new Transient({ message: `${error.message} (the API server is not ready: /readyz ${readyz.status})` }))
        )
      )
    }

    /** A request whose whole answer is read; non-2xx answers become the KubeError they mean. */
    const call = (verb: Verb, resourceLabel: string, request: HttpRequest): Effect.Effect<string, KubeError> =>
      exchange(verb, resourceLabel, request, readAnswer).pipe(
        Effect.flatMap((answer) => answer.status >= 200 && answer.status < 300 ? Effect.succeed(answer.body) : failWith(answer))
      )

    const callForObject = (verb: Verb, resourceLabel: string, request: HttpRequest) =>
      call(verb, resourceLabel, request).pipe(
        Effect.flatMap((body) => parseObject(`${request.method} ${request.path}`, body))
      )

    const labelOf = (resource: ResourceType, subresource?: "status") =>
      subresource === undefined ? resource.plural : `${resource.plural}/${subresource}`

    const get = (resource: ResourceType, namespace: string | undefined, name: string) =>
      Effect.flatMap(namespaceFor(resource, namespace, name), (ns) =>
        callForObject("get", labelOf(resource), { method: "GET", path: resourcePath(resource, { namespace: ns, name }) })
      )

    const listPath = (resource: ResourceType, listOptions: ListOptions) =>
      resourcePath(resource, { namespace: listOptions.namespace }) +
      queryString({
        labelSelector: listOptions.labelSelector,
        fieldSelector: listOptions.fieldSelector,
        limit: listOptions.limit,
        continue: listOptions.continue
      })

    /** A List answer parsed whole. */
    const listOf = (resource: ResourceType, path: string, body: string): Effect.Effect<ObjectList, KubeError> => {
      const decoded = Option.getOrUndefined(decodeList(body))
      const items = decoded?.items ?? []
      if (decoded === undefined || !items.every(isKubeObject)) return Effect.fail(malformedAnswer(`GET ${path}`, body))
      const { apiVersion, kind } = typeOfItems(resource, decoded)
      return Effect.succeed<ObjectList>({ items: items.map((item) => adoptTypeMeta(item, apiVersion, kind)), ...pageMetadata(decoded) })
    }

    const list = (resource: ResourceType, listOptions: ListOptions = {}): Effect.Effect<ObjectList, KubeError> => {
      const path = listPath(resource, listOptions)
      return call("list", labelOf(resource), { method: "GET", path }).pipe(Effect.flatMap((body) => listOf(resource, path, body)))
    }

    /**
     * Resources read as JSON only, by `<apiVersion>|<kind>`: a protobuf page of theirs held
     * something the schema does not know (an API server newer than this build).
     */
    const jsonOnly = new Set<string>()

    /** A page in protobuf, decoded item by item into the objects its JSON would have given. */
    const protobufPage = (resource: ResourceType, message: Message, body: ByteChunks, listOptions: ListOptions): Effect.Effect<ObjectPage, KubeError> => {
      const refuse = (error: UnreadableProtobuf) => {
        jsonOnly.add(`${resource.apiVersion}|${resource.kind}`)
        return `${resource.plural} in protobuf: ${error.message}; reading them as JSON from now on`
      }
      let page: ReturnType<typeof decodeProtobufList>
      try {
        page = decodeProtobufList(body, message, {
          dropManagedFields: listOptions.omitManagedFields === true,
          ...(listOptions.onlyMembers === undefined ? {} : { keepMembers: new Set(listOptions.onlyMembers) })
        })
      } catch (error) {
        // Retried (Transient), as JSON.
        if (error instanceof UnreadableProtobuf) return Effect.fail(new Transient({ message: refuse(error) }))
        throw error
      }
      function* objects(): Generator<KubeObject> {
        try {
          for (const item of page.items()) {
            if (!isKubeObject(item)) throw new MalformedObject(`${resource.plural} in protobuf: an item without metadata.name`)
            yield adoptTypeMeta(item, resource.apiVersion, resource.kind)
          }
        } catch (error) {
          if (error instanceof UnreadableProtobuf) throw new UnreadableEncoding(refuse(error))
          throw error
        }
      }
      return Effect.succeed<ObjectPage>({
        size: page.size,
        objects,
        bytes: body.length,
        encoding: "protobuf",
        resourceVersion: page.resourceVersion,
        ...(page.continue === "" ? {} : { continue: page.continue })
      })
    }

    const listPage = (resource: ResourceType, listOptions: ListOptions = {}): Effect.Effect<ObjectPage, KubeError> => {
      const path = listPath(resource, listOptions)
      const message = listOptions.protobuf === true && !jsonOnly.has(`${resource.apiVersion}|${resource.kind}`)
        ? messageOfResource(options.protobufSchema ?? builtInMessages(), resource)
        : undefined
      const request: HttpRequest = { method: "GET", path, ...(message === undefined ? {} : { accept: protobufOrJson }) }
      return exchange("list", labelOf(resource), request, readChunksAnswer).pipe(
        Effect.flatMap((answer) => {
          if (answer.status < 200 || answer.status >= 300) return failWith({ ...answer, body: protobufStatusJson(answer.body) ?? answer.body.text() })
          if (message !== undefined && isProtobufAnswer(answer.body)) return protobufPage(resource, message, answer.body, listOptions)
          const split = splitList(answer.body, {
            dropManagedFields: listOptions.omitManagedFields === true,
            ...(listOptions.onlyMembers === undefined ? {} : { keepMembers: new Set(listOptions.onlyMembers) })
          })
          const envelope = split === undefined ? undefined : Option.getOrUndefined(decodeEnvelope(split.envelope))
          // Not the usual shape (`items: null`, say): parsed whole, with the same checks as `list`.
          if (split === undefined || envelope === undefined) return Effect.map(listOf(resource, path, answer.body.text()), pageOfList)
          const { apiVersion, kind } = typeOfItems(resource, envelope)
          function* objects(): Generator<KubeObject> {
            for (const text of split!.items()) {
              const parsed = parseItem(text)
              if (!isKubeObject(parsed)) throw new MalformedObject(malformedAnswer(`GET ${path}`, text).message)
              yield adoptTypeMeta(parsed, apiVersion, kind)
            }
          }
          return Effect.succeed<ObjectPage>({ size: split.size, objects, bytes: answer.body.length, encoding: "json", ...pageMetadata(envelope) })
        })
      )
    }

    const create = (resource: ResourceType, object: KubeObject) =>
      Effect.flatMap(namespaceFor(resource, object.metadata.namespace, object.metadata.name), (ns) =>
        callForObject("create", labelOf(resource), {
          method: "POST",
          path: resourcePath(resource, { namespace: ns }),
          body: withTypeMeta(object, resource.apiVersion, resource.kind)
        })
      )

    const put = (resource: ResourceType, object: KubeObject, subresource?: "status") =>
      Effect.flatMap(namespaceFor(resource, object.metadata.namespace, object.metadata.name), (ns) =>
        callForObject("update", labelOf(resource, subresource), {
          method: "PUT",
          path: resourcePath(resource, { namespace: ns, name: object.metadata.name, subresource }),
          body: withTypeMeta(object, resource.apiVersion, resource.kind)
        })
      )

    const patch = (
      resource: ResourceType,
      namespace: string | undefined,
      name: string,
      body: unknown,
      patchOptions: PatchOptions = {}
    ) =>
      Effect.flatMap(namespaceFor(resource, namespace, name), (ns) =>
        callForObject("patch", labelOf(resource, patchOptions.subresource), {
          method: "PATCH",
          path: resourcePath(resource, { namespace: ns, name, subresource: patchOptions.subresource }),
          body,
          contentType: "application/merge-patch+json"
        })
      )

    const remove = (
      resource: ResourceType,
      namespace: string | undefined,
      name: string,
      deleteOptions: DeleteOptions = {}
    ) =>
      Effect.flatMap(namespaceFor(resource, namespace, name), (ns) =>
        call("delete", labelOf(resource), {
          method: "DELETE",
          path: resourcePath(resource, { namespace: ns, name }),
          body: {
            apiVersion: "v1",
            kind: "DeleteOptions",
            ...(deleteOptions.propagationPolicy !== undefined
              ? { propagationPolicy: deleteOptions.propagationPolicy }
              : {})
          }
        })
      ).pipe(Effect.asVoid)

    /**
     * One watch request, owned here rather than through client-node's Watch/informer (which
     * stop for good on errors other than 410): ListWatch decides when to re-list or resume.
     * The response is read as newline-delimited JSON, re-split across chunk boundaries.
     * Ending or interrupting the stream aborts the request (the AbortController is released
     * with the stream's scope).
     */
    const watch = (resource: ResourceType, watchOptions: WatchOptions) =>
      Stream.unwrap(
        Effect.gen(function*() {
          const path = resourcePath(resource, { namespace: watchOptions.namespace }) +
            queryString({
              watch: 1,
              resourceVersion: watchOptions.resourceVersion,
              allowWatchBookmarks: true,
              timeoutSeconds: watchOptions.timeoutSeconds,
              labelSelector: watchOptions.labelSelector
            })
          const lifetime = yield* Effect.acquireRelease(
            Effect.sync(() => new AbortController()),
            (controller) => Effect.sync(() => controller.abort())
          )
          const opened = yield* exchange(
            "watch",
            labelOf(resource),
            { method: "GET", path },
            async (response): Promise<http.IncomingMessage | TextAnswer> =>
              response.statusCode !== undefined && response.statusCode >= 200 && response.statusCode < 300
                ? response
                : await readAnswer(response),
            lifetime.signal
          )
          if (!(opened instanceof http.IncomingMessage)) return yield* failWith(opened)
          const events = Stream.fromAsyncIterable(
            opened as AsyncIterable<Uint8Array>,
            (error) => new Transient({ message: `watch GET ${path} broke: ${describe(error)}` })
          ).pipe(
            Stream.decodeText(),
            Stream.splitLines,
            Stream.filter((line) => line.trim() !== ""),
            Stream.mapEffect((line) => decodeWatchLine(resource, line))
          )
          if (watchOptions.timeoutSeconds === undefined) return events
          // The server ends the watch after timeoutSeconds; silence well past that is a dead connection.
          return events.pipe(
            Stream.timeoutOrElse({
              duration: Duration.sum(Duration.seconds(watchOptions.timeoutSeconds), watchSilenceGrace),
              orElse: () =>
                Stream.fail(new Transient({ message: `watch GET ${path}: the connection went silent` }))
            })
          )
        })
      )

    const podLogs = (namespace: string, name: string, logOptions: LogOptions = {}) =>
      call("get", "pods/log", {
        method: "GET",
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/log` +
          queryString({ container: logOptions.container, limitBytes: logOptions.limitBytes }),
        accept: "text/plain, */*"
      })

    return KubeClient.of({
      get,
      list,
      listPage,
      create,
      replace: (resource, object) => put(resource, object),
      replaceStatus: (resource, object) => put(resource, object, "status"),
      patch,
      delete: remove,
      watch,
      podLogs
    })
  })

/**
 * The KubeClient Layer for a real API server. Configuration, in order: `kubeconfig`
 * (`--kubeconfig`), KUBECONFIG, the in-cluster service account (in a Pod), ~/.kube/config;
 * `context` picks a context other than the current one.
 */
const layer = (options: LiveKubeClientOptions = {}): Layer.Layer<KubeClient, KubeConfigError, Metrics> =>
  Layer.effect(KubeClient, make(options))

export const LiveKubeClient = { make, layer } as const
