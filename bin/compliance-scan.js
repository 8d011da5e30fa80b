#!/usr/bin/env node
// The entry point: the package's `bin` and the image's ENTRYPOINT. Node 24 runs the
// TypeScript sources directly (type stripping), so a clone works after `npm ci` with no
// build step.
//
// This file is JavaScript on purpose: the compile cache must be on before the first
// TypeScript module is loaded. Node keeps each module's stripped source and compiled code in
// the cache folder (under os.tmpdir(), the image's /tmp emptyDir), so later starts neither
// load the type stripper nor compile again: about 0.3 s of CPU per start of the operator or
// the CLI. Where the folder cannot be written, it does nothing.
import { enableCompileCache } from "node:module"

enableCompileCache()
await import("../src/main.ts")
