// Rows ⇄ domain values for the payments tables. JSON columns are parsed here and nowhere else.
import type { Failure, NextAction, PaymentMethod } from "../channels/channel.ts";
import type { ChannelAttemptsTable, PaymentsTable, PayoutsTable, RefundsTable } from "../db/schema.ts";
import type { Attempt, Payment, PaymentStatus, Payout, PayoutStatus, Refund, RefundStatus, AttemptStatus } from "./model.ts";

const json = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));
const text = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));

export function paymentFromRow(r: PaymentsTable): Payment {
  return {
    id: r.id,
    merchantId: r.merchant_id,
    ledgerKey: r.ledger_key,
    amount: BigInt(r.amount),
    currency: r.currency,
    merchantAccountId: r.merchant_account_id,
    description: r.description,
    capture: r.capture_method,
    status: r.status as PaymentStatus,
    amountCaptured: BigInt(r.amount_captured),
    amountRefunded: BigInt(r.amount_refunded),
    amountHeld: BigInt(r.amount_held),
    methods: JSON.parse(r.methods) as PaymentMethod[],
    returnUrl: r.return_url,
    contractRef: r.contract_ref,
    metadata: r.metadata,
    clientSecret: r.client_secret,
    requestHash: r.request_hash,
    latestAttemptId: r.latest_attempt_id,
    failure: json<Failure>(r.failure),
    expiresAt: BigInt(r.expires_at),
    createdAt: BigInt(r.created_at),
    updatedAt: BigInt(r.updated_at),
    version: BigInt(r.version),
  };
}

export function paymentRow(p: Payment): PaymentsTable {
  return {
    id: p.id,
    merchant_id: p.merchantId,
    ledger_key: p.ledgerKey,
    amount: p.amount,
    currency: p.currency,
    merchant_account_id: p.merchantAccountId,
    description: p.description,
    capture_method: p.capture,
    status: p.status,
    amount_captured: p.amountCaptured,
    amount_refunded: p.amountRefunded,
    amount_held: p.amountHeld,
    methods: JSON.stringify(p.methods),
    return_url: p.returnUrl,
    contract_ref: p.contractRef,
    metadata: p.metadata,
    client_secret: p.clientSecret,
    request_hash: p.requestHash,
    latest_attempt_id: p.latestAttemptId,
    failure: text(p.failure),
    expires_at: p.expiresAt,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
    version: p.version,
  };
}

export function attemptFromRow(r: ChannelAttemptsTable): Attempt {
  return {
    id: r.id,
    flow: r.flow,
    parentId: r.parent_id,
    merchantId: r.merchant_id,
    channel: r.channel,
    method: r.method,
    status: r.status as AttemptStatus,
    amount: BigInt(r.amount),
    currency: r.currency,
    installments: r.installments === null ? null : Number(r.installments),
    options: json<Record<string, unknown>>(r.options),
    nextAction: json<NextAction>(r.next_action),
    channelRef: r.channel_ref,
    failure: r.failure_code === null ? null : { code: r.failure_code as Failure["code"], channelCode: r.failure_channel_code ?? "", userCaused: Number(r.failure_user_caused) === 1 },
    createdAt: BigInt(r.created_at),
    updatedAt: BigInt(r.updated_at),
    settledAt: r.settled_at === null ? null : BigInt(r.settled_at),
    requeryCount: Number(r.requery_count),
    nextRequeryAt: r.next_requery_at === null ? null : BigInt(r.next_requery_at),
  };
}

export function attemptRow(a: Attempt): ChannelAttemptsTable {
  return {
    id: a.id,
    flow: a.flow,
    parent_id: a.parentId,
    merchant_id: a.merchantId,
    channel: a.channel,
    method: a.method,
    status: a.status,
    amount: a.amount,
    currency: a.currency,
    installments: a.installments,
    options: text(a.options),
    next_action: text(a.nextAction),
    channel_ref: a.channelRef,
    failure_code: a.failure?.code ?? null,
    failure_channel_code: a.failure?.channelCode ?? null,
    failure_user_caused: a.failure ? (a.failure.userCaused ? 1 : 0) : null,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    settled_at: a.settledAt,
    requery_count: a.requeryCount,
    next_requery_at: a.nextRequeryAt,
  };
}

export function refundFromRow(r: RefundsTable): Refund {
  return {
    id: r.id,
    ledgerKey: r.ledger_key,
    paymentId: r.payment_id,
    merchantId: r.merchant_id,
    amount: BigInt(r.amount),
    currency: r.currency,
    reason: r.reason,
    status: r.status as RefundStatus,
    channel: r.channel,
    channelRef: r.channel_ref,
    failure: json<Failure>(r.failure),
    requestHash: r.request_hash,
    createdAt: BigInt(r.created_at),
    updatedAt: BigInt(r.updated_at),
  };
}

export function refundRow(r: Refund): RefundsTable {
  return {
    id: r.id,
    ledger_key: r.ledgerKey,
    payment_id: r.paymentId,
    merchant_id: r.merchantId,
    amount: r.amount,
    currency: r.currency,
    reason: r.reason,
    status: r.status,
    channel: r.channel,
    channel_ref: r.channelRef,
    failure: text(r.failure),
    request_hash: r.requestHash,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

export function payoutFromRow(r: PayoutsTable): Payout {
  return {
    id: r.id,
    ledgerKey: r.ledger_key,
    merchantId: r.merchant_id,
    amount: BigInt(r.amount),
    currency: r.currency,
    sourceAccountId: r.source_account_id,
    destinationMasked: JSON.parse(r.destination_masked) as Payout["destinationMasked"],
    channel: r.channel,
    status: r.status as PayoutStatus,
    options: json<Record<string, unknown>>(r.options),
    channelRef: r.channel_ref,
    failure: json<Failure>(r.failure),
    requestHash: r.request_hash,
    metadata: r.metadata,
    createdAt: BigInt(r.created_at),
    updatedAt: BigInt(r.updated_at),
  };
}

/** The payout's row; the encrypted destination and its blind index are written once, at creation. */
export function payoutRow(p: Payout, destination: string, accountNumberIndex: string): PayoutsTable {
  return {
    id: p.id,
    ledger_key: p.ledgerKey,
    merchant_id: p.merchantId,
    amount: p.amount,
    currency: p.currency,
    source_account_id: p.sourceAccountId,
    destination,
    destination_masked: JSON.stringify(p.destinationMasked),
    account_number_index: accountNumberIndex,
    channel: p.channel,
    status: p.status,
    options: text(p.options),
    channel_ref: p.channelRef,
    failure: text(p.failure),
    request_hash: p.requestHash,
    metadata: p.metadata,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}
