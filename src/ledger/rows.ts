// Mapping between ledger rows (as both databases return them) and the domain types.
import type { LedgerAccountsTable, LedgerTransfersTable } from "../db/schema.ts";
import { accountFlagBits, accountFlagsFromBits, type Account, type Transfer } from "./model.ts";

/** Column order of ledger_transfers, shared by the bulk insert statements. */
export const TRANSFER_COLUMNS = [
  "ts", "id", "merchant_id", "debit_account_id", "credit_account_id", "amount", "currency", "code",
  "flags", "pending_id", "timeout_seconds", "expires_at", "status", "resolved_at", "reference",
  "metadata", "dr_debits_pending", "dr_debits_posted", "dr_credits_pending", "dr_credits_posted",
  "cr_debits_pending", "cr_debits_posted", "cr_credits_pending", "cr_credits_posted",
  "dr_prev_ts", "cr_prev_ts",
] as const;

export const ACCOUNT_COLUMNS = [
  "id", "merchant_id", "currency", "code", "normal_balance", "flags", "owner", "metadata",
  "created_at", "debits_pending", "debits_posted", "credits_pending", "credits_posted",
  "last_ts", "transfer_count",
] as const;

// SQLite returns every integer as bigint (safeIntegers); PostgreSQL returns INTEGER as number and
// BIGINT as bigint. These helpers accept either.
const num = (v: unknown): number => Number(v);
const big = (v: unknown): bigint => (typeof v === "bigint" ? v : BigInt(v as number | string));
const bigOrNull = (v: unknown): bigint | null => (v === null || v === undefined ? null : big(v));

export function accountFromRow(r: LedgerAccountsTable): Account {
  return {
    id: r.id,
    merchantId: r.merchant_id,
    currency: r.currency,
    code: num(r.code),
    normalBalance: r.normal_balance,
    flags: accountFlagsFromBits(num(r.flags)),
    owner: r.owner,
    metadata: r.metadata,
    createdAt: big(r.created_at),
    debitsPending: big(r.debits_pending),
    debitsPosted: big(r.debits_posted),
    creditsPending: big(r.credits_pending),
    creditsPosted: big(r.credits_posted),
    lastTs: bigOrNull(r.last_ts),
    transferCount: big(r.transfer_count),
  };
}

export function transferFromRow(r: LedgerTransfersTable): Transfer {
  return {
    ts: big(r.ts),
    id: r.id,
    merchantId: r.merchant_id,
    debitAccountId: r.debit_account_id,
    creditAccountId: r.credit_account_id,
    amount: big(r.amount),
    currency: r.currency,
    code: num(r.code),
    flags: num(r.flags),
    pendingId: r.pending_id,
    timeoutSeconds: num(r.timeout_seconds),
    expiresAt: bigOrNull(r.expires_at),
    status: r.status,
    resolvedAt: bigOrNull(r.resolved_at),
    reference: r.reference,
    metadata: r.metadata,
    debitAfter: {
      debitsPending: big(r.dr_debits_pending),
      debitsPosted: big(r.dr_debits_posted),
      creditsPending: big(r.dr_credits_pending),
      creditsPosted: big(r.dr_credits_posted),
    },
    creditAfter: {
      debitsPending: big(r.cr_debits_pending),
      debitsPosted: big(r.cr_debits_posted),
      creditsPending: big(r.cr_credits_pending),
      creditsPosted: big(r.cr_credits_posted),
    },
    debitPrevTs: bigOrNull(r.dr_prev_ts),
    creditPrevTs: bigOrNull(r.cr_prev_ts),
  };
}

/** The row values of a transfer in TRANSFER_COLUMNS order. */
export function transferValues(t: Transfer): unknown[] {
  return [
    t.ts, t.id, t.merchantId, t.debitAccountId, t.creditAccountId, t.amount, t.currency, t.code,
    t.flags, t.pendingId, t.timeoutSeconds, t.expiresAt, t.status, t.resolvedAt, t.reference,
    t.metadata, t.debitAfter.debitsPending, t.debitAfter.debitsPosted, t.debitAfter.creditsPending,
    t.debitAfter.creditsPosted, t.creditAfter.debitsPending, t.creditAfter.debitsPosted,
    t.creditAfter.creditsPending, t.creditAfter.creditsPosted, t.debitPrevTs, t.creditPrevTs,
  ];
}

export function accountValues(a: Account): unknown[] {
  return [
    a.id, a.merchantId, a.currency, a.code, a.normalBalance, accountFlagBits(a.flags),
    a.owner, a.metadata, a.createdAt, a.debitsPending, a.debitsPosted, a.creditsPending, a.creditsPosted,
    a.lastTs, a.transferCount,
  ];
}
