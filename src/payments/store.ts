// Reads of the payments tables (dialect-neutral Kysely on the read connection).
import type { Database } from "../db/database.ts";
import type { Attempt, Payment, Payout, Refund } from "./model.ts";
import { attemptFromRow, paymentFromRow, payoutFromRow, refundFromRow } from "./rows.ts";

export interface Page<T> {
  readonly data: T[];
  readonly hasMore: boolean;
}

export class PaymentReads {
  constructor(private readonly db: Database) {}

  /** The payment if it exists and `merchantId` may see it (null sees all). */
  async payment(id: string, merchantId: string | null): Promise<Payment | null> {
    const row = await this.db.read.selectFrom("payments").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return null;
    return merchantId === null || row.merchant_id === merchantId ? paymentFromRow(row) : null;
  }

  async paymentByLedgerKey(key: string): Promise<Payment | null> {
    const row = await this.db.read.selectFrom("payments").selectAll().where("ledger_key", "=", key).executeTakeFirst();
    return row ? paymentFromRow(row) : null;
  }

  async attempts(parentId: string): Promise<Attempt[]> {
    const rows = await this.db.read.selectFrom("channel_attempts").selectAll().where("parent_id", "=", parentId).orderBy("created_at").orderBy("id").execute();
    return rows.map(attemptFromRow);
  }

  async attempt(id: string): Promise<Attempt | null> {
    const row = await this.db.read.selectFrom("channel_attempts").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? attemptFromRow(row) : null;
  }

  async listPayments(merchantId: string | null, options: { status?: string; limit: number; startingAfter?: Payment }): Promise<Page<Payment>> {
    let q = this.db.read.selectFrom("payments").selectAll();
    if (merchantId !== null) q = q.where("merchant_id", "=", merchantId);
    if (options.status) q = q.where("status", "=", options.status);
    const after = options.startingAfter;
    if (after) {
      q = q.where((eb) => eb.or([eb("created_at", "<", after.createdAt), eb.and([eb("created_at", "=", after.createdAt), eb("id", "<", after.id)])]));
    }
    const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(options.limit + 1).execute();
    return { data: rows.slice(0, options.limit).map(paymentFromRow), hasMore: rows.length > options.limit };
  }

  async refund(id: string, merchantId: string | null): Promise<Refund | null> {
    const row = await this.db.read.selectFrom("refunds").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return null;
    return merchantId === null || row.merchant_id === merchantId ? refundFromRow(row) : null;
  }

  async refunds(paymentId: string): Promise<Refund[]> {
    const rows = await this.db.read.selectFrom("refunds").selectAll().where("payment_id", "=", paymentId).orderBy("created_at").execute();
    return rows.map(refundFromRow);
  }

  async pendingRefunds(updatedBeforeUs: bigint, limit: number): Promise<Refund[]> {
    const rows = await this.db.read
      .selectFrom("refunds")
      .selectAll()
      .where("status", "=", "pending")
      .where("updated_at", "<", updatedBeforeUs)
      .orderBy("updated_at")
      .limit(limit)
      .execute();
    return rows.map(refundFromRow);
  }

  async payout(id: string, merchantId: string | null): Promise<Payout | null> {
    const row = await this.db.read.selectFrom("payouts").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return null;
    return merchantId === null || row.merchant_id === merchantId ? payoutFromRow(row) : null;
  }

  async payoutDestination(id: string): Promise<string | null> {
    const row = await this.db.read.selectFrom("payouts").select("destination").where("id", "=", id).executeTakeFirst();
    return row?.destination ?? null;
  }

  async listPayouts(merchantId: string | null, options: { status?: string; limit: number; startingAfter?: Payout }): Promise<Page<Payout>> {
    let q = this.db.read.selectFrom("payouts").selectAll();
    if (merchantId !== null) q = q.where("merchant_id", "=", merchantId);
    if (options.status) q = q.where("status", "=", options.status);
    const after = options.startingAfter;
    if (after) {
      q = q.where((eb) => eb.or([eb("created_at", "<", after.createdAt), eb.and([eb("created_at", "=", after.createdAt), eb("id", "<", after.id)])]));
    }
    const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(options.limit + 1).execute();
    return { data: rows.slice(0, options.limit).map(payoutFromRow), hasMore: rows.length > options.limit };
  }

  async openPayouts(updatedBeforeUs: bigint, limit: number): Promise<Payout[]> {
    const rows = await this.db.read
      .selectFrom("payouts")
      .selectAll()
      .where("status", "in", ["pending", "in_transit"])
      .where("updated_at", "<", updatedBeforeUs)
      .orderBy("updated_at")
      .limit(limit)
      .execute();
    return rows.map(payoutFromRow);
  }

  /** Attempts due for a query to the channel (unknown, or pending past their next check). */
  async dueAttempts(nowUs: bigint, limit: number): Promise<Attempt[]> {
    const rows = await this.db.read
      .selectFrom("channel_attempts")
      .selectAll()
      .where("next_requery_at", "is not", null)
      .where("next_requery_at", "<=", nowUs)
      .orderBy("next_requery_at")
      .limit(limit)
      .execute();
    return rows.map(attemptFromRow);
  }

  /** Payments past their expiry that have not ended. */
  async expiredPayments(nowUs: bigint, limit: number): Promise<Payment[]> {
    const rows = await this.db.read
      .selectFrom("payments")
      .selectAll()
      .where("status", "in", ["requires_payment_method", "failed", "processing"])
      .where("expires_at", "<=", nowUs)
      .orderBy("expires_at")
      .limit(limit)
      .execute();
    return rows.map(paymentFromRow);
  }
}
