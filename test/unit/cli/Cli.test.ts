import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { envName } from "../../../src/cli/OperatorFlags.ts"

const root = join(import.meta.dirname, "..", "..", "..")
const run = promisify(execFile)
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, main = join(root, "src", "main.ts")) =>
  run(process.execPath, [main, ...args], { cwd: root, env: { ...process.env, ...env } })
/** The clone's CLI: the product's commands plus `demo` on the simulations. */
const simMain = join(root, "sim", "main.ts")

/** The flags of `run` as its --help lists them (the global flags below them excluded). */
const runFlags = async () => {
  const { stdout } = await cli(["run", "--help"])
  const section = stdout.split("GLOBAL FLAGS")[0]!
  return { help: section, names: [...section.matchAll(/^\s+--([a-z0-9-]+)/gmu)].map((match) => match[1]!) }
}

describe("compliance-scan run: flags", () => {
  it("every flag names its environment variable in --help and is in the README's configuration table", async () => {
    const { help, names } = await runFlags()
    const readme = readFileSync(join(root, "README.md"), "utf8")
    expect(names.length).toBeGreaterThan(20)
    for (const name of names) {
      expect(help, name).toContain(`[env ${envName(name)}]`)
      expect(readme, name).toContain(`\`--${name}\``)
    }
  })

  it("the contract's flags exist", async () => {
    const { names } = await runFlags()
    for (const name of [
      "cluster-id", "cluster-name", "job-namespace", "kube-bench-image", "falco-host", "falco-port", "falco-cert-file",
      "falco-key-file", "falco-ca-root-file", "metrics-bind-address", "health-probe-bind-address", "leader-elect",
      "leader-election-namespace", "leader-election-id", "max-concurrent-runs", "kubeconfig", "log-level", "log-format"
    ]) expect(names).toContain(name)
  })

  it("an unreadable kubeconfig (flag or KUBECONFIG) stops `run` with exit 1 and a message naming the file", async () => {
    const failure = await cli(["run", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"], {
      KUBECONFIG: "/nonexistent/kubeconfig"
    }).catch((error: { code: number; stdout: string; stderr: string }) => error)
    expect("code" in failure && failure.code).toBe(1)
    expect(`${(failure as { stdout: string }).stdout}${(failure as { stderr: string }).stderr}`).toContain(
      "/nonexistent/kubeconfig"
    )
  })

  it("KUBECONFIG is a list of files (kubectl's), not one file named by the whole value", async () => {
    const failure = await cli(["run", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"], {
      KUBECONFIG: ["/nonexistent/first", "/nonexistent/second"].join(":")
    }).catch((error: { code: number; stdout: string; stderr: string }) => error)
    expect("code" in failure && failure.code).toBe(1)
    expect(`${(failure as { stdout: string }).stdout}${(failure as { stderr: string }).stderr}`).toContain(
      "KUBECONFIG /nonexistent/first:/nonexistent/second: none of these kubeconfig files exists"
    )
  })

  it("a malformed duration flag is rejected with a clear message", async () => {
    const failure = await cli(["run", "--lease-duration", "fifteen", "--metrics-bind-address", "0"]).catch((
      error: { code: number; stdout: string; stderr: string }
    ) => error)
    expect((failure as { code: number }).code).toBe(1)
    expect(`${(failure as { stdout: string }).stdout}${(failure as { stderr: string }).stderr}`).toContain(
      '--lease-duration: "fifteen" is not a duration'
    )
  })

  it("a renew deadline not shorter than the lease duration stops `run` at start-up", async () => {
    const failure = await cli([
      "run", "--lease-duration", "10s", "--renew-deadline", "10s", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"
    ]).catch((error: { code: number; stdout: string; stderr: string }) => error)
    expect((failure as { code: number }).code).toBe(1)
    expect(`${(failure as { stdout: string }).stdout}${(failure as { stderr: string }).stderr}`).toContain(
      "--renew-deadline (10000 ms) must be shorter than --lease-duration (10000 ms)"
    )
  })
})

describe("compliance-scan run: environment variables", () => {
  const failureOf = (env: Record<string, string>, args: ReadonlyArray<string> = []) =>
    cli(["run", "--metrics-bind-address", "0", "--health-probe-bind-address", "0", ...args], env).then(
      () => expect.fail("run should have stopped"),
      (error: { code: number; stdout: string; stderr: string }) => error
    )

  it.each([
    [{ LOG_LEVEL: "verbose" }, '--log-level: "verbose"', "one of debug, info, warn, error (from environment variable LOG_LEVEL)"],
    [{ FALCO_PORT: "abc" }, '--falco-port: "abc"', "an integer (from environment variable FALCO_PORT)"],
    [{ LEADER_ELECT: "maybe" }, '--leader-elect: "maybe"', "true or false (from environment variable LEADER_ELECT)"]
  ])("a bad value in %o is one line naming the variable and its value, not the help page", async (env, value, expected) => {
    const failure = await failureOf(env)
    expect(failure.code).toBe(1)
    expect(failure.stdout).toBe("")
    const lines = failure.stderr.trim().split("\n")
    expect(lines).toHaveLength(2)
    expect(lines[0]).toContain(value)
    expect(lines[0]).toContain(expected)
    expect(lines[1]).toBe("Run 'compliance-scan run --help' for the flags.")
  })

  it("a good value in a variable is used (durations decoded from LEASE_DURATION and RENEW_DEADLINE)", async () => {
    const failure = await failureOf({ LEASE_DURATION: "10s", RENEW_DEADLINE: "10s", LOG_LEVEL: "debug", LEADER_ELECT: "yes" })
    expect(failure.code).toBe(1)
    expect(failure.stderr).toContain("--renew-deadline (10000 ms) must be shorter than --lease-duration (10000 ms)")
  })

  it("a flag on the command line wins over its variable", async () => {
    const failure = await failureOf({ LOG_LEVEL: "verbose" }, ["--log-level", "info", "--lease-duration", "10s", "--renew-deadline", "10s"])
    expect(failure.stderr).not.toContain("verbose")
    expect(failure.stderr).toContain("--renew-deadline (10000 ms) must be shorter than --lease-duration (10000 ms)")
  })
})

describe("compliance-scan demo", () => {
  it("is not a command of the product (the image's entry point); the clone's sim/main.ts has it", async () => {
    const [product, clone] = (await Promise.all([cli(["--help"]), cli(["--help"], {}, simMain)])).map((run) => run.stdout)
    for (const command of ["run", "cel", "kube-bench"]) {
      expect(product).toMatch(new RegExp(`^\\s+${command}\\s`, "mu"))
      expect(clone).toMatch(new RegExp(`^\\s+${command}\\s`, "mu"))
    }
    expect(product).not.toMatch(/^\s+demo\s/mu)
    expect(clone).toMatch(/^\s+demo\s/mu)
  }, 120_000)

  it("exits 0 and prints every sample run's Result and the SecurityEvents", async () => {
    const { stdout } = await cli(["demo"], {}, simMain)
    for (const name of ["cis-control-plane", "cis-all-nodes", "pod-security-baseline", "payments-team-rules", "runtime-detections"]) {
      expect(stdout).toMatch(new RegExp(`^${name} `, "mu"))
    }
    expect(stdout.match(/phase Succeeded/gu)?.length).toBe(5)
    expect(stdout).toContain("framework soc2:")
    expect(stdout).toContain("framework iso27001:")
    expect(stdout).toMatch(/SecurityEvents \(10\):/u)
    expect(stdout).toContain("ugallu_compliance_scan_runs_total")
  }, 60_000)
})
