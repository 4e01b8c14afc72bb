// The `tally` command as package.json's "bin" installs it (bin/tally.mjs): it must exist, be
// executable, and run the command line from any working directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function run(bin: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Run as the shell would run it: the file itself, its shebang choosing node.
    execFile(bin, args, { cwd: tmpdir(), env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test("package.json's bin is an executable file that runs the tally command from another directory", async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };
  const bin = join(ROOT, pkg.bin.tally!);
  assert.ok(existsSync(bin), `${pkg.bin.tally} exists`);
  accessSync(bin, constants.X_OK);
  // A node found on PATH, with the flags V8 reads only at start-up (src/cli/node-flags.ts).
  assert.match(readFileSync(bin, "utf8"), /^#!\/usr\/bin\/env -S node( --[a-z-]+=\S+)*\n/);

  const dir = mkdtempSync(join(tmpdir(), "tally-bin-"));
  try {
    const migrated = await run(bin, ["migrate"], { TALLY_DATABASE_URL: `sqlite:${join(dir, "tally.db")}` });
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stdout, /applied: 0001_ledger/);
    assert.ok(existsSync(join(dir, "tally.db")));

    const unknown = await run(bin, ["no-such-command"], {});
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Usage: tally <command>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
