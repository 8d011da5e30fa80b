import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse, stringify } from "yaml"

/**
 * kwok's configuration for one pool of fake nodes: the stock stages (node-initialize,
 * pod-ready, pod-complete, pod-delete: standalone kwok has none built in) and a ClusterLogs
 * rule that serves files as the logs of the pool's Pods.
 *
 * One change to the stock stages: the Pods of Jobs whose name contains `heldJobMarker` do
 * not complete by themselves; they stay Running until a test labels them with
 * `releaseLabel`. That is how tests hold scans "Running" for as long as they need (restart).
 */
export interface KwokConfigInput {
  /** The cache's kwok-stages folder (kustomize/stage of the kwok module). */
  readonly stagesDir: string
  /** container name -> log file; "*" is every other container. */
  readonly logFiles: Readonly<Record<string, string>>
  readonly heldJobMarker: string
  readonly releaseLabel: string
}

type Stage = {
  metadata: { name: string }
  spec: { selector?: { matchExpressions?: Array<{ key: string; operator: string; values?: Array<string> }> } }
}

const readStage = (stagesDir: string, file: string): Stage => parse(readFileSync(join(stagesDir, file), "utf8")) as Stage

const withExpressions = (stage: Stage, name: string, extra: NonNullable<NonNullable<Stage["spec"]["selector"]>["matchExpressions"]>): Stage => {
  const copy = structuredClone(stage)
  copy.metadata.name = name
  copy.spec.selector = { ...copy.spec.selector, matchExpressions: [...(copy.spec.selector?.matchExpressions ?? []), ...extra] }
  return copy
}

/** jq: is this Pod's Job (the Job controller's job-name label) a held one? */
const heldQuery = (marker: string) => `(.metadata.labels["batch.kubernetes.io/job-name"] // "") | contains(${JSON.stringify(marker)})`

export const kwokConfigText = (input: KwokConfigInput): string => {
  const podComplete = readStage(input.stagesDir, "pod/fast/pod-complete.yaml")
  const stages: Array<unknown> = [
    readStage(input.stagesDir, "node/fast/node-initialize.yaml"),
    readStage(input.stagesDir, "pod/fast/pod-ready.yaml"),
    withExpressions(podComplete, "pod-complete", [{ key: heldQuery(input.heldJobMarker), operator: "NotIn", values: ["true"] }]),
    withExpressions(podComplete, "pod-complete-released", [
      { key: `.metadata.labels["${input.releaseLabel}"]`, operator: "Exists" }
    ]),
    readStage(input.stagesDir, "pod/fast/pod-delete.yaml")
  ]
  const named = Object.entries(input.logFiles).filter(([container]) => container !== "*")
  const fallback = input.logFiles["*"]
  const clusterLogs = {
    apiVersion: "kwok.x-k8s.io/v1alpha1",
    kind: "ClusterLogs",
    metadata: { name: "cluster-tests-logs" },
    spec: {
      logs: [
        ...named.map(([container, file]) => ({ containers: [container], logsFile: file })),
        ...(fallback === undefined ? [] : [{ logsFile: fallback }])
      ]
    }
  }
  return [...stages, clusterLogs].map((document) => stringify(document)).join("---\n")
}
