import { Cron } from "croner"
import { Result, Schema } from "effect"

/** A schedule the operator cannot follow: its status says why (Ready=False with this reason). */
export class InvalidSchedule extends Schema.TaggedError<InvalidSchedule>()("InvalidSchedule", {
  reason: Schema.Literals(["InvalidSchedule", "InvalidTimeZone"]),
  message: Schema.String
}) {}

/**
 * The scheduled times of a cron expression in a time zone. croner (see README, "Dependencies")
 * computes them with the platform's Intl time zone data: DST gaps and repeated hours follow
 * Vixie cron (a fixed-time job in a gap runs right after it; in a repeated hour, once).
 */
export interface CronSchedule {
  /** The first scheduled time strictly after `after` (epoch millis); undefined if there is none. */
  readonly next: (after: number) => number | undefined
  /** The last scheduled time at or before `atOrBefore`; undefined if there is none. */
  readonly latest: (atOrBefore: number) => number | undefined
}

/** A time zone name the platform's Intl data knows (IANA names and their aliases, `UTC`). */
export const isKnownTimeZone = (name: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name })
    return true
  } catch {
    return false
  }
}

export const parseCronSchedule = (schedule: string, timeZone = "UTC"): Result.Result<CronSchedule, InvalidSchedule> => {
  if (!isKnownTimeZone(timeZone)) {
    return Result.fail(new InvalidSchedule({ reason: "InvalidTimeZone", message: `spec.timeZone ${JSON.stringify(timeZone)} is not a known IANA time zone` }))
  }
  let cron: Cron
  try {
    // Evaluation only: without a function croner starts no timer. `5-part`: minutes, not seconds.
    cron = new Cron(schedule.trim(), { mode: "5-part", timezone: timeZone, paused: true, fixedTimeRule: "no-wildcard" })
  } catch (error) {
    return Result.fail(new InvalidSchedule({ reason: "InvalidSchedule", message: `spec.schedule ${JSON.stringify(schedule)}: ${(error as Error).message}` }))
  }
  return Result.succeed({
    next: (after) => cron.nextRun(new Date(after))?.getTime(),
    latest: (atOrBefore) => cron.previousRuns(1, new Date(atOrBefore + 1))[0]?.getTime()
  })
}

/** Scheduled times in (after, upTo]: the latest, and how many (counted up to `cap`). */
export const scheduledTimesBetween = (
  cron: CronSchedule,
  after: number,
  upTo: number,
  cap = 1_000
): { readonly latest: number | undefined; readonly count: number } => {
  let count = 0
  for (let time = cron.next(after); time !== undefined && time <= upTo && count < cap; time = cron.next(time)) count++
  return { latest: count === 0 ? undefined : cron.latest(upTo), count }
}

/** The gap between the next two scheduled times after `now`: the schedule's period there. */
export const periodAt = (cron: CronSchedule, now: number): number | undefined => {
  const first = cron.next(now)
  const second = first === undefined ? undefined : cron.next(first)
  return first === undefined || second === undefined ? undefined : second - first
}
