// The ledger store on SQLite: prepared statements on the writer connection, run synchronously
// inside the batch's transaction (better-sqlite3 is synchronous; the transaction holds the one
// write lock, so nothing else interleaves).
import type BetterSqlite3 from "better-sqlite3";
import type { Database } from "../db/database.ts";
import { assert } from "../kernel/assert.ts";
import type { Account, Transfer } from "./model.ts";
import { ACCOUNT_COLUMNS, TRANSFER_COLUMNS, accountFromRow, accountValues, transferFromRow, transferValues } from "./rows.ts";
import type { BatchIO, LedgerStore } from "./store.ts";

/** Rows per multi-row INSERT: fewer statement executions, within SQLite's variable limit. */
const INSERT_ROWS_PER_STATEMENT = 64;

export class SqliteLedgerStore implements LedgerStore {
  private readonly sqlite: BetterSqlite3.Database;
  private readonly getTransfer: BetterSqlite3.Statement;
  private readonly getAccount: BetterSqlite3.Statement;
  private readonly insertTransferMany: BetterSqlite3.Statement;
  private readonly insertTransferOne: BetterSqlite3.Statement;
  private readonly insertAccount: BetterSqlite3.Statement;
  private readonly updateBalance: BetterSqlite3.Statement;
  private readonly updateHold: BetterSqlite3.Statement;
  private readonly selectDueHolds: BetterSqlite3.Statement;
  private readonly selectState: BetterSqlite3.Statement;
  private readonly updateState: BetterSqlite3.Statement;
  private readonly insertCheckpoint: BetterSqlite3.Statement;

  constructor(private readonly db: Database) {
    assert(db.sqlite, "SQLite store needs the writer connection");
    const s = db.sqlite;
    this.sqlite = s;
    const row = (n: number) => `(${new Array(n).fill("?").join(",")})`;
    const tcols = TRANSFER_COLUMNS.join(",");
    this.getTransfer = s.prepare("select * from ledger_transfers where id = ?");
    this.getAccount = s.prepare("select * from ledger_accounts where id = ?");
    this.insertTransferOne = s.prepare(`insert into ledger_transfers (${tcols}) values ${row(TRANSFER_COLUMNS.length)}`);
    this.insertTransferMany = s.prepare(
      `insert into ledger_transfers (${tcols}) values ${new Array(INSERT_ROWS_PER_STATEMENT).fill(row(TRANSFER_COLUMNS.length)).join(",")}`,
    );
    this.insertAccount = s.prepare(`insert into ledger_accounts (${ACCOUNT_COLUMNS.join(",")}) values ${row(ACCOUNT_COLUMNS.length)}`);
    this.updateBalance = s.prepare(
      "update ledger_accounts set debits_pending = ?, debits_posted = ?, credits_pending = ?, credits_posted = ?, last_ts = ?, transfer_count = ? where id = ?",
    );
    this.updateHold = s.prepare("update ledger_transfers set status = ?, resolved_at = ? where id = ?");
    this.selectDueHolds = s.prepare(
      "select * from ledger_transfers where status = 'pending' and expires_at <= ? order by expires_at limit ?",
    );
    this.selectState = s.prepare("select last_ts, version from ledger_state where id = 1");
    this.updateState = s.prepare("update ledger_state set last_ts = ?, version = ? where id = 1");
    this.insertCheckpoint = s.prepare("insert into ledger_checkpoints (account_id, ts) values (?, ?)");
  }

  runBatch<T>(work: (io: BatchIO) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      const state = this.selectState.get() as { last_ts: bigint; version: bigint };
      const io: BatchIO = {
        tx,
        lastTimestamp: state.last_ts,
        version: state.version,
        loadTransfers: async (ids) => {
          const out = new Map<string, Transfer>();
          for (const id of ids) {
            const r = this.getTransfer.get(id) as any;
            if (r) out.set(id, transferFromRow(r));
          }
          return out;
        },
        loadAccounts: async (ids) => {
          const out = new Map<string, Account>();
          for (const id of ids) {
            const r = this.getAccount.get(id) as any;
            if (r) out.set(id, accountFromRow(r));
          }
          return out;
        },
        dueHolds: async (nowUs, limit) => (this.selectDueHolds.all(nowUs, limit) as any[]).map(transferFromRow),
        insertAccounts: async (accounts) => {
          for (const a of accounts) this.insertAccount.run(...accountValues(a));
        },
        insertTransfers: async (transfers) => {
          let i = 0;
          for (; i + INSERT_ROWS_PER_STATEMENT <= transfers.length; i += INSERT_ROWS_PER_STATEMENT) {
            const values: unknown[] = [];
            for (let j = i; j < i + INSERT_ROWS_PER_STATEMENT; j++) values.push(...transferValues(transfers[j]!));
            this.insertTransferMany.run(...values);
          }
          for (; i < transfers.length; i++) this.insertTransferOne.run(...transferValues(transfers[i]!));
        },
        updateHolds: async (holds) => {
          for (const h of holds) this.updateHold.run(h.status, h.resolvedAt, h.id);
        },
        updateBalances: async (accounts) => {
          for (const a of accounts) {
            this.updateBalance.run(a.debitsPending, a.debitsPosted, a.creditsPending, a.creditsPosted, a.lastTs, a.transferCount, a.id);
          }
        },
        insertCheckpoints: async (checkpoints) => {
          for (const c of checkpoints) this.insertCheckpoint.run(c.accountId, c.ts);
        },
        setState: async (lastTs, version) => {
          this.updateState.run(lastTs, version);
        },
      };
      return work(io);
    });
  }
}
