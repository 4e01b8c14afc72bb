// Runs the same storage tests on every database Tally supports (ARCHITECTURE.md decision 10):
// a temporary SQLite file and a fresh PostgreSQL database.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshPostgresDatabase } from "./postgres.ts";

export interface TestDatabase {
  readonly dialect: "sqlite" | "postgres";
  readonly url: string;
  dispose(): Promise<void>;
}

export const DIALECTS = ["sqlite", "postgres"] as const;

export async function createTestDatabase(dialect: "sqlite" | "postgres", label = "t"): Promise<TestDatabase> {
  if (dialect === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "tally-test-"));
    return {
      dialect,
      url: `sqlite:${join(dir, "tally.db")}`,
      async dispose() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const db = await freshPostgresDatabase(label);
  return { dialect, url: db.url, dispose: () => db.drop() };
}
