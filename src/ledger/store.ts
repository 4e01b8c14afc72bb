// The engine's storage port: what one batch reads and writes inside its transaction. Two
// implementations: SQLite (synchronous prepared statements on the writer connection) and
// PostgreSQL (set-based statements over unnest, under a per-ledger lock).
import type { Database, Tx } from "../db/database.ts";
import type { Account, Transfer } from "./model.ts";
import { PostgresLedgerStore } from "./store-postgres.ts";
import { SqliteLedgerStore } from "./store-sqlite.ts";

export interface BatchIO {
  /** The unit-of-work transaction, for hooks that write beside the ledger (idempotency, outbox). */
  readonly tx: Tx;
  /** The last ledger timestamp handed out by any writer, read under the ledger lock. */
  readonly lastTimestamp: bigint;
  /** Bumped by every committed batch: a writer whose cache is of this version may trust it. */
  readonly version: bigint;
  loadTransfers(ids: Iterable<string>): Promise<Map<string, Transfer>>;
  loadAccounts(ids: Iterable<string>): Promise<Map<string, Account>>;
  /** Holds past their deadline that are still pending, oldest first. */
  dueHolds(nowUs: bigint, limit: number): Promise<Transfer[]>;
  insertAccounts(accounts: readonly Account[]): Promise<void>;
  insertTransfers(transfers: readonly Transfer[]): Promise<void>;
  updateHolds(holds: Iterable<Transfer>): Promise<void>;
  /** Writes balances and the history head (last_ts, transfer_count). */
  updateBalances(accounts: Iterable<Account>): Promise<void>;
  insertCheckpoints(checkpoints: ReadonlyArray<{ accountId: string; ts: bigint }>): Promise<void>;
  setState(lastTs: bigint, version: bigint): Promise<void>;
}

export interface LedgerStore {
  /** Runs `work` in one transaction holding the ledger's write lock. */
  runBatch<T>(work: (io: BatchIO) => Promise<T>): Promise<T>;
}

export function createLedgerStore(db: Database): LedgerStore {
  return db.dialect === "sqlite" ? new SqliteLedgerStore(db) : new PostgresLedgerStore(db);
}
