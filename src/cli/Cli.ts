import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Effect, Exit, Runtime } from "effect"
import { CliError, Command } from "effect/cli"
import { celCommand } from "../backends/cel/CelTestCommand.ts"
import { kubeBenchCommand } from "../backends/kube-bench/KubeBenchCommand.ts"
import { defaultOperatorConfig } from "../services/OperatorConfig.ts"
import { ErrorPresenter } from "./ErrorPresenter.ts"
import { operatorFlags } from "./OperatorFlags.ts"

// The operator's module graph (clients, backends, reconciler) is loaded by `run` only, when it
// starts: `cel test` and `kube-bench parse` start without it.
const runCommand = Command.make("run", operatorFlags, (flags) =>
  Effect.flatMap(Effect.promise(() => import("./RunCommand.ts")), ({ runWithFlags }) => runWithFlags(flags))
).pipe(Command.withDescription("Run the operator against a Kubernetes cluster (SIGTERM drains and exits 0)"))

/** The product's subcommands: the operator and its offline tools. */
export const productCommands = [runCommand, celCommand, kubeBenchCommand] as const

/**
 * SIGTERM/SIGINT interrupt the program and its finalizers drain it: a clean exit (0). Other
 * failures print one line on stderr (errors with a user message were shown by the CLI already).
 */
const teardown: Runtime.Teardown = (exit, onExit) => {
  if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
  if (Exit.isFailure(exit)) {
    const error = Cause.squash(exit.cause)
    const shown = typeof error === "object" && error !== null && CliError.userMessage in error
    if (!shown && !CliError.isCliError(error)) {
      console.error(`compliance-scan: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  return Runtime.defaultTeardown(exit, onExit)
}

/** `compliance-scan` and its description; each entry point adds its subcommands. */
export const rootCommand = Command.make("compliance-scan").pipe(
  Command.withDescription("Kubernetes operator that runs compliance scans (kube-bench, Falco, CEL)")
)

/**
 * Runs the CLI built on `rootCommand`: the product's (src/main.ts), or the product's plus the
 * simulations' `demo` (sim/main.ts, a clone only).
 */
export const runCli = <Name extends string, Input, ContextInput, E>(
  command: Command.Command<Name, Input, ContextInput, E, NodeServices.NodeServices>
) =>
  command.pipe(
    Command.run({ version: defaultOperatorConfig.version }),
    Effect.provide([ErrorPresenter, NodeServices.layer]),
    NodeRuntime.runMain({ teardown, disableErrorReporting: true })
  )
