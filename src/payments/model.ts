// Payments, attempts, refunds and payouts: their states, the transition tables that govern them
// (PAYMENTS.md), and the pure rules that turn a channel's answer into the next state, the ledger
// transfers to post and the events to emit. No I/O here; service.ts does that.
import type { Failure, NextAction, PaymentMethod, PayResult, PayoutResult, RefundResult } from "../channels/channel.ts";
import { transition, type TransitionTable } from "../kernel/state-machine.ts";
import type { TransferInput } from "../ledger/model.ts";

export const PAYMENT_STATUSES = ["requires_payment_method", "processing", "requires_capture", "succeeded", "failed", "canceled", "expired"] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];
export type PaymentEvent = "attempt_started" | "attempt_succeeded_automatic" | "attempt_succeeded_manual" | "attempt_failed" | "capture" | "cancel" | "expire";

export const PAYMENT_TRANSITIONS: TransitionTable<PaymentStatus, PaymentEvent> = {
  attempt_started: { requires_payment_method: "processing", failed: "processing" },
  attempt_succeeded_automatic: { processing: "succeeded" },
  attempt_succeeded_manual: { processing: "requires_capture" },
  attempt_failed: { processing: "failed" },
  capture: { requires_capture: "succeeded" },
  cancel: { requires_payment_method: "canceled", failed: "canceled", requires_capture: "canceled" },
  expire: { requires_payment_method: "expired", failed: "expired", processing: "expired" },
};

export const ATTEMPT_STATUSES = ["pending", "unknown", "succeeded", "failed"] as const;
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];
type AttemptEvent = "pending" | "unknown" | "succeeded" | "failed";
export const ATTEMPT_TRANSITIONS: TransitionTable<AttemptStatus, AttemptEvent> = {
  pending: { pending: "pending", unknown: "pending" },
  unknown: { pending: "unknown", unknown: "unknown" },
  succeeded: { pending: "succeeded", unknown: "succeeded" },
  failed: { pending: "failed", unknown: "failed" },
};

export const REFUND_STATUSES = ["pending", "succeeded", "failed"] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];
export const REFUND_TRANSITIONS: TransitionTable<RefundStatus, "succeed" | "fail"> = {
  succeed: { pending: "succeeded" },
  fail: { pending: "failed" },
};

export const PAYOUT_STATUSES = ["pending", "in_transit", "paid", "failed", "returned"] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];
export type PayoutEvent = "send" | "pay" | "fail" | "return";
export const PAYOUT_TRANSITIONS: TransitionTable<PayoutStatus, PayoutEvent> = {
  send: { pending: "in_transit" },
  pay: { in_transit: "paid" },
  fail: { pending: "failed", in_transit: "failed" },
  return: { paid: "returned" },
};

export const TERMINAL_PAYMENT_STATUSES: ReadonlySet<PaymentStatus> = new Set(["succeeded", "canceled", "expired"]);

export interface Payment {
  readonly id: string;
  readonly merchantId: string | null;
  readonly ledgerKey: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly merchantAccountId: string;
  readonly description: string | null;
  readonly capture: "automatic" | "manual";
  readonly status: PaymentStatus;
  readonly amountCaptured: bigint;
  readonly amountRefunded: bigint;
  readonly amountHeld: bigint;
  readonly methods: readonly PaymentMethod[];
  readonly returnUrl: string | null;
  readonly contractRef: string | null;
  readonly metadata: string | null;
  readonly clientSecret: string;
  readonly requestHash: string;
  readonly latestAttemptId: string | null;
  readonly failure: Failure | null;
  readonly expiresAt: bigint;
  readonly createdAt: bigint;
  readonly updatedAt: bigint;
  readonly version: bigint;
}

export interface Attempt {
  readonly id: string;
  readonly flow: "pay_in" | "payout";
  readonly parentId: string;
  readonly merchantId: string | null;
  readonly channel: string;
  readonly method: string;
  readonly status: AttemptStatus;
  readonly amount: bigint;
  readonly currency: string;
  readonly installments: number | null;
  readonly options: Readonly<Record<string, unknown>> | null;
  readonly nextAction: NextAction | null;
  readonly channelRef: string | null;
  readonly failure: Failure | null;
  readonly createdAt: bigint;
  readonly updatedAt: bigint;
  readonly settledAt: bigint | null;
  readonly requeryCount: number;
  readonly nextRequeryAt: bigint | null;
}

export interface Refund {
  readonly id: string;
  readonly ledgerKey: string;
  readonly paymentId: string;
  readonly merchantId: string | null;
  readonly amount: bigint;
  readonly currency: string;
  readonly reason: string | null;
  readonly status: RefundStatus;
  readonly channel: string;
  readonly channelRef: string | null;
  readonly failure: Failure | null;
  readonly requestHash: string;
  readonly createdAt: bigint;
  readonly updatedAt: bigint;
}

export interface PayoutDestination {
  readonly bankAccountNumber: string;
  readonly accountName: string;
  readonly bankCode?: string;
}

export interface Payout {
  readonly id: string;
  readonly ledgerKey: string;
  readonly merchantId: string | null;
  readonly amount: bigint;
  readonly currency: string;
  readonly sourceAccountId: string;
  readonly destinationMasked: { readonly bank_account_number: string; readonly account_name: string; readonly bank_code?: string };
  readonly channel: string;
  readonly status: PayoutStatus;
  readonly options: Readonly<Record<string, unknown>> | null;
  readonly channelRef: string | null;
  readonly failure: Failure | null;
  readonly requestHash: string;
  readonly metadata: string | null;
  readonly createdAt: bigint;
  readonly updatedAt: bigint;
}

/** The platform's account for a channel's money in transit, debit-normal (PAYMENTS.md). */
export function clearingAccountId(channel: string, currency: string): string {
  return `clearing:${channel}:${currency}`;
}

/** Money a channel reports after its payment was closed (late success): held here for operators. */
export function suspenseAccountId(channel: string, currency: string): string {
  return `suspense:${channel}:${currency}`;
}

/** Ledger transfer ids of a payment, refund or payout: `<prefix>.<ledger key>.<step>`. */
export const ledgerIds = {
  paymentIn: (p: Payment) => `pay.${p.ledgerKey}.in`,
  paymentCapture: (p: Payment) => `pay.${p.ledgerKey}.capture`,
  paymentRelease: (p: Payment) => `pay.${p.ledgerKey}.release`,
  paymentLate: (p: Payment, attemptId: string) => `pay.${p.ledgerKey}.late.${attemptId.slice(-12)}`,
  refundHold: (r: Refund) => `ref.${r.ledgerKey}.hold`,
  refundPost: (r: Refund) => `ref.${r.ledgerKey}.post`,
  refundVoid: (r: Refund) => `ref.${r.ledgerKey}.void`,
  payoutHold: (p: Payout) => `pout.${p.ledgerKey}.hold`,
  payoutPost: (p: Payout) => `pout.${p.ledgerKey}.post`,
  payoutVoid: (p: Payout) => `pout.${p.ledgerKey}.void`,
  payoutReturn: (p: Payout) => `pout.${p.ledgerKey}.return`,
};

function transfer(id: string, fields: Partial<TransferInput>): TransferInput {
  return { id, pending: false, timeoutSeconds: 0, linked: false, ...fields };
}

/** What settling an attempt changes: new states, transfers to post, events to emit. */
export interface AttemptSettlement {
  readonly payment: Payment;
  readonly attempt: Attempt;
  readonly transfers: readonly TransferInput[];
  readonly events: readonly string[];
  /** Set when a channel reported money for a payment that can no longer take it. */
  readonly late: boolean;
}

/**
 * Applies a channel's answer about `attempt` to it and its payment. Answers about a settled
 * attempt change nothing (null): a duplicate or late notification is harmless.
 */
export function settleAttempt(payment: Payment, attempt: Attempt, result: PayResult, nowUs: bigint, nextRequeryAt: bigint | null): AttemptSettlement | null {
  if (attempt.status === "succeeded" || attempt.status === "failed") return null;
  const status = transition("attempt", ATTEMPT_TRANSITIONS, attempt.status, result.status);
  const settled = status === "succeeded" || status === "failed";
  const next: Attempt = {
    ...attempt,
    status,
    channelRef: result.channelRef ?? attempt.channelRef,
    nextAction: result.nextAction ?? attempt.nextAction,
    failure: status === "failed" ? (result.failure ?? { code: "channel_error", channelCode: "UNKNOWN", userCaused: false }) : null,
    updatedAt: nowUs,
    settledAt: settled ? nowUs : null,
    nextRequeryAt: settled ? null : nextRequeryAt,
  };
  if (!settled) return { payment, attempt: next, transfers: [], events: [], late: false };
  // Only the payment's latest attempt moves the payment; an older one (it cannot normally still be
  // open) or one for a closed payment is recorded, and money it moved is parked for operators.
  const isCurrent = payment.latestAttemptId === attempt.id && payment.status === "processing";
  if (!isCurrent) {
    if (status !== "succeeded") return { payment, attempt: next, transfers: [], events: [], late: false };
    const late = transfer(ledgerIds.paymentLate(payment, attempt.id), {
      debitAccountId: clearingAccountId(attempt.channel, payment.currency),
      creditAccountId: suspenseAccountId(attempt.channel, payment.currency),
      amount: attempt.amount,
      currency: payment.currency,
      reference: payment.id,
    });
    return { payment, attempt: next, transfers: [late], events: ["payment.late_success"], late: true };
  }
  if (status === "failed") {
    const failed: Payment = { ...payment, status: transition("payment", PAYMENT_TRANSITIONS, payment.status, "attempt_failed"), failure: next.failure, updatedAt: nowUs };
    return { payment: failed, attempt: next, transfers: [], events: ["payment.failed"], late: false };
  }
  const manual = payment.capture === "manual";
  const toStatus = transition("payment", PAYMENT_TRANSITIONS, payment.status, manual ? "attempt_succeeded_manual" : "attempt_succeeded_automatic");
  const moved = transfer(ledgerIds.paymentIn(payment), {
    debitAccountId: clearingAccountId(attempt.channel, payment.currency),
    creditAccountId: payment.merchantAccountId,
    amount: payment.amount,
    currency: payment.currency,
    pending: manual,
    reference: payment.id,
  });
  const succeeded: Payment = {
    ...payment,
    status: toStatus,
    amountCaptured: manual ? 0n : payment.amount,
    amountHeld: manual ? payment.amount : 0n,
    failure: null,
    updatedAt: nowUs,
  };
  return { payment: succeeded, attempt: next, transfers: [moved], events: [manual ? "payment.requires_capture" : "payment.succeeded"], late: false };
}

/** Capture of a manual payment: post `amount` of the hold (the rest is released). */
export function capturePayment(payment: Payment, amount: bigint | undefined, nowUs: bigint): { payment: Payment; transfers: TransferInput[] } {
  const status = transition("payment", PAYMENT_TRANSITIONS, payment.status, "capture");
  const captured = amount ?? payment.amountHeld;
  return {
    payment: { ...payment, status, amountCaptured: captured, amountHeld: 0n, updatedAt: nowUs },
    transfers: [transfer(ledgerIds.paymentCapture(payment), { postPendingId: ledgerIds.paymentIn(payment), amount: captured, reference: payment.id })],
  };
}

export function cancelPayment(payment: Payment, nowUs: bigint): { payment: Payment; transfers: TransferInput[] } {
  const held = payment.status === "requires_capture";
  const status = transition("payment", PAYMENT_TRANSITIONS, payment.status, "cancel");
  return {
    payment: { ...payment, status, amountHeld: 0n, updatedAt: nowUs },
    transfers: held ? [transfer(ledgerIds.paymentRelease(payment), { voidPendingId: ledgerIds.paymentIn(payment), reference: payment.id })] : [],
  };
}

export function refundHold(payment: Payment, refund: Refund, channel: string): TransferInput {
  return transfer(ledgerIds.refundHold(refund), {
    debitAccountId: payment.merchantAccountId,
    creditAccountId: clearingAccountId(channel, payment.currency),
    amount: refund.amount,
    currency: payment.currency,
    pending: true,
    reference: refund.id,
  });
}

/** A refund's settlement: `succeeded` posts the hold, `failed` voids it and frees the amount. */
export function settleRefund(payment: Payment, refund: Refund, result: RefundResult, nowUs: bigint): { payment: Payment; refund: Refund; transfers: TransferInput[]; events: string[] } | null {
  if (refund.status !== "pending" || result.status === "pending" || result.status === "unknown") return null;
  if (result.status === "succeeded") {
    return {
      payment,
      refund: { ...refund, status: transition("refund", REFUND_TRANSITIONS, refund.status, "succeed"), channelRef: result.channelRef ?? refund.channelRef, updatedAt: nowUs },
      transfers: [transfer(ledgerIds.refundPost(refund), { postPendingId: ledgerIds.refundHold(refund), reference: refund.id })],
      events: ["refund.succeeded"],
    };
  }
  return {
    payment: { ...payment, amountRefunded: payment.amountRefunded - refund.amount, updatedAt: nowUs },
    refund: { ...refund, status: transition("refund", REFUND_TRANSITIONS, refund.status, "fail"), failure: result.failure ?? null, updatedAt: nowUs },
    transfers: [transfer(ledgerIds.refundVoid(refund), { voidPendingId: ledgerIds.refundHold(refund), reference: refund.id })],
    events: ["refund.failed"],
  };
}

export function payoutHold(payout: Payout): TransferInput {
  return transfer(ledgerIds.payoutHold(payout), {
    debitAccountId: payout.sourceAccountId,
    creditAccountId: clearingAccountId(payout.channel, payout.currency),
    amount: payout.amount,
    currency: payout.currency,
    pending: true,
    reference: payout.id,
  });
}

/**
 * A payout's next state from a channel's answer. `paid` straight from `pending` passes through
 * `in_transit` (both events are emitted), so every webhook consumer sees the same sequence.
 */
export function settlePayout(payout: Payout, result: PayoutResult, nowUs: bigint): { payout: Payout; transfers: TransferInput[]; events: string[] } | null {
  const events: string[] = [];
  const transfers: TransferInput[] = [];
  let status = payout.status;
  const step = (event: PayoutEvent, name: string) => {
    status = transition("payout", PAYOUT_TRANSITIONS, status, event);
    events.push(name);
  };
  switch (result.status) {
    case "pending":
    case "unknown":
      return null;
    case "in_transit":
      if (status !== "pending") return null;
      step("send", "payout.in_transit");
      break;
    case "paid":
      if (status !== "pending" && status !== "in_transit") return null;
      if (status === "pending") step("send", "payout.in_transit");
      step("pay", "payout.paid");
      transfers.push(transfer(ledgerIds.payoutPost(payout), { postPendingId: ledgerIds.payoutHold(payout), reference: payout.id }));
      break;
    case "failed":
      if (status !== "pending" && status !== "in_transit") return null;
      step("fail", "payout.failed");
      transfers.push(transfer(ledgerIds.payoutVoid(payout), { voidPendingId: ledgerIds.payoutHold(payout), reference: payout.id }));
      break;
    case "returned":
      if (status === "pending" || status === "in_transit") {
        // The bank reports a return we never saw paid: the payment went out, then came back.
        if (status === "pending") step("send", "payout.in_transit");
        step("pay", "payout.paid");
        transfers.push(transfer(ledgerIds.payoutPost(payout), { postPendingId: ledgerIds.payoutHold(payout), reference: payout.id }));
      }
      if (status !== "paid") return null;
      step("return", "payout.returned");
      transfers.push(
        transfer(ledgerIds.payoutReturn(payout), {
          debitAccountId: clearingAccountId(payout.channel, payout.currency),
          creditAccountId: payout.sourceAccountId,
          amount: payout.amount,
          currency: payout.currency,
          reference: payout.id,
        }),
      );
      break;
  }
  return {
    payout: { ...payout, status, channelRef: result.channelRef ?? payout.channelRef, failure: result.status === "failed" ? (result.failure ?? null) : payout.failure, updatedAt: nowUs },
    transfers,
    events,
  };
}

/** Seconds until the next query of an unsettled attempt: 1, 2, 4 ... capped at 5 minutes. */
export function requeryDelaySeconds(queriesBefore: number): number {
  return Math.min(2 ** Math.min(queriesBefore, 20), 300);
}
