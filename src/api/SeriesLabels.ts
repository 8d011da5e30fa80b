/** Labels that put runs and Results into a series (a schedule's history, or a hand-named baseline). */
export const ScheduleLabel = "security.ugallu.io/schedule"
export const BaselineLabel = "security.ugallu.io/baseline"

/** The series of a run or Result: its schedule label if present, else its baseline label, else none. */
export const seriesOf = (labels: Readonly<Record<string, string>> | undefined): string | undefined =>
  labels?.[ScheduleLabel] ?? labels?.[BaselineLabel]
