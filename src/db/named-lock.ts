// Locks by name that hold across processes: one payment's commands run one at a time even when
// several Tally processes share a PostgreSQL database. On PostgreSQL a session advisory lock on a
// connection of a small pool of its own (so lock holders never starve the work they guard of
// connections); it is released when the work ends or, if the process dies, with its session.
// On SQLite one process owns the file, so an in-process lock is the whole story.
import pg from "pg";
import { KeyedLock } from "../kernel/keyed-lock.ts";
import type { Database } from "./database.ts";

/** Connections that may hold advisory locks at once; more waiters queue for a connection. */
const LOCK_CONNECTIONS_MAX = 16;

export interface NamedLock {
  run<T>(name: string, work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function createNamedLock(db: Database): NamedLock {
  const local = new KeyedLock();
  if (db.dialect === "sqlite") return { run: (name, work) => local.run(name, work), close: async () => {} };
  const pool = new pg.Pool({ connectionString: db.url, max: LOCK_CONNECTIONS_MAX });
  pool.on("error", () => {});
  return {
    // The in-process lock first: waiters of this process queue here instead of each taking a
    // connection to wait on the database.
    run: (name, work) =>
      local.run(name, async () => {
        const client = await pool.connect();
        let broken = false;
        try {
          await client.query("select pg_advisory_lock(hashtextextended($1, 0))", [name]);
          try {
            return await work();
          } finally {
            await client.query("select pg_advisory_unlock(hashtextextended($1, 0))", [name]).catch(() => {
              broken = true;
            });
          }
        } catch (error) {
          broken = broken || !(error instanceof Error) || /terminat|connect|closed/i.test(error.message);
          throw error;
        } finally {
          // A connection whose unlock failed may still hold the lock: drop it, ending its session.
          client.release(broken);
        }
      }),
    close: () => pool.end(),
  };
}
