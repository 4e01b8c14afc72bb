#!/usr/bin/env node
// The `tally` command that package.json's "bin" installs (`npx tally serve`, or `tally` after a
// global install). Tally runs its TypeScript sources through tsx, with no build step, as
// `npm start` does: tsx's loader is registered here, then the command line runs.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
