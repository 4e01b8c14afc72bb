// TEMPLATE — copy to `src/channels/<name>/transform.ts`. The channel's vocabulary, pure: amounts
// at the wire, request bodies, the channel's statuses and error codes onto unified ones. No I/O,
// no clock (time comes in as an argument), no keys: every function here is table-tested.
import type { FailureCode, PayRequest, PayResult, RefundResult } from "../channel.ts";
import { failure, mapFailure } from "../failures.ts";
import { formatMinor, parseMinor } from "../../kernel/money.ts";

// TODO: the currencies the channel settles and its amount bounds, named, in minor units.
export const TEMPLATE_CURRENCY = "CNY";
export const TEMPLATE_AMOUNT_MIN_MINOR = 1n;
export const TEMPLATE_AMOUNT_MAX_MINOR = 10_000_000_000n;

/**
 * The channel's failure codes onto unified codes. A code missing here maps to channel_error
 * (system-caused) through mapFailure, so an unmapped code never counts as the payer's fault.
 * TODO: every code from the channel's documentation that an answer or notification can carry.
 */
export const TEMPLATE_CODES: Readonly<Record<string, FailureCode>> = {
  BALANCE_NOT_ENOUGH: "insufficient_funds",
  SYSTEM_ERROR: "channel_error",
  INVALID_SIGNATURE: "misconfigured",
};

/** Codes after which the channel asks for the same request again: the outcome is not known yet. */
export const TEMPLATE_RETRY_CODES: ReadonlySet<string> = new Set(["SYSTEM_ERROR"]);

/** TODO: the channel's trade statuses onto the attempt's status (and a failure code for failed ones). */
export const TEMPLATE_STATUSES: Readonly<Record<string, { readonly status: "succeeded" | "pending" | "failed"; readonly failureCode?: string }>> = {
  PAID: { status: "succeeded" },
  WAITING: { status: "pending" },
  CLOSED: { status: "failed", failureCode: "CLOSED" },
};

/** Minor units to the wire's decimal string, exactly — never through a float. Drop it if the wire takes integers. */
export function toWireAmount(amountMinor: bigint): string {
  return formatMinor(amountMinor, TEMPLATE_CURRENCY);
}

/** The wire's decimal string back to minor units; null for anything that is not a non-negative amount. */
export function fromWireAmount(text: unknown): bigint | null {
  if (typeof text !== "string") return null;
  const parsed = parseMinor(text, TEMPLATE_CURRENCY);
  return parsed.ok && parsed.value >= 0n ? parsed.value : null;
}

/** Why a request cannot be sent (nothing leaves Tally), or null. */
export function payRequestProblem(request: PayRequest) {
  if (request.currency !== TEMPLATE_CURRENCY) return failure("misconfigured", "TALLY_CURRENCY_NOT_SUPPORTED");
  if (request.amount < TEMPLATE_AMOUNT_MIN_MINOR || request.amount > TEMPLATE_AMOUNT_MAX_MINOR) return failure("limit_exceeded", "TALLY_AMOUNT_OUT_OF_RANGE");
  return null;
}

/** TODO: the pay request body in the channel's names. */
export function payBody(request: PayRequest): Record<string, unknown> {
  return { merchant_order_no: request.attemptId, amount: toWireAmount(request.amount), subject: request.description };
}

/** TODO: the channel's answer to a status query, as an attempt result. */
export function queryResult(answer: Readonly<Record<string, unknown>>, amountMinor: bigint): PayResult {
  const status = typeof answer.status === "string" ? answer.status : "";
  if (typeof answer.error_code === "string") return { status: "unknown", failure: mapFailure(TEMPLATE_CODES, answer.error_code) };
  const mapped = Object.hasOwn(TEMPLATE_STATUSES, status) ? TEMPLATE_STATUSES[status]! : null;
  if (mapped === null) return { status: "unknown", failure: failure("channel_error", status || "TALLY_NO_STATUS") };
  // A success for another amount is never settled automatically.
  if (mapped.status === "succeeded" && fromWireAmount(answer.amount) !== amountMinor) return { status: "unknown", failure: failure("channel_error", "TALLY_AMOUNT_MISMATCH") };
  return { status: mapped.status, ...(mapped.failureCode !== undefined ? { failure: mapFailure(TEMPLATE_CODES, mapped.failureCode) } : {}) };
}

/** TODO: the channel's refund answer. Retryable errors are `unknown`: the same refund id settles it later. */
export function refundResult(answer: Readonly<Record<string, unknown>>): RefundResult {
  if (typeof answer.error_code === "string") {
    const f = mapFailure(TEMPLATE_CODES, answer.error_code);
    return { status: TEMPLATE_RETRY_CODES.has(f.channelCode) ? "unknown" : "failed", failure: f };
  }
  return { status: answer.status === "REFUNDED" ? "succeeded" : "pending" };
}
