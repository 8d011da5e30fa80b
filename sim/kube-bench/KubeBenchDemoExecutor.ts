import { Duration, Effect } from "effect"
import type { JobExecutor, PodOutcome } from "../cluster/SimulatedCluster.ts"
import { kubeBenchLabelKeys, managedByValue } from "../../src/backends/kube-bench/KubeBenchJob.ts"

export interface KubeBenchDemoOptions {
  /** How long each simulated kube-bench run takes (default 1 s: long enough to watch status.nodes move). */
  readonly duration?: Duration.Input
}

/**
 * Plays kube-bench in the simulated cluster: each kube-bench Job's Pod "prints" the report
 * `reportFor(node)` returns (a saved `kube-bench run --json` output) as its log, exactly
 * what the real container's stdout would be. A node without a report fails the way
 * kube-bench does when it cannot detect the node's components (exit code 1). Jobs that
 * are not kube-bench's succeed with an empty log.
 */
export const kubeBenchDemoExecutor = (
  reportFor: (nodeName: string) => string | undefined,
  options: KubeBenchDemoOptions = {}
): JobExecutor =>
({ job, pod }) => {
  if (job.metadata.labels?.[kubeBenchLabelKeys.managedBy] !== managedByValue) {
    return Effect.succeed<PodOutcome>({ _tag: "Succeeded", log: "" })
  }
  const nodeName = String((pod["spec"] as { nodeName?: unknown } | undefined)?.nodeName ?? "")
  const report = reportFor(nodeName)
  const outcome: PodOutcome = report === undefined
    ? { _tag: "Failed", exitCode: 1, reason: "Error", message: `no kube-bench report for node ${nodeName}` }
    : { _tag: "Succeeded", log: report }
  return Effect.sleep(options.duration ?? Duration.seconds(1)).pipe(Effect.as(outcome))
}
