import { eventually } from "./Eventually.ts"
import type { Json, KubeHttp } from "./KubeHttp.ts"
import { apiVersions, resourcePath } from "./ResourcePaths.ts"

/** Paths and waits around ComplianceScanRuns, their Results and SecurityEvents. */
export const runPath = (namespace: string, name?: string) => resourcePath(apiVersions.ComplianceScanRun, "ComplianceScanRun", namespace, name)
export const resultPath = (namespace: string, name?: string) =>
  resourcePath(apiVersions.ComplianceScanResult, "ComplianceScanResult", namespace, name)
export const jobsPath = (namespace: string, name?: string) => resourcePath(apiVersions.Job, "Job", namespace, name)
export const podsPath = (namespace: string, name?: string) => resourcePath("v1", "Pod", namespace, name)

export const runManifest = (namespace: string, name: string, spec: Json): Json => ({
  apiVersion: apiVersions.ComplianceScanRun,
  kind: "ComplianceScanRun",
  metadata: { name, namespace },
  spec
})

export const createRun = (admin: KubeHttp, namespace: string, name: string, spec: Json) =>
  admin.create(runPath(namespace), runManifest(namespace, name, spec))

export const terminal = (run: Json) => run.status?.phase === "Succeeded" || run.status?.phase === "Failed"

/** Waits until the run satisfies `done` (default: a terminal phase); the error names the last status seen. */
export const waitForRun = async (
  admin: KubeHttp,
  namespace: string,
  name: string,
  options: { readonly timeoutMillis?: number; readonly done?: (run: Json) => boolean; readonly what?: string } = {}
): Promise<Json> => {
  let last: Json | undefined
  const done = options.done ?? terminal
  try {
    return await eventually(
      async () => {
        last = await admin.get(runPath(namespace, name))
        return done(last) ? last : undefined
      },
      { what: options.what ?? `run ${namespace}/${name} to finish`, timeoutMillis: options.timeoutMillis ?? 90_000, intervalMillis: 250 }
    )
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.status ?? null)}`)
  }
}

/** The SecurityEvents of a run (by the run-uid label the operator sets), sorted by type. */
export const eventsOfRun = async (admin: KubeHttp, uid: string): Promise<Array<Json>> => {
  const events = await admin.list(resourcePath(apiVersions.SecurityEvent, "SecurityEvent"), { labelSelector: `security.ugallu.io/run-uid=${uid}` })
  return events.sort((a, b) => String(a.spec.type).localeCompare(String(b.spec.type)))
}

/** Every SecurityEvent whose subject is in `namespace` (no label needed: a duplicate under another name counts too). */
export const eventsInNamespace = async (admin: KubeHttp, namespace: string): Promise<Array<Json>> => {
  const events = await admin.list(resourcePath(apiVersions.SecurityEvent, "SecurityEvent"))
  return events.filter((event) => event.spec?.subject?.namespace === namespace)
}
