// Where the bank-statement corpus is: TALLY_CORPUS_DIR when set, else the workspace's shared
// folder beside the repository (`../shared/corpus`), else the machine's `/work/shared/corpus`.
// A missing corpus fails loudly: its test is never skipped.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export function corpusDir(): string {
  const candidates = [
    process.env.TALLY_CORPUS_DIR,
    fileURLToPath(new URL("../../../shared/corpus/", import.meta.url)),
    "/work/shared/corpus/",
  ].filter((c): c is string => typeof c === "string" && c.length > 0);
  for (const dir of candidates) if (existsSync(join(dir, "bank-statements", "expected.json"))) return dir;
  throw new Error(`the bank-statement corpus was not found (tried ${candidates.join(", ")}); set TALLY_CORPUS_DIR`);
}
