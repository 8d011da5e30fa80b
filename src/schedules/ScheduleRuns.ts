import { kind as runKind } from "../api/ComplianceScanRun.ts"
import {
  type ComplianceScanSchedule,
  kind as scheduleKind,
  runNowAnnotation,
  scheduledTimeAnnotation
} from "../api/ComplianceScanSchedule.ts"
import { apiVersion } from "../api/ObjectMeta.ts"
import { ScheduleLabel } from "../api/SeriesLabels.ts"
import type { KubeObject } from "../services/kube/KubeObject.ts"

/** FNV-1a, 32 bits: a stable hash for names and jitter (the same on every replica and restart). */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

/** MurmurHash3's finaliser: FNV-1a alone leaves its high bits alike for names that differ at the end. */
const mix = (hash: number): number => {
  let h = hash
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/**
 * The one name of a schedule's run for a scheduled time (minutes since the epoch, as CronJob
 * names its Jobs): whoever creates it, whenever, a second create answers AlreadyExists.
 */
export const scheduledRunName = (schedule: string, scheduledAt: number): string =>
  `${schedule}-${Math.floor(scheduledAt / 60_000)}`

/** The run a `run-now` annotation value asks for: the same value never makes a second run. */
export const runNowRunName = (schedule: string, value: string): string =>
  `${schedule}-now-${fnv1a(value).toString(36)}`

/**
 * How long after each scheduled time this schedule's runs start: a fixed share of `jitter`
 * from a hash of namespace/name, so many schedules on the same cron spread out, and each
 * one keeps a steady rhythm across restarts and leaders.
 */
export const jitterOffsetMillis = (namespace: string, name: string, jitterMillis: number): number =>
  jitterMillis <= 0 ? 0 : Math.floor((mix(fnv1a(`${namespace}/${name}`)) / 2 ** 32) * jitterMillis)

/** A run of the schedule: its template, owned by the schedule, labelled with its name. */
export const scheduledRun = (
  schedule: ComplianceScanSchedule,
  name: string,
  scheduledTime: string,
  runNow?: string
): KubeObject => ({
  apiVersion,
  kind: runKind,
  metadata: {
    name,
    namespace: schedule.metadata.namespace!,
    labels: { [ScheduleLabel]: schedule.metadata.name, "app.kubernetes.io/managed-by": "compliance-scan" },
    annotations: {
      [scheduledTimeAnnotation]: scheduledTime,
      ...(runNow === undefined ? {} : { [runNowAnnotation]: runNow })
    },
    ownerReferences: [{
      apiVersion,
      kind: scheduleKind,
      name: schedule.metadata.name,
      uid: schedule.metadata.uid!,
      controller: true,
      // Setting it needs `update` on the schedule's finalizers; deletion order does not matter here.
      blockOwnerDeletion: false
    }]
  },
  spec: schedule.spec.runTemplate
})
