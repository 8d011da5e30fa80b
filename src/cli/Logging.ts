import { Layer, Logger, References } from "effect"

export type LogFormat = "json" | "text"
export type LogLevelName = "debug" | "info" | "warn" | "error"

const levels = { debug: "Debug", info: "Info", warn: "Warn", error: "Error" } as const

/** JSON lines for log pipelines (the default), or logfmt text for people at a terminal. */
export const loggingLayer = (format: LogFormat, level: LogLevelName) =>
  Layer.mergeAll(
    Logger.layer([format === "json" ? Logger.consoleJson : Logger.consoleLogFmt]),
    Layer.succeed(References.MinimumLogLevel, levels[level])
  )
