// Fulfilment agreements (履约协议) on custody accounts: their amounts, the status those amounts
// imply (ESCROW.md "Agreements"), and the ledger accounts and transfers behind them. Pure.
import type { TransferInput } from "../ledger/model.ts";

export const AGREEMENT_STATUSES = [
  "pending_bank",
  "bank_rejected",
  "awaiting_funds",
  "partially_funded",
  "funded",
  "expired",
  "released",
  "refunded",
  "settled",
  "canceled",
] as const;
export type AgreementStatus = (typeof AGREEMENT_STATUSES)[number];

export interface PayerDetails {
  readonly name: string;
  readonly id_number?: string;
  readonly phone?: string;
}

export interface PayeeDetails {
  readonly name: string;
  readonly bank_account_number: string;
  readonly account_name?: string;
}

export interface Agreement {
  readonly id: string;
  readonly merchantId: string | null;
  readonly ledgerKey: string;
  readonly contractRef: string | null;
  readonly amountDue: bigint;
  readonly currency: string;
  readonly custodyBank: string;
  readonly status: AgreementStatus;
  readonly amountReceived: bigint;
  readonly amountReleased: bigint;
  readonly amountRefunded: bigint;
  readonly amountConverted: bigint;
  /** Held on the escrow for releases and refunds the bank has not confirmed yet. */
  readonly amountPendingOut: bigint;
  readonly virtualAccountNumber: string | null;
  readonly virtualAccountName: string | null;
  readonly escrowAccountId: string;
  readonly payerMasked: Readonly<Record<string, string>>;
  readonly payeeMasked: Readonly<Record<string, string>>;
  readonly agentAccountId: string | null;
  readonly expiresAt: bigint | null;
  readonly metadata: string | null;
  readonly bankAttempts: number;
  readonly nextBankAttemptAt: bigint | null;
  readonly bankReason: string | null;
  readonly requestHash: string;
  readonly createdAt: bigint;
  readonly updatedAt: bigint;
  readonly version: bigint;
}

/** Statuses the money does not decide: set by the bank's answers or by a command. */
const EXPLICIT: ReadonlySet<AgreementStatus> = new Set(["pending_bank", "bank_rejected", "canceled"]);

/** What the escrow holds and nobody has claimed: received − paid out − converted − held. */
export function available(a: Agreement): bigint {
  return a.amountReceived - a.amountReleased - a.amountRefunded - a.amountConverted - a.amountPendingOut;
}

/** The escrow's ledger balance (credits − debits posted): received − released − refunded − converted. */
export function escrowBalance(a: Agreement): bigint {
  return a.amountReceived - a.amountReleased - a.amountRefunded - a.amountConverted;
}

/** Money beyond what was due and not yet refunded: it can only be refunded. */
export function excess(a: Agreement): bigint {
  const over = a.amountReceived - a.amountDue - a.amountRefunded;
  return over > 0n ? over : 0n;
}

/** What may be released to the payee or converted into commission now. */
export function releasable(a: Agreement): bigint {
  const r = available(a) - excess(a);
  return r > 0n ? r : 0n;
}

/**
 * The status the amounts imply (ESCROW.md): funding states while money is held or on its way
 * out; once the escrow is empty with nothing pending, how it ended. `expired` sticks once set,
 * until the money is gone.
 */
export function deriveStatus(a: Agreement, expiredNow: boolean): AgreementStatus {
  if (EXPLICIT.has(a.status)) return a.status;
  if (a.amountReceived > 0n && escrowBalance(a) === 0n && a.amountPendingOut === 0n) {
    if (a.amountConverted > 0n) return "settled";
    if (a.amountReleased > 0n && a.amountRefunded === 0n) return "released";
    if (a.amountRefunded > 0n && a.amountReleased === 0n) return "refunded";
    return "settled";
  }
  if (a.status === "expired" || (expiredNow && a.amountReceived < a.amountDue && (a.status === "awaiting_funds" || a.status === "partially_funded"))) {
    return "expired";
  }
  if (a.amountReceived >= a.amountDue) return "funded";
  if (a.amountReceived > 0n) return "partially_funded";
  return "awaiting_funds";
}

export function withStatus(a: Agreement, nowUs: bigint): Agreement {
  const expiredNow = a.expiresAt !== null && nowUs >= a.expiresAt;
  const status = deriveStatus(a, expiredNow);
  return status === a.status ? a : { ...a, status };
}

/** Ledger accounts of the escrow module. */
export const escrowAccounts = {
  escrow: (ledgerKey: string) => `escrow:${ledgerKey}`,
  clearing: (bank: string, currency: string) => `custody:${bank}:${currency}`,
  suspense: (bank: string, currency: string) => `custody-suspense:${bank}:${currency}`,
};

function transfer(id: string, fields: Partial<TransferInput>): TransferInput {
  return { id, pending: false, timeoutSeconds: 0, linked: false, ...fields };
}

/** An arrival: the bank's clearing account to the escrow (matched) or to the bank's suspense. */
export function arrivalTransfer(arrivalId: string, bank: string, currency: string, amount: bigint, escrowAccountId: string | null): TransferInput {
  return transfer(`arr.${arrivalId}`, {
    debitAccountId: escrowAccounts.clearing(bank, currency),
    creditAccountId: escrowAccountId ?? escrowAccounts.suspense(bank, currency),
    amount,
    currency,
    reference: arrivalId,
  });
}

/** An unmatched arrival matched later: from the bank's suspense account to the escrow. */
export function suspenseToEscrow(arrivalId: string, bank: string, currency: string, amount: bigint, escrowAccountId: string): TransferInput {
  return transfer(`arr.${arrivalId}.match`, {
    debitAccountId: escrowAccounts.suspense(bank, currency),
    creditAccountId: escrowAccountId,
    amount,
    currency,
    reference: arrivalId,
  });
}

/** A reversal of an applied arrival: back from where the arrival went to the clearing account. */
export function reversalTransfer(arrivalId: string, bank: string, currency: string, amount: bigint, from: string): TransferInput {
  return transfer(`arr.${arrivalId}.reversal`, {
    debitAccountId: from,
    creditAccountId: escrowAccounts.clearing(bank, currency),
    amount,
    currency,
    reference: arrivalId,
  });
}
