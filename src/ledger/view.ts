// How ledger objects look over the API (LEDGER.md): snake_case, amounts as integers in minor
// units, timestamps RFC 3339 in UTC with microseconds.
import { formatTimestampUs } from "../kernel/clock.ts";
import {
  FLAG_LINKED,
  FLAG_PENDING,
  FLAG_POST,
  FLAG_VOID,
  derivedBalance,
  effectiveStatus,
  type Account,
  type Balances,
  type NormalBalance,
  type Transfer,
  type TransferResult,
} from "./model.ts";

export function balancesJson(normal: NormalBalance, b: Balances) {
  const { balance, available } = derivedBalance(normal, b);
  return {
    debits_pending: b.debitsPending,
    debits_posted: b.debitsPosted,
    credits_pending: b.creditsPending,
    credits_posted: b.creditsPosted,
    balance,
    available,
  };
}

export function accountJson(a: Account) {
  return {
    id: a.id,
    currency: a.currency,
    code: a.code,
    normal_balance: a.normalBalance,
    flags: {
      debits_must_not_exceed_credits: a.flags.debitsMustNotExceedCredits,
      credits_must_not_exceed_debits: a.flags.creditsMustNotExceedDebits,
    },
    owner: a.owner,
    metadata: a.metadata === null ? {} : JSON.parse(a.metadata),
    created_at: formatTimestampUs(a.createdAt),
    ...balancesJson(a.normalBalance, a),
  };
}

export function transferJson(t: Transfer, nowUs: bigint) {
  return {
    id: t.id,
    debit_account_id: t.debitAccountId,
    credit_account_id: t.creditAccountId,
    amount: t.amount,
    currency: t.currency,
    code: t.code,
    pending: (t.flags & FLAG_PENDING) !== 0,
    timeout_seconds: t.timeoutSeconds,
    post_pending_id: t.flags & FLAG_POST ? t.pendingId : null,
    void_pending_id: t.flags & FLAG_VOID ? t.pendingId : null,
    linked: (t.flags & FLAG_LINKED) !== 0,
    reference: t.reference,
    metadata: t.metadata === null ? {} : JSON.parse(t.metadata),
    status: effectiveStatus(t, nowUs),
    expires_at: t.expiresAt === null ? null : formatTimestampUs(t.expiresAt),
    timestamp: formatTimestampUs(t.ts),
  };
}

/**
 * The same JSON as stringifyJson(transferJson(t)), written directly: the single-transfer response
 * is on the hot path, and a generic serializer with a bigint replacer costs more than the rest of
 * rendering. view.test.ts holds the two to the same output.
 */
export function transferText(t: Transfer, nowUs: bigint): string {
  const s = JSON.stringify;
  const isPost = (t.flags & FLAG_POST) !== 0;
  const isVoid = (t.flags & FLAG_VOID) !== 0;
  return (
    `{"id":${s(t.id)},"debit_account_id":${s(t.debitAccountId)},"credit_account_id":${s(t.creditAccountId)},` +
    `"amount":${t.amount},"currency":${s(t.currency)},"code":${t.code},"pending":${(t.flags & FLAG_PENDING) !== 0},` +
    `"timeout_seconds":${t.timeoutSeconds},"post_pending_id":${isPost ? s(t.pendingId) : "null"},` +
    `"void_pending_id":${isVoid ? s(t.pendingId) : "null"},"linked":${(t.flags & FLAG_LINKED) !== 0},` +
    `"reference":${t.reference === null ? "null" : s(t.reference)},"metadata":${t.metadata ?? "{}"},` +
    `"status":"${effectiveStatus(t, nowUs)}","expires_at":${t.expiresAt === null ? "null" : `"${formatTimestampUs(t.expiresAt)}"`},` +
    `"timestamp":"${formatTimestampUs(t.ts)}"}`
  );
}

export const RESULT_MESSAGES: Record<Exclude<TransferResult, "created" | "exists">, string> = {
  exists_with_different_fields: "a transfer with this id exists with different fields",
  linked_event_failed: "another transfer in the linked chain failed, so this one was not applied",
  linked_event_chain_open: "the last transfer of the request is linked: the chain is never closed",
  accounts_must_be_different: "debit and credit account must differ",
  debit_account_not_found: "the debit account does not exist",
  credit_account_not_found: "the credit account does not exist",
  currency_mismatch: "the transfer's currency differs from an account's currency",
  pending_transfer_not_found: "no transfer has the referenced pending id",
  pending_transfer_not_pending: "the referenced transfer is not a hold (it was not created with pending: true)",
  pending_transfer_has_different_fields: "the fields given differ from the hold's",
  pending_transfer_already_posted: "the hold was already posted",
  pending_transfer_already_voided: "the hold was already voided",
  pending_transfer_expired: "the hold has expired",
  exceeds_pending_transfer_amount: "the amount exceeds the held amount",
  exceeds_credits: "the debit account's debits would exceed its credits",
  exceeds_debits: "the credit account's credits would exceed its debits",
  overflow: "a balance would exceed the largest amount the ledger holds",
};
