// Opening the database from a URL: embedded SQLite (`sqlite:<path>`, the zero-setup default) or
// PostgreSQL (`postgres://...`). Both are reached through Kysely; the ledger engine's hot path
// also gets the raw driver (better-sqlite3 connection or pg pool) for dialect-specific SQL.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, type Transaction } from "kysely";
import pg from "pg";
import { LockedSqliteDialect, Mutex } from "./sqlite-dialect.ts";
import type { Tables } from "./schema.ts";

export type Dialect = "sqlite" | "postgres";
export type Tx = Transaction<Tables>;

export interface Database {
  readonly dialect: Dialect;
  readonly url: string;
  /** Writes and transactions. On SQLite every use holds the single write lock. */
  readonly kysely: Kysely<Tables>;
  /** Reads that may run beside writes (SQLite: a second connection; PostgreSQL: the pool). */
  readonly read: Kysely<Tables>;
  /** SQLite only: the main thread's writer connection (Kysely writes outside the engine). */
  readonly sqlite?: BetterSqlite3.Database;
  /** SQLite only: a read-only connection for the engine's reads. */
  readonly sqliteReader?: BetterSqlite3.Database;
  /** SQLite only: the database file, for the engine's writer thread. */
  readonly sqlitePath?: string;
  /** PostgreSQL only: the pool behind `kysely`. */
  readonly pool?: pg.Pool;
  /** Runs `work` in one transaction (the unit of work's boundary). */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export function dialectOf(url: string): Dialect {
  if (url.startsWith("sqlite:")) return "sqlite";
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return "postgres";
  throw new Error(`unsupported database URL "${redactUrl(url)}": use sqlite:<path> or postgres://...`);
}

/** A database URL with any password removed, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}

function openSqliteConnection(path: string, readonly: boolean): BetterSqlite3.Database {
  const db = new BetterSqlite3(path, { readonly, fileMustExist: readonly });
  db.defaultSafeIntegers(true);
  if (!readonly) {
    db.pragma("journal_mode = WAL");
  }
  // FULL: a commit is on disk before it is acknowledged (LEDGER.md invariant 8).
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  db.pragma("cache_size = -65536");
  // Content a write on this connection frees is overwritten with zeros: personal data replaced in
  // place (a notification body sealed after the fact, a value re-encrypted: both written here)
  // leaves no clear copy in the file's free space. Not on the ledger's writer thread, which
  // writes no personal data: there it cost ~5 % of the engine's throughput (zeroing the space
  // that page splits and growing balance records free; docs/benchmarks.md, session 11).
  if (!readonly) db.pragma("secure_delete = ON");
  return db;
}

export function openDatabase(url: string, options: { poolSize?: number } = {}): Database {
  const dialect = dialectOf(url);
  if (dialect === "sqlite") {
    const path = url.slice("sqlite:".length) || "./data/tally.db";
    const memory = path === ":memory:";
    if (!memory) mkdirSync(dirname(path), { recursive: true });
    const writer = openSqliteConnection(path, false);
    // An in-memory database cannot be shared between connections: reads use the writer then.
    const reader = memory ? null : openSqliteConnection(path, true);
    const lock = new Mutex();
    const kysely = new Kysely<Tables>({ dialect: new LockedSqliteDialect(writer, lock) });
    const read = reader ? new Kysely<Tables>({ dialect: new LockedSqliteDialect(reader, null) }) : kysely;
    return {
      dialect,
      url,
      kysely,
      read,
      sqlite: writer,
      sqliteReader: reader ?? writer,
      sqlitePath: path,
      transaction: (work) => kysely.transaction().execute(work),
      ping: async () => {
        try {
          (reader ?? writer).prepare("select 1").get();
          return true;
        } catch {
          return false;
        }
      },
      close: async () => {
        // Wait for the writer to be free so no transaction is cut in half.
        const release = await lock.lock();
        try {
          reader?.close();
          writer.close();
        } finally {
          release();
        }
      },
    };
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    types: {
      getTypeParser: ((oid: number, format?: string) => {
        // BIGINT (int8) → bigint; NUMERIC stays a string; never a float for money.
        if (oid === 20) return (value: string) => BigInt(value);
        if (oid === 1700) return (value: string) => value;
        return pg.types.getTypeParser(oid, format as "text");
      }) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that errors (server restart) must not crash the process.
  pool.on("error", () => {});
  const kysely = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return {
    dialect,
    url,
    kysely,
    read: kysely,
    pool,
    transaction: (work) => kysely.transaction().execute(work),
    ping: async () => {
      try {
        await pool.query("select 1");
        return true;
      } catch {
        return false;
      }
    },
    close: async () => {
      await kysely.destroy();
    },
  };
}
