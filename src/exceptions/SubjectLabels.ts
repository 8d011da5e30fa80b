import { Effect } from "effect"
import type { Check, Subject } from "../api/Check.ts"
import type { ComplianceException } from "../api/ComplianceException.ts"
import type { ScannerName } from "../api/ComplianceScanRun.ts"
import { builtInKinds } from "../backends/cel/CelKinds.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
import { listAll } from "../services/kube/ListWatch.ts"
import { matchesCheck, validityOf } from "./ExceptionMatcher.ts"

/**
 * Subjects carry no labels (a Result would grow by every object's labels). When an active
 * exception selects subjects by label, the kinds of the findings it could cover are listed
 * once each (the built-in kinds the operator may list) and their labels looked up; a kind
 * that cannot be listed has unknown labels, which never match.
 */
const keyOf = (kind: string, namespace: string | undefined, name: string) => `${kind}/${namespace ?? ""}/${name}`

export const subjectLabelsFor = (
  checks: ReadonlyArray<Check>,
  exceptions: ReadonlyArray<ComplianceException>,
  context: { readonly backend: ScannerName; readonly now: number; readonly maxDurationMillis: number }
) =>
  Effect.gen(function*() {
    const selecting = exceptions.filter((exception) =>
      exception.spec.match.subjects?.labelSelector !== undefined &&
      validityOf(exception, context.now, context.maxDurationMillis)._tag === "Active"
    )
    if (selecting.length === 0) return undefined
    const kinds = new Set<string>()
    for (const check of checks) {
      if (!selecting.some((exception) => matchesCheck(exception, check, context.backend))) continue
      for (const subject of check.subjects ?? []) if (subject.outcome === "fail" || subject.outcome === "warn") kinds.add(subject.kind)
    }
    const labels = new Map<string, Readonly<Record<string, string>>>()
    for (const kind of kinds) {
      const resource = builtInKinds.find((known) => known.kind === kind)
      if (resource === undefined) continue
      const listed = yield* listAll(resource).pipe(
        Effect.map((list) => list.items),
        Effect.catchTags({
          Forbidden: (error) => Effect.logWarning("cannot list a kind to match exceptions by label", { kind, message: error.message }).pipe(Effect.as([])),
          NotFound: () => Effect.succeed([])
        })
      )
      for (const object of listed) labels.set(keyOf(kind, object.metadata.namespace, object.metadata.name), object.metadata.labels ?? {})
    }
    return (subject: Subject) => labels.get(keyOf(subject.kind, subject.namespace, subject.name))
  })

/** For callers holding a client. */
export const subjectLabelsWith = (kube: KubeClient["Service"], ...args: Parameters<typeof subjectLabelsFor>) =>
  subjectLabelsFor(...args).pipe(Effect.provideService(KubeClient, kube))
