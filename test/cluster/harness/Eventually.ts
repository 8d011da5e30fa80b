import type { ManagedProcess } from "./ManagedProcess.ts"

export interface EventuallyOptions {
  /** What is awaited, for the error message ("etcd to answer /health"). */
  readonly what: string
  readonly timeoutMillis: number
  readonly intervalMillis?: number
  /** Fail at once, with its log tail, when one of these exits while we wait. */
  readonly watch?: ReadonlyArray<ManagedProcess>
}

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * Calls `attempt` until it returns something other than undefined (errors count as "not
 * yet"); fails after the timeout with the last error, or as soon as a watched process exits.
 */
export const eventually = async <A>(
  attempt: () => Promise<A | undefined> | A | undefined,
  options: EventuallyOptions
): Promise<A> => {
  const deadline = Date.now() + options.timeoutMillis
  const interval = options.intervalMillis ?? 200
  let last = "no attempt finished"
  while (true) {
    for (const process of options.watch ?? []) {
      const status = process.exitStatus()
      if (status !== undefined) {
        throw new Error(
          `${process.name} exited (${status}) while waiting for ${options.what}; last lines of ${process.logFile}:\n${process.tail(30)}`
        )
      }
    }
    try {
      const value = await attempt()
      if (value !== undefined) return value
      last = "not yet"
    } catch (error) {
      last = describe(error)
    }
    if (Date.now() >= deadline) {
      const logs = (options.watch ?? [])
        .map((process) => `--- last lines of ${process.name} (${process.logFile}):\n${process.tail(20)}`)
        .join("\n")
      throw new Error(`Timed out after ${options.timeoutMillis} ms waiting for ${options.what} (last: ${last})${logs ? `\n${logs}` : ""}`)
    }
    await sleep(interval)
  }
}
