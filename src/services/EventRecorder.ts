import { Clock, Context, DateTime, Effect, Layer } from "effect"
import type { ComplianceScanRun } from "../api/ComplianceScanRun.ts"
import { KubeClient } from "./kube/KubeClient.ts"
import { Resources } from "./kube/Resources.ts"
import { OperatorConfig } from "./OperatorConfig.ts"

/** What an Event can be about: a run, or a schedule (anything with apiVersion, kind and metadata). */
interface Involved {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: ComplianceScanRun["metadata"]
}

export interface RunEvent {
  readonly type: "Normal" | "Warning"
  /** UpperCamelCase, as `kubectl describe` shows it: Started, Succeeded, Failed, ... */
  readonly reason: string
  readonly message: string
}

/**
 * Kubernetes Events on runs (what `kubectl describe csrun` shows). Best effort: an Event
 * that cannot be written is logged, never a reason to fail a run. Names are derived from
 * the run and reason, so a repeat after a restart bumps `count` instead of adding a copy.
 */
export class EventRecorder extends Context.Service<
  EventRecorder,
  { readonly record: (run: Involved, event: RunEvent) => Effect.Effect<void> }
>()("compliance-scan/services/EventRecorder") {
  static readonly layer = Layer.effect(
    EventRecorder,
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const config = yield* OperatorConfig
      const record = Effect.fn("EventRecorder.record")(function*(run: Involved, event: RunEvent) {
        const now = DateTime.formatIso(DateTime.makeUnsafe(yield* Clock.currentTimeMillis))
        const namespace = run.metadata.namespace!
        // Event names are DNS subdomains (<= 253 characters): a very long run name is shortened.
        const name = `${run.metadata.name.slice(0, 200)}.${run.metadata.uid!.slice(0, 8)}.${event.reason.toLowerCase()}`
        const create = kube.create(Resources.Event, {
          apiVersion: "v1",
          kind: "Event",
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: run.apiVersion,
            kind: run.kind,
            name: run.metadata.name,
            namespace,
            uid: run.metadata.uid,
            resourceVersion: run.metadata.resourceVersion
          },
          type: event.type,
          reason: event.reason,
          message: event.message,
          source: { component: "compliance-scan", host: config.identity },
          reportingComponent: "security.ugallu.io/compliance-scan",
          reportingInstance: config.identity,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1
        })
        yield* create.pipe(
          Effect.catchTag("AlreadyExists", () =>
            kube.get(Resources.Event, namespace, name).pipe(
              Effect.flatMap((existing) =>
                kube.patch(Resources.Event, namespace, name, {
                  count: Number(existing.count ?? 1) + 1,
                  lastTimestamp: now,
                  message: event.message
                })
              )
            )),
          Effect.catch((error) => Effect.logWarning("could not record a Kubernetes Event", { reason: event.reason, error: error.message }))
        )
      })
      return EventRecorder.of({ record })
    })
  )
}
