// The `tally` process runs with V8's allocation-site pretenuring off (src/cli/v8-flags.ts): under
// HTTP load, pretenuring put some processes in a state where every request's objects were
// promoted, and they served a third fewer requests (docs/benchmarks.md, session 13).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MARK = "--- workload ---";

/**
 * A workload whose object literals all survive young-generation collections: V8 weighs that
 * feedback per allocation site after each collection to decide whether to pretenure the site, and
 * its own trace shows each weighing. With `flags`, the process first imports the module that the
 * `tally` command imports first.
 */
function traceWorkload(flags: boolean): Promise<string> {
  const script = `
    ${flags ? `await import(${JSON.stringify(new URL("../../src/cli/v8-flags.ts", import.meta.url).href)});` : ""}
    console.log(${JSON.stringify(MARK)});
    const keep = [];
    const make = (i) => ({ i, pair: [i, i + 1] });
    for (let i = 0; i < 400000; i++) keep.push(make(i));
    console.log("kept", keep.length);
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--trace-pretenuring-statistics", "--import", "tsx", "--input-type=module", "-e", script],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout) => (error ? reject(error) : resolve(stdout.slice(stdout.indexOf(MARK)))),
    );
  });
}

test("V8 weighs allocation sites for pretenuring by default, and not after the tally command's flags", async () => {
  const without = await traceWorkload(false);
  assert.match(without, /pretenuring: AllocationSite\(.*=> /, "V8 weighs the workload's sites under its defaults");
  const withFlags = await traceWorkload(true);
  assert.match(withFlags, /kept \d+/, "the workload ran");
  assert.doesNotMatch(withFlags, /pretenuring:/, "no pretenuring feedback is processed");
});

test("the tally command imports its V8 flags before any other module", () => {
  const source = readFileSync(new URL("../../src/cli/main.ts", import.meta.url), "utf8");
  const firstImport = source.split("\n").find((line) => line.startsWith("import "));
  assert.equal(firstImport?.split(";")[0], 'import "./v8-flags.ts"');
});
