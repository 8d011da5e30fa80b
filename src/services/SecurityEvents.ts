import { Clock, Context, DateTime, Effect, Layer } from "effect"
import { type ComplianceScanRun, kind as runKind } from "../api/ComplianceScanRun.ts"
import { apiVersion } from "../api/ObjectMeta.ts"
import { type EventClass, type EventType, kind as eventKind, type SecurityEvent } from "../api/SecurityEvent.ts"
import type { Severity } from "../api/Severity.ts"
import { KubeClient } from "./kube/KubeClient.ts"
import type { KubeError } from "./kube/KubeErrors.ts"
import { Resources } from "./kube/Resources.ts"
import { retryTransient } from "./kube/Retry.ts"
import { Metrics } from "./Metrics.ts"
import { OperatorConfig } from "./OperatorConfig.ts"

export interface SecurityEventInput {
  readonly run: ComplianceScanRun
  readonly type: EventType
  readonly class: EventClass
  readonly severity: Severity
  readonly signals: Readonly<Record<string, string>>
}

/**
 * The one name of a run's event of a type. Deterministic, so that a second attempt (after a
 * crash, a restart, a new leader) answers AlreadyExists instead of writing a duplicate.
 */
export const securityEventName = (runUID: string, type: EventType): string =>
  `compliance-scan-${runUID}-${type.replace(/^ComplianceScan/u, "").toLowerCase()}`

/** Writes SecurityEvents: exactly once per run and type; AlreadyExists counts as sent. */
export class SecurityEvents extends Context.Service<
  SecurityEvents,
  { readonly emit: (input: SecurityEventInput) => Effect.Effect<void, KubeError> }
>()("compliance-scan/services/SecurityEvents") {
  static readonly layer = Layer.effect(
    SecurityEvents,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const metrics = yield* Metrics
      const config = yield* OperatorConfig
      const emit = Effect.fn("SecurityEvents.emit")(function*(input: SecurityEventInput) {
        const { run } = input
        const detectedAt = DateTime.formatIso(DateTime.makeUnsafe(yield* Clock.currentTimeMillis))
        const event: SecurityEvent = {
          apiVersion,
          kind: eventKind,
          metadata: {
            name: securityEventName(run.metadata.uid!, input.type),
            labels: {
              "app.kubernetes.io/managed-by": "compliance-scan",
              "security.ugallu.io/run-uid": run.metadata.uid!,
              "security.ugallu.io/event-type": input.type
            }
          },
          spec: {
            class: input.class,
            type: input.type,
            severity: input.severity,
            clusterIdentity: { clusterName: config.clusterName, clusterID: config.clusterID },
            source: {
              apiVersion,
              kind: "Operator",
              name: "compliance-scan",
              version: config.version,
              instance: config.identity
            },
            subject: {
              apiVersion,
              kind: runKind,
              name: run.metadata.name,
              namespace: run.metadata.namespace!,
              uid: run.metadata.uid!
            },
            detectedAt,
            signals: { ...input.signals },
            correlationID: run.metadata.uid!
          }
        }
        yield* retryTransient(kube.create(Resources.SecurityEvent, event)).pipe(
          Effect.catchTag("AlreadyExists", () => Effect.void)
        )
        metrics.securityEventsTotal.inc({ type: input.type, class: input.class })
      })
      return SecurityEvents.of({ emit })
    })
  )
}
