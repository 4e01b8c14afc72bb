// JSON shapes of payments, attempts, refunds and payouts (PAYMENTS.md). Amounts stay bigint and
// are written digit for digit by the JSON serializer; times are RFC 3339 in UTC.
import type { Failure } from "../channels/channel.ts";
import { formatTimestampUs } from "../kernel/clock.ts";
import type { Attempt, Payment, Payout, Refund } from "./model.ts";

export function failureJson(f: Failure | null) {
  return f === null ? null : { code: f.code, channel_code: f.channelCode, user_caused: f.userCaused, ...(f.message ? { message: f.message } : {}) };
}

export function checkoutUrl(baseUrl: string, p: Payment): string {
  return `${baseUrl}/checkout/${encodeURIComponent(p.id)}?secret=${p.clientSecret}`;
}

export function attemptJson(a: Attempt) {
  return {
    id: a.id,
    object: "payment_attempt",
    payment_id: a.parentId,
    channel: a.channel,
    method: a.method,
    status: a.status,
    amount: a.amount,
    currency: a.currency,
    installments: a.installments,
    next_action: a.nextAction ?? { type: "none" },
    failure: failureJson(a.failure),
    created_at: formatTimestampUs(a.createdAt),
    settled_at: a.settledAt === null ? null : formatTimestampUs(a.settledAt),
  };
}

export function paymentJson(p: Payment, attempts: readonly Attempt[], baseUrl: string) {
  return {
    id: p.id,
    object: "payment",
    status: p.status,
    amount: p.amount,
    currency: p.currency,
    amount_captured: p.amountCaptured,
    amount_refunded: p.amountRefunded,
    amount_held: p.amountHeld,
    merchant_account_id: p.merchantAccountId,
    description: p.description,
    capture: p.capture,
    methods: p.methods,
    return_url: p.returnUrl,
    contract_ref: p.contractRef,
    metadata: p.metadata === null ? {} : (JSON.parse(p.metadata) as unknown),
    checkout_url: checkoutUrl(baseUrl, p),
    expires_at: formatTimestampUs(p.expiresAt),
    created_at: formatTimestampUs(p.createdAt),
    updated_at: formatTimestampUs(p.updatedAt),
    attempts: attempts.map(attemptJson),
    failure: failureJson(p.failure),
  };
}

export function refundJson(r: Refund) {
  return {
    id: r.id,
    object: "refund",
    payment_id: r.paymentId,
    amount: r.amount,
    currency: r.currency,
    reason: r.reason,
    status: r.status,
    channel: r.channel,
    failure: failureJson(r.failure),
    created_at: formatTimestampUs(r.createdAt),
    updated_at: formatTimestampUs(r.updatedAt),
  };
}

export function payoutJson(p: Payout) {
  return {
    id: p.id,
    object: "payout",
    status: p.status,
    amount: p.amount,
    currency: p.currency,
    source_account_id: p.sourceAccountId,
    destination: p.destinationMasked,
    channel: p.channel,
    failure: failureJson(p.failure),
    metadata: p.metadata === null ? {} : (JSON.parse(p.metadata) as unknown),
    created_at: formatTimestampUs(p.createdAt),
    updated_at: formatTimestampUs(p.updatedAt),
  };
}
