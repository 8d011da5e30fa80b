import { Context, type Effect, type Stream } from "effect"
import type { KubeError } from "./KubeErrors.ts"
import type { KubeObject, ObjectList, ObjectPage, WatchEvent } from "./KubeObject.ts"
import type { ResourceType } from "./Resources.ts"

export interface ListOptions {
  readonly namespace?: string
  /** Kubernetes label selector syntax: `a=b,c!=d,e in (x,y),!f`. */
  readonly labelSelector?: string
  /** Only `metadata.name=` and `spec.nodeName=` are needed (and supported by the simulation). */
  readonly fieldSelector?: string
  readonly limit?: number
  readonly continue?: string
  /**
   * The caller never reads `metadata.managedFields`: a client may leave them out of the
   * objects it returns (the live client's `listPage` drops them before parsing). Not sent to
   * the API server, which has no such option.
   */
  readonly omitManagedFields?: boolean
  /**
   * The caller reads no member of the objects other than these (and `apiVersion`, `kind`,
   * `metadata`): a client may give `null` for the others' object and array values (the live
   * client's `listPage` does, before parsing: a running Pod's `status`, a Secret's `data`).
   * Not sent to the API server.
   */
  readonly onlyMembers?: ReadonlyArray<string>
  /**
   * The caller can take a page whose objects throw UnreadableEncoding (it lists again then,
   * as `forEachPage` does on ListAgain): `listPage` may ask for built-in kinds in Kubernetes'
   * protobuf encoding, which costs the API server less CPU than JSON. The objects are the
   * same either way.
   */
  readonly protobuf?: boolean
}

export interface WatchOptions {
  readonly namespace?: string
  readonly labelSelector?: string
  /** Resume after this resourceVersion; the server answers Gone (410) when it is too old. */
  readonly resourceVersion: string
  readonly timeoutSeconds?: number
}

export interface DeleteOptions {
  readonly propagationPolicy?: "Background" | "Foreground" | "Orphan"
}

export interface PatchOptions {
  /** Patch the status subresource instead of the main resource. */
  readonly subresource?: "status"
}

export interface LogOptions {
  readonly container?: string
  readonly limitBytes?: number
}

/**
 * The Kubernetes API as the operator uses it. Two Layers implement it: LiveKubeClient
 * (its own requests over node:http/https to a real API server, its own kubeconfig loading)
 * and sim/'s SimulatedCluster (in memory, tests and the demo).
 * Every failure is one of the typed KubeErrors; interrupting an effect aborts its request.
 */
export class KubeClient extends Context.Service<
  KubeClient,
  {
    readonly get: (resource: ResourceType, namespace: string | undefined, name: string) => Effect.Effect<KubeObject, KubeError>
    /** One page; use `listAll` from ListWatch for every page. */
    readonly list: (resource: ResourceType, options?: ListOptions) => Effect.Effect<ObjectList, KubeError>
    /**
     * One page whose objects are parsed as they are read (`forEachPage` uses it): a client
     * that parses JSON itself implements it to keep pages of parsed objects out of memory;
     * without it `list` is used.
     */
    readonly listPage?: (resource: ResourceType, options?: ListOptions) => Effect.Effect<ObjectPage, KubeError>
    readonly create: (resource: ResourceType, object: KubeObject) => Effect.Effect<KubeObject, KubeError>
    /** PUT with the object's resourceVersion: Conflict when it is stale. */
    readonly replace: (resource: ResourceType, object: KubeObject) => Effect.Effect<KubeObject, KubeError>
    /** PUT on the status subresource with the object's resourceVersion: Conflict when stale. */
    readonly replaceStatus: (resource: ResourceType, object: KubeObject) => Effect.Effect<KubeObject, KubeError>
    /** JSON merge patch (RFC 7386). */
    readonly patch: (
      resource: ResourceType,
      namespace: string | undefined,
      name: string,
      patch: unknown,
      options?: PatchOptions
    ) => Effect.Effect<KubeObject, KubeError>
    readonly delete: (
      resource: ResourceType,
      namespace: string | undefined,
      name: string,
      options?: DeleteOptions
    ) => Effect.Effect<void, KubeError>
    /** One watch request: ends when the server closes it; fails with Gone when the version is too old. */
    readonly watch: (resource: ResourceType, options: WatchOptions) => Stream.Stream<WatchEvent, KubeError>
    readonly podLogs: (namespace: string, name: string, options?: LogOptions) => Effect.Effect<string, KubeError>
  }
>()("compliance-scan/services/kube/KubeClient") {}
