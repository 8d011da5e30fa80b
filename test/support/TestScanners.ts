import { Effect, Ref } from "effect"
import type { Check } from "../../src/api/Check.ts"
import type { ScannerName } from "../../src/api/ComplianceScanRun.ts"
import type { FailureReason } from "../../src/api/RunReason.ts"
import type { Severity } from "../../src/api/Severity.ts"
import { ScanFailed, type Scanner } from "../../src/backends/Scanner.ts"

export const failingCheck = (checkID: string, severity: Severity): Check => ({
  checkID,
  title: `${checkID} must hold`,
  outcome: "fail",
  severity
})

export const passingCheck = (checkID: string): Check => ({ checkID, title: `${checkID} must hold`, outcome: "pass", severity: "low" })

/** A scanner that answers at once with the given checks, counting its scans. */
export const instantScanner = (
  name: ScannerName,
  checks: ReadonlyArray<Check>,
  scans?: Ref.Ref<number>
): Scanner => ({
  name,
  scan: () => Effect.as(scans === undefined ? Effect.void : Ref.update(scans, (n) => n + 1), { checks })
})

/** A scanner whose checks depend on the run (the `checks` annotation of the run, as JSON). */
export const scriptedScanner = (name: ScannerName): Scanner => ({
  name,
  scan: ({ run }) =>
    Effect.sync(() => ({
      checks: JSON.parse(run.metadata.annotations?.["test/checks"] ?? "[]") as ReadonlyArray<Check>
    }))
})

export const failingScanner = (name: ScannerName, reason: FailureReason, message: string): Scanner => ({
  name,
  scan: () => Effect.fail(new ScanFailed({ reason, message }))
})

export const defectScanner = (name: ScannerName): Scanner => ({
  name,
  scan: () => Effect.die(new TypeError("Cannot read properties of undefined (reading 'spec')"))
})

/** Never answers; records that its cleanup (a Scope finalizer) ran. */
export const hangingScanner = (name: ScannerName, cleanups: Ref.Ref<number>, starts?: Ref.Ref<number>): Scanner => ({
  name,
  scan: () =>
    Effect.gen(function*() {
      if (starts !== undefined) yield* Ref.update(starts, (n) => n + 1)
      yield* Effect.addFinalizer(() => Ref.update(cleanups, (n) => n + 1))
      return yield* Effect.never
    })
})
