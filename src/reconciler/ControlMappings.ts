import type { Check, FrameworkName, FrameworkRef } from "../api/Check.ts"
import type { ControlMapping } from "../api/ComplianceScanRun.ts"
import type { FrameworkReport } from "../api/ComplianceScanResult.ts"
import { worstOutcome } from "../api/Outcome.ts"
import { isExcepted } from "../exceptions/ExceptionApplication.ts"

const refKey = (ref: FrameworkRef) => `${ref.name}/${ref.controlID}`

/** Adds the frameworks of `spec.controlMappings` to the checks they name (keeping the backend's own). */
export const decorateChecks = (
  checks: ReadonlyArray<Check>,
  mappings: ReadonlyArray<ControlMapping> | undefined
): ReadonlyArray<Check> => {
  if (mappings === undefined || mappings.length === 0) return checks
  const byCheck = new Map<string, Array<FrameworkRef>>()
  for (const mapping of mappings) {
    const refs = byCheck.get(mapping.checkID) ?? []
    refs.push(...mapping.frameworks)
    byCheck.set(mapping.checkID, refs)
  }
  return checks.map((check) => {
    const added = byCheck.get(check.checkID)
    if (added === undefined) return check
    const merged = new Map<string, FrameworkRef>()
    for (const ref of [...(check.frameworks ?? []), ...added]) merged.set(refKey(ref), ref)
    return { ...check, frameworks: [...merged.values()] }
  })
}

/**
 * One report per framework that any check maps to: each control's outcome is the worst of
 * its checks, so one scan fills SOC2 and ISO 27001 (and any other) reports at once.
 */
export const frameworkReports = (checks: ReadonlyArray<Check>): ReadonlyArray<FrameworkReport> => {
  const frameworks = new Map<FrameworkName, Map<string, Array<Check>>>()
  for (const check of checks) {
    for (const ref of check.frameworks ?? []) {
      const controls = frameworks.get(ref.name) ?? new Map<string, Array<Check>>()
      const mapped = controls.get(ref.controlID) ?? []
      if (!mapped.includes(check)) mapped.push(check)
      controls.set(ref.controlID, mapped)
      frameworks.set(ref.name, controls)
    }
  }
  return [...frameworks.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, controls]) => {
      const reportControls = [...controls.entries()]
        .sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
        .map(([controlID, mapped]) => ({
          controlID,
          outcome: worstOutcome(mapped.map((check) => check.outcome)),
          checks: mapped.map((check) => check.checkID)
        }))
      const excepted = [...controls.values()].filter((mapped) => mapped.some(isExcepted)).length
      return {
        name,
        controls: reportControls,
        passed: reportControls.filter((control) => control.outcome === "pass").length,
        failed: reportControls.filter((control) => control.outcome === "fail" || control.outcome === "error").length,
        // Counted apart (and still in passed/failed by outcome): excepted controls stay visible.
        ...(excepted === 0 ? {} : { excepted })
      }
    })
}
