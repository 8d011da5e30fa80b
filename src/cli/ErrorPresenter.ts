import { Console, Effect } from "effect"
import { CliOutput } from "effect/cli"

/**
 * A wrong flag or environment variable is a one-line mistake, so it gets a one-line answer on
 * stderr and a pointer to `--help`, not the whole help page (which drowns the error in a Pod's
 * log). Requested help and `--version` print as the CLI library prints them.
 */
export const ErrorPresenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.gen(function*() {
        for (const error of event.errors) yield* Console.error(`compliance-scan: ${error.message}`)
        yield* Console.error(`Run '${["compliance-scan", ...event.commandPath.slice(1)].join(" ")} --help' for the flags.`)
      })
      : CliOutput.defaultPresenter.present(event)
})
