/**
 * A Kubernetes object as JSON. The client moves objects as they are on the wire; typed
 * views (ComplianceScanRun, Job, ...) are decoded where they are used.
 */
export interface KubeObject {
  readonly apiVersion?: string
  readonly kind?: string
  readonly metadata: KubeMetadata
  readonly [key: string]: unknown
}

export interface KubeMetadata {
  readonly name: string
  readonly namespace?: string
  readonly uid?: string
  readonly resourceVersion?: string
  readonly generation?: number
  readonly creationTimestamp?: string
  readonly deletionTimestamp?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: Readonly<Record<string, string>>
  readonly ownerReferences?: ReadonlyArray<{
    readonly apiVersion: string
    readonly kind: string
    readonly name: string
    readonly uid: string
    readonly controller?: boolean
    readonly blockOwnerDeletion?: boolean
  }>
  readonly [key: string]: unknown
}

export type WatchEvent =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly object: KubeObject }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }

export interface ObjectList {
  readonly items: ReadonlyArray<KubeObject>
  readonly resourceVersion: string
  /** Set when more pages follow (the `continue` token). */
  readonly continue?: string
}
