// The `tally` process runs with V8's allocation-site pretenuring off (src/cli/v8-flags.ts): under
// HTTP load, pretenuring put some processes in a state where every request's objects were
// promoted, and they served a third fewer requests (docs/benchmarks.md, session 13). Its launchers
// start it with a larger young generation (src/cli/node-flags.ts, session 14).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NODE_FLAGS, missingNodeFlags } from "../../src/cli/node-flags.ts";
import { freePort } from "../support/server-process.ts";

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

test("missingNodeFlags finds the flags on the command line or in NODE_OPTIONS, with any value", () => {
  assert.deepEqual(missingNodeFlags([], ""), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(["--import", "tsx"], "--enable-source-maps"), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags([...NODE_FLAGS], ""), []);
  assert.deepEqual(missingNodeFlags([], `  ${NODE_FLAGS.join("  ")} --trace-warnings`), []);
  // V8 takes underscores for dashes, and an operator may choose another size.
  assert.deepEqual(missingNodeFlags(["--max_semi_space_size=128"], ""), []);
  assert.deepEqual(missingNodeFlags(["--max-old-space-size=64"], ""), [...NODE_FLAGS]);
});

test("npm start, npm run tally and bin/tally.mjs start Node.js with the flags", () => {
  const scripts = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).scripts as Record<string, string>;
  assert.equal(scripts.start, `tsx ${NODE_FLAGS.join(" ")} src/cli/main.ts serve`);
  assert.equal(scripts.tally, `tsx ${NODE_FLAGS.join(" ")} src/cli/main.ts`);
  const bin = readFileSync(new URL("../../bin/tally.mjs", import.meta.url), "utf8");
  assert.equal(bin.split("\n")[0], `#!/usr/bin/env -S node ${NODE_FLAGS.join(" ")}`);
});

/**
 * Starts `serve` with `command`, waits until it has printed its last start-up line (after the
 * warning, which is logged synchronously once it listens), stops it and returns what it printed.
 */
async function serveOutput(command: string, args: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "tally-flags-"));
  const port = await freePort();
  const env: Record<string, string | undefined> = { ...process.env, PORT: String(port), HOST: "127.0.0.1", TALLY_DATABASE_URL: `sqlite:${join(dir, "tally.db")}`, TALLY_LOG_LEVEL: "warn" };
  delete env.NODE_OPTIONS;
  const child: ChildProcess = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.equal(child.exitCode, null, `the server exited early:\n${output}`);
      if (output.includes("Tally is running at")) {
        assert.ok(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), "the server answers");
        break;
      }
      assert.ok(Date.now() < deadline, `the server did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
  return output;
}

const WARNING = "started without Tally's Node.js flags";

test("bin/tally.mjs serves with the flags; a server started without them says so", async () => {
  const flagged = await serveOutput(fileURLToPath(new URL("../../bin/tally.mjs", import.meta.url)), ["serve"]);
  assert.match(flagged, /Tally is running at/);
  assert.ok(!flagged.includes(WARNING), flagged);
  const bare = await serveOutput(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve"]);
  assert.match(bare, /Tally is running at/);
  assert.ok(bare.includes(WARNING), bare);
  assert.ok(bare.includes(NODE_FLAGS[0]!), "the warning names the missing flag");
});
