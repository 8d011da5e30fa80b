import { renameSync, writeFileSync } from "node:fs"

/**
 * Writes `lines` as a container log in the CRI format kwok serves (`<RFC 3339 time> stdout
 * F <line>`), atomically: kwok reads the file at each request, and must never see half of it.
 */
export const writeCriLog = (file: string, lines: ReadonlyArray<string>): void => {
  const now = new Date().toISOString()
  const text = lines.map((line) => `${now} stdout F ${line}\n`).join("")
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, text)
  renameSync(temporary, file)
}
