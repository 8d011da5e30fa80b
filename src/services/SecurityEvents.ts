import { Clock, Context, DateTime, Effect, Layer } from "effect"
import { type ComplianceScanRun, kind as runKind } from "../api/ComplianceScanRun.ts"
import { apiVersion } from "../api/ObjectMeta.ts"
import { type EventClass, type EventType, kind as eventKind, type SecurityEvent } from "../api/SecurityEvent.ts"
import type { Severity } from "../api/Severity.ts"
import { KubeClient } from "./kube/KubeClient.ts"
import { AlreadyExists, type KubeError } from "./kube/KubeErrors.ts"
import type { KubeObject } from "./kube/KubeObject.ts"
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

/** How many suffixed names (`-1`, `-2`, ...) are tried when a run's event name is squatted. */
const maxSquattedNames = 5

/**
 * An event the operator wrote for this run and type: anyone allowed to create SecurityEvents
 * can create one under the name first, so a name alone proves nothing.
 */
const isOwnEvent = (object: KubeObject, type: EventType, runUID: string): boolean => {
  const spec = object.spec as Partial<SecurityEvent["spec"]> | undefined
  return spec?.type === type &&
    spec.subject?.uid === runUID &&
    spec.source?.kind === "Operator" &&
    spec.source.name === "compliance-scan" &&
    spec.source.apiVersion === apiVersion
}

/**
 * Writes SecurityEvents: exactly once per run and type. AlreadyExists counts as sent only
 * when the object there is the operator's own (type, run uid and source match); a foreign
 * object under the name is reported (warning, metric) and the event goes under the next
 * free suffixed name, so a squatter cannot suppress it.
 */
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
        const base = event.metadata.name
        for (let attempt = 0; attempt <= maxSquattedNames; attempt++) {
          const name = attempt === 0 ? base : `${base}-${attempt}`
          const created = yield* Effect.result(
            retryTransient(kube.create(Resources.SecurityEvent, { ...event, metadata: { ...event.metadata, name } }))
          )
          if (created._tag === "Success") break
          if (created.failure._tag !== "AlreadyExists") return yield* Effect.fail(created.failure)
          // Sent before (a retry, a restart, another leader) only if the object there is ours.
          const existing = yield* retryTransient(kube.get(Resources.SecurityEvent, undefined, name))
          if (isOwnEvent(existing, input.type, run.metadata.uid!)) break
          metrics.securityEventsSquattedTotal.inc({ type: input.type })
          const spec = existing.spec as Partial<SecurityEvent["spec"]> | undefined
          yield* Effect.logWarning("a SecurityEvent name is taken by an object the operator did not write; writing under another name", {
            name,
            squatter: {
              uid: existing.metadata.uid,
              created: existing.metadata.creationTimestamp,
              source: spec?.source,
              type: spec?.type,
              subjectUID: spec?.subject?.uid
            }
          })
          if (attempt === maxSquattedNames) {
            return yield* Effect.fail(
              new AlreadyExists({ message: `SecurityEvent names ${base} and ${base}-1..${maxSquattedNames} are all taken by foreign objects` })
            )
          }
        }
        metrics.securityEventsTotal.inc({ type: input.type, class: input.class })
      })
      return SecurityEvents.of({ emit })
    })
  )
}
