// Reads of the ledger: accounts, transfers, point-in-time balances and per-account history.
// Dialect-neutral Kysely on the read connection; every query walks an index.
import type { Database } from "../db/database.ts";
import { ZERO_BALANCES, copyBalances, type Account, type Balances, type Transfer } from "./model.ts";
import { accountFromRow, transferFromRow } from "./rows.ts";

export interface HistoryEntry {
  readonly transfer: Transfer;
  readonly balanceAfter: Balances;
}

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
   * Balances as they stood at `atUs`: the snapshot after the account's last transfer at or before
   * that moment, less the holds whose deadline had passed by then but whose expiry was applied
   * after the snapshot (LEDGER.md invariant 7).
   */
  async balanceAt(account: Account, atUs: bigint): Promise<Balances> {
    const [debitSide, creditSide] = await Promise.all([
      this.db.read
        .selectFrom("ledger_transfers")
        .select(["ts", "dr_debits_pending", "dr_debits_posted", "dr_credits_pending", "dr_credits_posted"])
        .where("debit_account_id", "=", account.id)
        .where("ts", "<=", atUs)
        .orderBy("ts", "desc")
        .limit(1)
        .executeTakeFirst(),
      this.db.read
        .selectFrom("ledger_transfers")
        .select(["ts", "cr_debits_pending", "cr_debits_posted", "cr_credits_pending", "cr_credits_posted"])
        .where("credit_account_id", "=", account.id)
        .where("ts", "<=", atUs)
        .orderBy("ts", "desc")
        .limit(1)
        .executeTakeFirst(),
    ]);
    let snapshotTs: bigint;
    let balances: Balances;
    const dTs = debitSide ? BigInt(debitSide.ts) : -1n;
    const cTs = creditSide ? BigInt(creditSide.ts) : -1n;
    if (dTs < 0n && cTs < 0n) return copyBalances(ZERO_BALANCES);
    if (dTs > cTs) {
      snapshotTs = dTs;
      balances = {
        debitsPending: BigInt(debitSide!.dr_debits_pending),
        debitsPosted: BigInt(debitSide!.dr_debits_posted),
        creditsPending: BigInt(debitSide!.dr_credits_pending),
        creditsPosted: BigInt(debitSide!.dr_credits_posted),
      };
    } else {
      snapshotTs = cTs;
      balances = {
        debitsPending: BigInt(creditSide!.cr_debits_pending),
        debitsPosted: BigInt(creditSide!.cr_debits_posted),
        creditsPending: BigInt(creditSide!.cr_credits_pending),
        creditsPosted: BigInt(creditSide!.cr_credits_posted),
      };
    }
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

  /** Transfers touching the account, newest first, each with the account's balances after it. */
  async history(account: Account, limit: number, beforeTs: bigint | null): Promise<{ data: HistoryEntry[]; hasMore: boolean }> {
    const side = (column: "debit_account_id" | "credit_account_id") => {
      let q = this.db.read.selectFrom("ledger_transfers").selectAll().where(column, "=", account.id);
      if (beforeTs !== null) q = q.where("ts", "<", beforeTs);
      return q.orderBy("ts", "desc").limit(limit + 1).execute();
    };
    const [debits, credits] = await Promise.all([side("debit_account_id"), side("credit_account_id")]);
    const merged = [...debits, ...credits].map(transferFromRow).sort((a, b) => (a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : 0));
    const page = merged.slice(0, limit);
    return {
      data: page.map((t) => ({ transfer: t, balanceAfter: t.debitAccountId === account.id ? t.debitAfter : t.creditAfter })),
      hasMore: merged.length > limit,
    };
  }
}
