#!/usr/bin/env -S node --max-semi-space-size=16
// The entry point: the package's `bin` and the image's ENTRYPOINT. Node 24 runs the
// TypeScript sources directly (type stripping), so a clone works after `npm ci` with no
// build step.
//
// This file is JavaScript on purpose: the compile cache must be on before the first
// TypeScript module is loaded. Node keeps each module's stripped source and compiled code in
// the cache folder (under os.tmpdir(), the image's /tmp emptyDir), so later starts neither
// load the type stripper nor compile again: about 0.3 s of CPU per start of the operator or
// the CLI. Where the folder cannot be written, it does nothing.
//
// The shebang's flag is for the CLI run as a command (`npx compliance-scan cel test`): the
// objects `cel test` parses all survive, and Node's default young generation on a large
// machine (32 MiB semi-spaces on 24 GiB) copies them through more memory. With 16 MiB, 10,000 Pods of
// YAML took 1.85 s and 190 MiB instead of 2.44 s and 280 MiB (bench/cel-test.ts). The
// image's ENTRYPOINT starts node with its own flags.
import { enableCompileCache } from "node:module"

enableCompileCache()
await import("../src/main.ts")
