// A Kysely instance that records the statements it is given instead of running them. The ledger
// engine hands it to unit-of-work hooks: their writes (idempotency records, outbox events, a
// module's own rows) are compiled for the right database and run inside the batch's transaction,
// on whichever thread commits it. Hooks may only write; a read has nothing to return here.
import {
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
} from "kysely";
import type { Dialect } from "./database.ts";
import type { Tables } from "./schema.ts";

export interface RecordedStatement {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

export class StatementRecorder {
  readonly kysely: Kysely<Tables>;
  private statements: RecordedStatement[] = [];

  constructor(dialect: Dialect) {
    const recorder = this;
    const connection: DatabaseConnection = {
      async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
        if (SelectQueryNode.is(compiled.query)) throw new Error("a unit-of-work hook may only write; it cannot read inside the batch");
        // A write with RETURNING would have rows to give back that the recorder does not have.
        if ((compiled.query as { returning?: unknown }).returning) {
          throw new Error("a unit-of-work hook cannot use returning(): its writes run later, inside the batch");
        }
        recorder.statements.push({ sql: compiled.sql, parameters: compiled.parameters });
        return { rows: [], numAffectedRows: 1n };
      },
      // eslint-disable-next-line require-yield
      async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
        throw new Error("streaming is not available in a unit-of-work hook");
      },
    };
    const driver: Driver = {
      init: async () => {},
      acquireConnection: async () => connection,
      beginTransaction: async () => {},
      commitTransaction: async () => {},
      rollbackTransaction: async () => {},
      releaseConnection: async () => {},
      destroy: async () => {},
    };
    this.kysely = new Kysely<Tables>({
      dialect:
        dialect === "sqlite"
          ? { createAdapter: () => new SqliteAdapter(), createDriver: () => driver, createQueryCompiler: () => new SqliteQueryCompiler(), createIntrospector: (db) => new SqliteIntrospector(db) }
          : { createAdapter: () => new PostgresAdapter(), createDriver: () => driver, createQueryCompiler: () => new PostgresQueryCompiler(), createIntrospector: (db) => new PostgresIntrospector(db) },
    });
  }

  /** The statements recorded since the last call. */
  take(): RecordedStatement[] {
    const out = this.statements;
    this.statements = [];
    return out;
  }
}
