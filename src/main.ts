import { enableCompileCache } from "node:module"

// Node keeps the compiled modules in a cache folder (under os.tmpdir(), the image's /tmp
// emptyDir): every later start of the CLI or the operator skips compiling them again, about
// 0.2 s of CPU. Where the folder cannot be written, it does nothing.
enableCompileCache()

// The product's entry point (the image's ENTRYPOINT and the package's bin). `demo` lives
// with the simulations: sim/main.ts. Imported after the cache is on, so they use it.
const { Command } = await import("effect/cli")
const { productCommands, rootCommand, runCli } = await import("./cli/Cli.ts")
runCli(rootCommand.pipe(Command.withSubcommands(productCommands)))
