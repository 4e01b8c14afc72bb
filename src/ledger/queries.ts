// Reads of the ledger: accounts, transfers, point-in-time balances and per-account history.
// Dialect-neutral SQL on the read connection. An account's history is a chain (each transfer
// points to the account's previous one) with every CHECKPOINT_INTERVAL-th link indexed, so:
// a page of history is one primary-key lookup per entry, and a point-in-time balance is one
// index probe plus at most CHECKPOINT_INTERVAL lookups, however long the history.
import { sql } from "kysely";
import type { Database } from "../db/database.ts";
import { assert } from "../kernel/assert.ts";
import { CHECKPOINT_INTERVAL, ZERO_BALANCES, copyBalances, creditAfter, debitAfter, type Account, type Balances, type Transfer } from "./model.ts";
import { accountFromRow, transferFromRow } from "./rows.ts";

export interface HistoryEntry {
  readonly transfer: Transfer;
  readonly balanceAfter: Balances;
}

const sideOf = (t: Transfer, accountId: string): Balances => (t.debitAccountId === accountId ? debitAfter(t) : creditAfter(t));
const prevOf = (t: Transfer, accountId: string): bigint | null => (t.debitAccountId === accountId ? t.debitPrevTs : t.creditPrevTs);

export class LedgerQueries {
  constructor(private readonly db: Database) {}

  /** The account if it exists and `merchantId` may see it (null sees all). */
  async account(id: string, merchantId: string | null): Promise<Account | null> {
    const row = await this.db.read.selectFrom("ledger_accounts").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return null;
    const account = accountFromRow(row);
    return merchantId === null || account.merchantId === merchantId ? account : null;
  }

  async transfer(id: string, merchantId: string | null): Promise<Transfer | null> {
    const row = await this.db.read.selectFrom("ledger_transfers").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return null;
    const transfer = transferFromRow(row);
    return merchantId === null || transfer.merchantId === merchantId ? transfer : null;
  }

  /**
   * Walks the account's history chain from `startTs` towards the past: up to `limit` transfers,
   * stopping after the first one at or before `stopAtOrBeforeTs` when given. One recursive query;
   * the rows are fetched by primary key (`ts in (...)`: a join here lets SQLite scan the table).
   */
  private async walk(accountId: string, startTs: bigint, limit: number, stopAtOrBeforeTs: bigint | null): Promise<Transfer[]> {
    const stop = stopAtOrBeforeTs ?? -1n;
    const result = await sql<any>`
      with recursive chain(ts, n) as (
        select cast(${startTs} as bigint), 1
        union all
        select case when t.debit_account_id = ${accountId} then t.dr_prev_ts else t.cr_prev_ts end, chain.n + 1
          from ledger_transfers t join chain on t.ts = chain.ts
         where chain.n < ${limit} and chain.ts > ${stop}
      )
      select t.* from ledger_transfers t where t.ts in (select ts from chain) order by t.ts desc`.execute(this.db.read);
    return result.rows.map(transferFromRow);
  }

  /**
   * Balances as they stood at `atUs`: the snapshot after the account's last transfer at or before
   * that moment, less the holds whose deadline had passed by then but whose expiry was applied
   * after the snapshot (LEDGER.md invariant 7).
   */
  async balanceAt(account: Account, atUs: bigint): Promise<Balances> {
    if (account.lastTs === null) return copyBalances(ZERO_BALANCES);
    let snapshot: Transfer | null = null;
    if (account.lastTs <= atUs) {
      const row = await this.db.read.selectFrom("ledger_transfers").selectAll().where("ts", "=", account.lastTs).executeTakeFirstOrThrow();
      snapshot = transferFromRow(row);
    } else {
      // The first checkpoint after the moment is at most CHECKPOINT_INTERVAL links later.
      const next = await this.db.read
        .selectFrom("ledger_checkpoints")
        .select("ts")
        .where("account_id", "=", account.id)
        .where("ts", ">", atUs)
        .orderBy("ts", "asc")
        .limit(1)
        .executeTakeFirst();
      const start = next ? BigInt(next.ts) : account.lastTs;
      const walked = await this.walk(account.id, start, CHECKPOINT_INTERVAL + 1, atUs);
      snapshot = walked.find((t) => t.ts <= atUs) ?? null;
      assert(walked.length <= CHECKPOINT_INTERVAL + 1, "the walk is bounded by the checkpoint interval");
    }
    if (!snapshot) return copyBalances(ZERO_BALANCES);
    const balances = sideOf(snapshot, account.id);
    const snapshotTs = snapshot.ts;
    const expiredAfterSnapshot = (side: "debit_account_id" | "credit_account_id") =>
      this.db.read
        .selectFrom("ledger_transfers")
        .select("amount")
        .where(side, "=", account.id)
        .where("status", "=", "expired")
        .where("resolved_at", ">", snapshotTs)
        .where("expires_at", "<=", atUs)
        .execute();
    const [expiredDebits, expiredCredits] = await Promise.all([
      expiredAfterSnapshot("debit_account_id"),
      expiredAfterSnapshot("credit_account_id"),
    ]);
    for (const r of expiredDebits) balances.debitsPending -= BigInt(r.amount);
    for (const r of expiredCredits) balances.creditsPending -= BigInt(r.amount);
    return balances;
  }

  /**
   * Transfers touching the account, newest first, each with the account's balances after it.
   * `after` is the transfer to continue after (the previous page's last), or null for the newest.
   */
  async history(account: Account, limit: number, after: Transfer | null): Promise<{ data: HistoryEntry[]; hasMore: boolean }> {
    const start = after ? prevOf(after, account.id) : account.lastTs;
    if (start === null) return { data: [], hasMore: false };
    const walked = await this.walk(account.id, start, limit, null);
    const last = walked.at(-1);
    return {
      data: walked.map((t) => ({ transfer: t, balanceAfter: sideOf(t, account.id) })),
      hasMore: walked.length === limit && last !== undefined && prevOf(last, account.id) !== null,
    };
  }
}
