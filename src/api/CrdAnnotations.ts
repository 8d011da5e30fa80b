/**
 * Kubernetes-only parts of a CRD's OpenAPI schema that have no Effect Schema equivalent.
 * Schemas carry them as the `crd` annotation; CrdGenerator copies them into the CRD.
 */
export interface CrdExtras {
  readonly default?: unknown
  readonly format?: string
  readonly "x-kubernetes-validations"?: ReadonlyArray<{ readonly rule: string; readonly message: string }>
  readonly "x-kubernetes-list-type"?: "atomic" | "set" | "map"
  readonly "x-kubernetes-list-map-keys"?: ReadonlyArray<string>
  readonly "x-kubernetes-preserve-unknown-fields"?: boolean
  readonly "x-kubernetes-map-type"?: "atomic" | "granular"
  readonly maxItems?: number
  readonly maxLength?: number
}

export const crd = (extras: CrdExtras) => ({ crd: extras })
