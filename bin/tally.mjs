#!/usr/bin/env -S node --max-semi-space-size=64
// The `tally` command that package.json's "bin" installs (`npx tally serve`, or `tally` after a
// global install). Tally runs its TypeScript sources through tsx, with no build step, as
// `npm start` does: tsx's loader is registered here, then the command line runs. The flag on the
// first line is src/cli/node-flags.ts's NODE_FLAGS (V8 reads it only at start-up; `env -S`
// splits the line into the command and its arguments).
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
