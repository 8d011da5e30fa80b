import { readFileSync } from "node:fs"
import { CORE_SCHEMA, load as loadYaml } from "js-yaml"

/**
 * kube-bench's own benchmark data, as its cfg/config.yaml of the pinned version says it:
 * `version_mapping` (Kubernetes minor or platform key -> benchmark) and `target_mapping`
 * (benchmark -> the targets it defines). The operator carries a generated copy
 * (kube-bench-mapping.json, `npx node scripts/generate-kube-bench-mapping.ts`) so it can
 * decide the benchmark without kube-bench; a cluster-tier test fails when the copy is stale
 * against the built cfg/.
 */
export interface KubeBenchMapping {
  /** `"1.28": "cis-1.10"`, `"ocp-4.13": "rh-1.8"`, `"eks-1.8.0": "eks-1.8.0"`, ... in file order. */
  readonly versionMapping: Readonly<Record<string, string>>
  /** Benchmark -> targets (`master`, `node`, `controlplane`, `etcd`, `policies`, `managedservices`). */
  readonly targetMapping: Readonly<Record<string, ReadonlyArray<string>>>
}

/** The copy's text from a cfg/config.yaml: the two sections only, stable JSON. */
export const renderKubeBenchMapping = (configYaml: string): string => {
  const config = loadYaml(configYaml, { schema: CORE_SCHEMA }) as { version_mapping?: Record<string, unknown>; target_mapping?: Record<string, unknown> }
  const mapping: KubeBenchMapping = {
    versionMapping: Object.fromEntries(Object.entries(config.version_mapping ?? {}).map(([key, value]) => [key, String(value)])),
    targetMapping: Object.fromEntries(
      Object.entries(config.target_mapping ?? {}).map(([key, value]) => [key, (value as Array<unknown>).map(String)])
    )
  }
  return `${JSON.stringify(mapping, null, 2)}\n`
}

export const shippedMappingUrl = new URL("./kube-bench-mapping.json", import.meta.url)

/** The shipped copy (part of the program and tested, so a broken file is a defect). */
export const loadKubeBenchMapping = (): KubeBenchMapping => JSON.parse(readFileSync(shippedMappingUrl, "utf8")) as KubeBenchMapping

/** Every benchmark kube-bench knows (those with targets), sorted. */
export const knownBenchmarks = (mapping: KubeBenchMapping): Array<string> => Object.keys(mapping.targetMapping).sort()
