#!/usr/bin/env node
// The package's `bin`: Node 24 runs the TypeScript sources directly (type stripping),
// so a clone works after `npm ci` with no build step.
import "../src/main.ts"
