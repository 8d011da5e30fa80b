import { Command } from "effect/cli"
import { productCommands, rootCommand, runCli } from "./cli/Cli.ts"

// The product's entry point (the image's ENTRYPOINT and the package's bin). `demo` lives
// with the simulations: sim/main.ts.
runCli(rootCommand.pipe(Command.withSubcommands(productCommands)))
