// A Kysely dialect for better-sqlite3 that shares one write lock with the ledger engine.
// SQLite has one writer; the engine writes synchronously through the same connection, so every
// Kysely query on the writer connection, and every transaction, holds this lock while it runs.
import type BetterSqlite3 from "better-sqlite3";
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from "kysely";

/** A FIFO async mutex. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    return release;
  }
}

class BetterSqliteConnection implements DatabaseConnection {
  constructor(private readonly db: BetterSqlite3.Database) {}

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const stmt = this.db.prepare(compiled.sql);
    const parameters = compiled.parameters as unknown[];
    if (stmt.reader) return Promise.resolve({ rows: stmt.all(...parameters) as R[] });
    const { changes, lastInsertRowid } = stmt.run(...parameters);
    return Promise.resolve({
      rows: [],
      numAffectedRows: BigInt(changes),
      insertId: BigInt(lastInsertRowid),
    });
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming is not supported on the SQLite connection");
  }
}

class LockedSqliteDriver implements Driver {
  private readonly connection: BetterSqliteConnection;
  private readonly releases: Array<() => void> = [];

  constructor(private readonly db: BetterSqlite3.Database, private readonly lock: Mutex | null) {
    this.connection = new BetterSqliteConnection(db);
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.lock) this.releases.push(await this.lock.lock());
    return this.connection;
  }
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // IMMEDIATE takes the write lock now, so a transaction never fails later on upgrade.
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.db.inTransaction) await connection.executeQuery(CompiledQuery.raw("rollback"));
  }
  async releaseConnection(): Promise<void> {
    this.releases.shift()?.();
  }
  async destroy(): Promise<void> {}
}

export class LockedSqliteDialect implements Dialect {
  constructor(private readonly db: BetterSqlite3.Database, private readonly lock: Mutex | null) {}
  createAdapter() { return new SqliteAdapter(); }
  createDriver() { return new LockedSqliteDriver(this.db, this.lock); }
  createQueryCompiler() { return new SqliteQueryCompiler(); }
  createIntrospector(db: Kysely<any>) { return new SqliteIntrospector(db); }
}
