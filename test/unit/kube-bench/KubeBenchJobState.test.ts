import { describe, expect, it } from "@effect/vitest"
import { observeJob } from "../../../src/backends/kube-bench/KubeBenchJobState.ts"
import type { KubeObject } from "../../../src/services/kube/KubeObject.ts"

const job = (status: Record<string, unknown> = {}, uid = "job-uid"): KubeObject => ({
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: { name: "kb-run-cp-1-0123456789", namespace: "jobs", uid },
  status
})

const pod = (
  name: string,
  status: Record<string, unknown>,
  ownerUid = "job-uid",
  creationTimestamp = "2026-01-01T00:00:00Z"
): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name,
    namespace: "jobs",
    creationTimestamp,
    ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: "kb-run-cp-1-0123456789", uid: ownerUid, controller: true }]
  },
  status
})

const waiting = (reason: string, message = "details") => ({
  phase: "Pending",
  containerStatuses: [{ name: "kube-bench", state: { waiting: { reason, message } } }]
})

describe("observeJob: what a kube-bench Job and its Pod say about the node", () => {
  it("no Pod yet, or a Pending one: pending; a Running Pod: running", () => {
    expect(observeJob(job(), [])).toEqual({ _tag: "Pending" })
    expect(observeJob(job(), [pod("p", { phase: "Pending" })])).toEqual({ _tag: "Pending" })
    expect(observeJob(job({ active: 1 }), [pod("p", { phase: "Running" })])).toEqual({ _tag: "Running" })
  })

  it("a succeeded Pod is read at once, even before the Job controller marks the Job complete", () => {
    expect(observeJob(job(), [pod("p", { phase: "Succeeded" })])).toEqual({ _tag: "Succeeded", podName: "p" })
  })

  it.each([
    ["ErrImagePull", "ImagePullFailed"],
    ["ImagePullBackOff", "ImagePullFailed"],
    ["InvalidImageName", "ImagePullFailed"],
    ["CreateContainerConfigError", "ContainerConfigError"],
    ["CreateContainerError", "ContainerConfigError"]
  ])("a container waiting with %s fails the node at once with %s", (waitingReason, reason) => {
    const observation = observeJob(job(), [pod("p", waiting(waitingReason, "Back-off pulling image \"kube-bench:nope\""))])
    expect(observation).toEqual({
      _tag: "Failed",
      reason,
      message: `Pod p of Job kb-run-cp-1-0123456789 cannot start: ${waitingReason}: Back-off pulling image "kube-bench:nope"`
    })
  })

  it("ContainerCreating is ordinary waiting, not a failure", () => {
    expect(observeJob(job(), [pod("p", waiting("ContainerCreating"))])).toEqual({ _tag: "Pending" })
  })

  it("a failed Job reports its condition, the exit code and the termination message", () => {
    const failed = job({
      failed: 1,
      conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }]
    })
    const terminated = pod("p", {
      phase: "Failed",
      containerStatuses: [{
        name: "kube-bench",
        state: { terminated: { exitCode: 1, reason: "Error", message: "unable to determine benchmark version" } }
      }]
    })
    expect(observeJob(failed, [terminated])).toEqual({
      _tag: "Failed",
      reason: "JobFailed",
      message:
        "Job kb-run-cp-1-0123456789 failed (BackoffLimitExceeded: Job has reached the specified backoff limit); exit code 1 (Error): unable to determine benchmark version",
      podName: "p"
    })
  })

  it("a failed Pod fails the node without waiting for the Job controller", () => {
    const failedPod = pod("p", {
      phase: "Failed",
      containerStatuses: [{ name: "kube-bench", state: { terminated: { exitCode: 137, reason: "OOMKilled" } } }]
    })
    expect(observeJob(job(), [failedPod])).toEqual({
      _tag: "Failed",
      reason: "JobFailed",
      message: "Pod p of Job kb-run-cp-1-0123456789 failed: exit code 137 (OOMKilled)",
      podName: "p"
    })
  })

  it("a Job that hit its deadline without a Pod says so", () => {
    const expired = job({ conditions: [{ type: "Failed", status: "True", reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" }] })
    expect(observeJob(expired, [])).toMatchObject({
      reason: "JobFailed",
      message: "Job kb-run-cp-1-0123456789 failed (DeadlineExceeded: Job was active longer than specified deadline)"
    })
  })

  it("ignores Pods of an earlier Job of the same name (still terminating after a restart)", () => {
    const stale = pod("old", { phase: "Failed" }, "earlier-job-uid")
    expect(observeJob(job(), [stale, pod("new", { phase: "Running" })])).toEqual({ _tag: "Running" })
  })

  it("a complete Job whose Pod is gone cannot be read: the node fails instead of waiting forever", () => {
    const complete = job({ succeeded: 1, conditions: [{ type: "Complete", status: "True" }] })
    expect(observeJob(complete, [])).toMatchObject({ _tag: "Failed", reason: "JobFailed", message: expect.stringMatching(/Pod is gone/) })
  })
})
