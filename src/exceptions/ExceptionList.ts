import { Effect, Schema } from "effect"
import { type ComplianceException, ComplianceException as ExceptionSchema } from "../api/ComplianceException.ts"
import { KubeClient } from "../services/kube/KubeClient.ts"
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
  const exceptions: Array<ComplianceException> = []
  for (const object of listed) {
    const decoded = decode(object)
    if (decoded._tag === "Some") exceptions.push(decoded.value)
    else yield* Effect.logWarning("a ComplianceException does not decode; it is not applied", { namespace: object.metadata.namespace, name: object.metadata.name })
  }
  return exceptions as ReadonlyArray<ComplianceException>
})

/** Provides the client, for callers holding one. */
export const listExceptionsWith = (kube: KubeClient["Service"]) => listExceptions.pipe(Effect.provideService(KubeClient, kube))
