// The engine's storage port: what one batch reads, and the writes it commits. Two
// implementations: SQLite (reads on the main thread, writes and the fsync of each commit on a
// writer thread, so batches are pipelined) and PostgreSQL (one transaction per batch under the
// ledger's row lock, set-based statements).
import type { Database } from "../db/database.ts";
import type { Account, Transfer } from "./model.ts";
import { PostgresLedgerStore, type PostgresStoreOptions } from "./store-postgres.ts";
import { SqliteLedgerStore } from "./store-sqlite.ts";

import type { RecordedStatement } from "../db/recorder.ts";

export interface BatchWrites {
  readonly newAccounts: readonly Account[];
  readonly transfers: readonly Transfer[];
  /** The same transfers by id: the engine's own map of the batch (the SQLite overlay keeps it). */
  readonly createdById: ReadonlyMap<string, Transfer>;
  readonly resolvedHolds: readonly Transfer[];
  readonly balances: readonly Account[];
  readonly checkpoints: ReadonlyArray<{ accountId: string; ts: bigint }>;
  readonly lastTs: bigint;
  /** The ledger version this batch was prepared on; the commit fails if it changed meanwhile. */
  readonly expectVersion: bigint;
  readonly version: bigint;
  readonly statements: readonly RecordedStatement[];
  /** Outbox rows: [id, type, created_at, data]. */
  readonly events: ReadonlyArray<readonly [string, string, bigint, string]>;
}

export interface BatchSession {
  /** The last ledger timestamp handed out by any writer. */
  readonly lastTimestamp: bigint;
  /** Bumped by every committed batch: a writer whose cache is of this version may trust it. */
  readonly version: bigint;
  /**
   * True when the writer's cache must start over whatever its version (a batch failed since it was
   * filled, and another process may since have brought the version to the same number).
   */
  readonly fresh?: boolean;
  loadTransfers(ids: Iterable<string>): Promise<Map<string, Transfer>>;
  /**
   * The transfers among `ids` (new transfers' own ids) that already exist. A store may answer
   * optimistically, from transfers still in flight only, when its commit refuses a duplicate id
   * with a DuplicateIdError (the engine then redoes the batch with `verify`).
   */
  findExisting(ids: readonly string[], verify: boolean): Promise<Map<string, Transfer>>;
  loadAccounts(ids: Iterable<string>): Promise<Map<string, Account>>;
  /** Holds past their deadline that are still pending, oldest first. */
  dueHolds(nowUs: bigint, limit: number): Promise<Transfer[]>;
  /** Writes everything in one transaction and commits durably; rejects if nothing was written. */
  commit(writes: BatchWrites): Promise<void>;
  /** Ends the session without writing. */
  abort(): Promise<void>;
}

export interface LedgerStore {
  /** True when a commit may still be running while the next batch is prepared. */
  readonly pipelined: boolean;
  /** Why writes are refused right now (a writer thread down, to be restarted), or null. */
  problem?(): string | null;
  begin(): Promise<BatchSession>;
  close(): Promise<void>;
}

/** A commit met a transfer id that already exists (an optimistic exists check): redo with checks. */
export class DuplicateIdError extends Error {
  override name = "DuplicateIdError";
}

/** The ledger changed under a pipelined batch (an earlier batch failed): it had no effect; redo it. */
export class VersionConflictError extends Error {
  override name = "VersionConflictError";
  /**
   * True when the failure that doomed this batch was already reported: the store and the engine
   * have already started over from the disk's state, and must not start over again (batches
   * prepared since then may be in flight).
   */
  constructor(message: string, readonly stale = false) {
    super(message);
  }
}

export function createLedgerStore(db: Database, options: PostgresStoreOptions = {}): LedgerStore {
  return db.dialect === "sqlite" ? new SqliteLedgerStore(db) : new PostgresLedgerStore(db, options);
}
