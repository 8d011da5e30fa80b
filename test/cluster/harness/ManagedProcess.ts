import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, openSync, readFileSync } from "node:fs"

/**
 * A child process whose stdout and stderr go to a log file, that can be stopped with
 * SIGTERM then SIGKILL, and whose log tail goes into error messages.
 */
export interface ManagedProcess {
  readonly name: string
  readonly pid: number
  readonly logFile: string
  /** Exit code (or signal name) once it exited; undefined while it runs. */
  readonly exitStatus: () => string | undefined
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
  /** The last `lines` lines of its log. */
  readonly tail: (lines?: number) => string
  /** SIGTERM, then SIGKILL after `graceMillis`; resolves once it is gone. */
  readonly stop: (graceMillis?: number) => Promise<void>
  /** SIGKILL at once (a crash); resolves once it is gone. */
  readonly kill: () => Promise<void>
}

/** Every process started here, so that an abrupt exit of the test process still kills them. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // "exit" handlers must be synchronous: process.kill is.
  process.on("exit", () => {
    for (const child of running) {
      try {
        child.kill("SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

export const readTail = (file: string, lines = 40): string => {
  try {
    const text = readFileSync(file, "utf8").trimEnd()
    return text.split("\n").slice(-lines).join("\n")
  } catch (error) {
    return `(no log: ${(error as Error).message})`
  }
}

export const startProcess = (options: {
  readonly name: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly logFile: string
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly cwd?: string
}): ManagedProcess => {
  installExitHook()
  const fd = openSync(options.logFile, "a")
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", fd, fd]
  })
  closeSync(fd)
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`)
  running.add(child)
  let status: string | undefined
  const exited = new Promise<void>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      status ??= signal ?? String(code)
      running.delete(child)
      resolve()
    }
    child.once("exit", done)
    child.once("error", (error) => {
      status ??= `spawn error: ${error.message}`
      running.delete(child)
      resolve()
    })
  })
  const signal = (name: NodeJS.Signals) => {
    if (status !== undefined) return
    try {
      child.kill(name)
    } catch {
      // already gone
    }
  }
  const stop = async (graceMillis = 5_000) => {
    signal("SIGTERM")
    const timer = setTimeout(() => signal("SIGKILL"), graceMillis)
    await exited
    clearTimeout(timer)
  }
  const kill = async () => {
    signal("SIGKILL")
    await exited
  }
  return {
    name: options.name,
    pid: child.pid,
    logFile: options.logFile,
    exitStatus: () => status,
    exited,
    tail: (lines) => readTail(options.logFile, lines),
    stop,
    kill
  }
}
