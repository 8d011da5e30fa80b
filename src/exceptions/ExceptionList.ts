import { Effect, Schema } from "effect"
import { type ComplianceException, ComplianceException as ExceptionSchema } from "../api/ComplianceException.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"
import { listAll } from "../services/kube/ListWatch.ts"
import { Resources } from "../services/kube/Resources.ts"

const decode = Schema.decodeUnknownOption(ExceptionSchema)

/**
 * Every ComplianceException in the cluster. One that does not decode (only possible without
 * the CRD's validation) is skipped with a warning: it excepts nothing. Without the CRD or the
 * permission to list it, there are no exceptions (a warning says so): findings stay as found.
 */
export const listExceptions = Effect.gen(function*() {
  const listed = yield* listAll(Resources.ComplianceException).pipe(
    Effect.map((list) => list.items),
    Effect.catchTags({
      NotFound: (error) => Effect.logWarning("ComplianceExceptions cannot be listed (CRD not installed?); none applied", { message: error.message }).pipe(Effect.as([])),
      Forbidden: (error) => Effect.logWarning("the operator may not list ComplianceExceptions; none applied", { message: error.message }).pipe(Effect.as([]))
    })
  )
  return yield* decodeExceptions(listed)
})

/** The objects that decode as ComplianceExceptions; the others are skipped with a warning. */
export const decodeExceptions = Effect.fnUntraced(function*(objects: ReadonlyArray<KubeObject>) {
  const exceptions: Array<ComplianceException> = []
  for (const object of objects) {
    const decoded = decode(object)
    if (decoded._tag === "Some") exceptions.push(decoded.value)
    else yield* Effect.logWarning("a ComplianceException does not decode; it is not applied", { namespace: object.metadata.namespace, name: object.metadata.name })
  }
  return exceptions as ReadonlyArray<ComplianceException>
})
