import { Schema } from "effect"
import { apiVersion, ObjectMeta } from "./ObjectMeta.ts"
import { Severity } from "./Severity.ts"

export const kind = "SecurityEvent"

export const eventClasses = ["Detection", "Anomaly", "PolicyViolation", "Forensic", "Compliance", "Audit"] as const
export const EventClass = Schema.Literals(eventClasses)
export type EventClass = typeof EventClass.Type

export const eventTypes = [
  "ComplianceScanStarted",
  "ComplianceScanCompleted",
  "ComplianceScanFailed",
  "ComplianceExceptionExpiring",
  "ComplianceExceptionExpired",
  "ComplianceDriftDetected"
] as const
export const EventType = Schema.Literals(eventTypes)
export type EventType = typeof EventType.Type

export const SecurityEventSpec = Schema.Struct({
  class: EventClass,
  type: Schema.String,
  severity: Severity,
  clusterIdentity: Schema.Struct({
    clusterName: Schema.optionalKey(Schema.String),
    clusterID: Schema.optionalKey(Schema.String)
  }),
  source: Schema.Struct({
    apiVersion: Schema.optionalKey(Schema.String),
    kind: Schema.optionalKey(Schema.String),
    name: Schema.String,
    version: Schema.optionalKey(Schema.String),
    instance: Schema.optionalKey(Schema.String)
  }),
  subject: Schema.Struct({
    apiVersion: Schema.optionalKey(Schema.String),
    kind: Schema.String,
    name: Schema.String,
    namespace: Schema.optionalKey(Schema.String),
    uid: Schema.optionalKey(Schema.String)
  }),
  detectedAt: Schema.String,
  signals: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  correlationID: Schema.optionalKey(Schema.String)
})
export type SecurityEventSpec = typeof SecurityEventSpec.Type

export const SecurityEvent = Schema.Struct({
  apiVersion: Schema.Literal(apiVersion),
  kind: Schema.Literal(kind),
  metadata: ObjectMeta,
  spec: SecurityEventSpec
})
export type SecurityEvent = typeof SecurityEvent.Type
