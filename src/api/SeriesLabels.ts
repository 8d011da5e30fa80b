/** Label a ComplianceScanSchedule puts on each run it creates: the schedule's name. */
export const ScheduleLabel = "security.ugallu.io/schedule"

/** Label a user may put on a run by hand to compare it with others of the same name. */
export const BaselineLabel = "security.ugallu.io/baseline"

/** The series a run belongs to: its schedule, else its baseline, else none. */
export const seriesOf = (labels: Readonly<Record<string, string>> | undefined): string | undefined =>
  labels?.[ScheduleLabel] ?? labels?.[BaselineLabel]
