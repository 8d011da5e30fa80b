import { Command } from "effect/cli"
import { productCommands, rootCommand, runCli } from "../src/cli/Cli.ts"
import { runDemo } from "./demo/Demo.ts"

const demoCommand = Command.make("demo", {}, () => runDemo).pipe(
  Command.withDescription("Run the operator on an embedded simulated cluster with sample runs, print the results, exit")
)

// `compliance-scan` from a clone: the product's commands plus `demo`, which runs the operator
// on the simulations in this folder (they are not in the production bundle or the image).
runCli(rootCommand.pipe(Command.withSubcommands([...productCommands, demoCommand])))
