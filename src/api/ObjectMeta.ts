import { Schema } from "effect"

/** The API group and version of every resource this operator owns. */
export const group = "security.ugallu.io"
export const version = "v1alpha1"
export const apiVersion = `${group}/${version}`

export const OwnerReference = Schema.Struct({
  apiVersion: Schema.String,
  kind: Schema.String,
  name: Schema.String,
  uid: Schema.String,
  controller: Schema.optionalKey(Schema.Boolean),
  blockOwnerDeletion: Schema.optionalKey(Schema.Boolean)
})
export type OwnerReference = typeof OwnerReference.Type

/** The parts of metav1.ObjectMeta the operator reads; other keys pass through untouched. */
export const ObjectMeta = Schema.Struct({
  name: Schema.String,
  namespace: Schema.optionalKey(Schema.String),
  uid: Schema.optionalKey(Schema.String),
  resourceVersion: Schema.optionalKey(Schema.String),
  generation: Schema.optionalKey(Schema.Int),
  creationTimestamp: Schema.optionalKey(Schema.String),
  deletionTimestamp: Schema.optionalKey(Schema.String),
  labels: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  annotations: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  ownerReferences: Schema.optionalKey(Schema.Array(OwnerReference))
})
export type ObjectMeta = typeof ObjectMeta.Type

/** metav1.Condition */
export const Condition = Schema.Struct({
  type: Schema.String,
  status: Schema.Literals(["True", "False", "Unknown"]),
  observedGeneration: Schema.optionalKey(Schema.Int),
  lastTransitionTime: Schema.String,
  reason: Schema.String,
  message: Schema.String
})
export type Condition = typeof Condition.Type
