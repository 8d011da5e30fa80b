import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Runtime } from "effect"
import { CliError, Command } from "effect/cli"
import { celCommand } from "./backends/cel/CelTestCommand.ts"
import { kubeBenchCommand } from "./backends/kube-bench/KubeBenchCommand.ts"
import { operatorFlags } from "./cli/OperatorFlags.ts"
import { defaultOperatorConfig } from "./services/OperatorConfig.ts"

// The operator's module graph (clients, backends, the simulated cluster) is loaded by `run`
// and `demo` only, when they start: `cel test` and `kube-bench` start without it.
const runCommand = Command.make("run", operatorFlags, (flags) =>
  Effect.flatMap(Effect.promise(() => import("./cli/RunCommand.ts")), ({ runWithFlags }) => runWithFlags(flags))
).pipe(Command.withDescription("Run the operator against a Kubernetes cluster (SIGTERM drains and exits 0)"))

const demoCommand = Command.make("demo", {}, () => Effect.flatMap(Effect.promise(() => import("./demo/Demo.ts")), ({ runDemo }) => runDemo)).pipe(
  Command.withDescription("Run the operator on an embedded simulated cluster with sample runs, print the results, exit")
)

const root = Command.make("compliance-scan").pipe(
  Command.withDescription("Kubernetes operator that runs compliance scans (kube-bench, Falco, CEL)"),
  Command.withSubcommands([runCommand, demoCommand, celCommand, kubeBenchCommand])
)

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

root.pipe(
  Command.run({ version: defaultOperatorConfig.version }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ teardown, disableErrorReporting: true })
)
