// The product's CLI (bin/compliance-scan.js, the package's bin and the image's ENTRYPOINT,
// loads it with the compile cache on). `demo` lives with the simulations: sim/main.ts.
import { Command } from "effect/cli"
import { productCommands, rootCommand, runCli } from "./cli/Cli.ts"

runCli(rootCommand.pipe(Command.withSubcommands(productCommands)))
