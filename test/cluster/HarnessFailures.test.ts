import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { startControlPlane } from "./harness/ControlPlane.ts"

/**
 * A control plane that cannot start fails with the reason in the error (the failing
 * component's log tail) and leaves nothing behind: no process, no temp folder.
 */
const scratch: Array<string> = []
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A cache folder whose etcd is a script that complains and exits. */
const brokenCache = () => {
  const dir = mkdtempSync(join(tmpdir(), "broken-control-plane-"))
  scratch.push(dir)
  mkdirSync(join(dir, "bin"))
  const etcd = join(dir, "bin", "etcd")
  writeFileSync(etcd, "#!/bin/sh\necho 'etcd: cannot open the data dir: disk on fire' >&2\nexit 3\n")
  chmodSync(etcd, 0o755)
  return dir
}

describe("control plane start failure", () => {
  it("names the component, its exit status and its last log lines, and removes its folder", async () => {
    const error = await startControlPlane({ cacheDir: brokenCache() }).then(() => undefined, (caught: unknown) => caught as Error)
    expect(error).toBeInstanceOf(Error)
    expect(error!.message).toContain("etcd exited (3) while waiting for etcd to answer /health")
    expect(error!.message).toContain("disk on fire")
    const folder = /its folder (\S+) was removed/u.exec(error!.message)?.[1]
    expect(folder).toBeDefined()
    expect(existsSync(folder!)).toBe(false)
  })
})
