// Rows ⇄ agreements, and the JSON shapes of agreements, arrivals and custody payouts (ESCROW.md).
import type { AgreementsTable, ArrivalsTable, CustodyPayoutsTable } from "../db/schema.ts";
import { formatTimestampUs } from "../kernel/clock.ts";
import { available, type Agreement, type AgreementStatus } from "./model.ts";

const ts = (us: bigint | null) => (us === null ? null : formatTimestampUs(BigInt(us)));

export function agreementFromRow(r: AgreementsTable): Agreement {
  return {
    id: r.id,
    merchantId: r.merchant_id,
    ledgerKey: r.ledger_key,
    contractRef: r.contract_ref,
    amountDue: BigInt(r.amount_due),
    currency: r.currency,
    custodyBank: r.custody_bank,
    status: r.status as AgreementStatus,
    amountReceived: BigInt(r.amount_received),
    amountReleased: BigInt(r.amount_released),
    amountRefunded: BigInt(r.amount_refunded),
    amountConverted: BigInt(r.amount_converted),
    amountPendingOut: BigInt(r.amount_pending_out),
    virtualAccountNumber: r.virtual_account_number,
    virtualAccountName: r.virtual_account_name,
    escrowAccountId: r.escrow_account_id,
    payerMasked: JSON.parse(r.payer_masked) as Record<string, string>,
    payeeMasked: JSON.parse(r.payee_masked) as Record<string, string>,
    agentAccountId: r.agent_account_id,
    expiresAt: r.expires_at === null ? null : BigInt(r.expires_at),
    metadata: r.metadata,
    bankAttempts: Number(r.bank_attempts),
    nextBankAttemptAt: r.next_bank_attempt_at === null ? null : BigInt(r.next_bank_attempt_at),
    bankReason: r.bank_reason,
    requestHash: r.request_hash,
    createdAt: BigInt(r.created_at),
    updatedAt: BigInt(r.updated_at),
    version: BigInt(r.version),
  };
}

export function agreementRow(a: Agreement, sealed: { payer: string; payerNameIndex: string; payee: string }): AgreementsTable {
  return {
    id: a.id,
    merchant_id: a.merchantId,
    ledger_key: a.ledgerKey,
    contract_ref: a.contractRef,
    amount_due: a.amountDue,
    currency: a.currency,
    custody_bank: a.custodyBank,
    status: a.status,
    amount_received: a.amountReceived,
    amount_released: a.amountReleased,
    amount_refunded: a.amountRefunded,
    amount_converted: a.amountConverted,
    amount_pending_out: a.amountPendingOut,
    virtual_account_number: a.virtualAccountNumber,
    virtual_account_name: a.virtualAccountName,
    escrow_account_id: a.escrowAccountId,
    payer: sealed.payer,
    payer_masked: JSON.stringify(a.payerMasked),
    payer_name_index: sealed.payerNameIndex,
    payee: sealed.payee,
    payee_masked: JSON.stringify(a.payeeMasked),
    agent_account_id: a.agentAccountId,
    expires_at: a.expiresAt,
    metadata: a.metadata,
    bank_attempts: a.bankAttempts,
    next_bank_attempt_at: a.nextBankAttemptAt,
    bank_reason: a.bankReason,
    request_hash: a.requestHash,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    version: a.version,
  };
}

export function agreementJson(a: Agreement) {
  return {
    id: a.id,
    object: "agreement",
    status: a.status,
    contract_ref: a.contractRef,
    amount_due: a.amountDue,
    currency: a.currency,
    amount_received: a.amountReceived,
    amount_released: a.amountReleased,
    amount_refunded: a.amountRefunded,
    amount_converted: a.amountConverted,
    amount_pending: a.amountPendingOut,
    available: available(a),
    overfunded: a.amountReceived > a.amountDue,
    custody_bank: a.custodyBank,
    virtual_account: a.virtualAccountNumber === null ? null : { bank: a.custodyBank, account_number: a.virtualAccountNumber, account_name: a.virtualAccountName },
    escrow_account_id: a.escrowAccountId,
    payer: a.payerMasked,
    payee: a.payeeMasked,
    agent_account_id: a.agentAccountId,
    bank_reason: a.bankReason,
    expires_at: ts(a.expiresAt),
    metadata: a.metadata === null ? {} : (JSON.parse(a.metadata) as unknown),
    created_at: formatTimestampUs(a.createdAt),
    updated_at: formatTimestampUs(a.updatedAt),
  };
}

export function custodyPayoutJson(p: CustodyPayoutsTable) {
  return {
    id: p.id,
    object: p.kind,
    agreement_id: p.agreement_id,
    amount: BigInt(p.amount),
    currency: p.currency,
    status: p.status,
    bank_transfer_id: p.bank_transfer_id,
    failure: p.failure,
    created_at: formatTimestampUs(BigInt(p.created_at)),
    updated_at: formatTimestampUs(BigInt(p.updated_at)),
  };
}

export function arrivalJson(r: ArrivalsTable) {
  return {
    id: r.id,
    object: "arrival",
    agreement_id: r.agreement_id,
    amount: BigInt(r.amount),
    currency: r.currency,
    bank_reference: r.bank_reference,
    source: r.source,
    status: r.status,
    notice_id: r.document_id,
    entry_id: r.entry_id,
    booked_at: ts(r.booked_at === null ? null : BigInt(r.booked_at)),
    created_at: formatTimestampUs(BigInt(r.created_at)),
  };
}
