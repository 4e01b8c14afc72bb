// WeChat Pay API v3's vocabulary, pure: request bodies (amounts are integer fen on this wire),
// trade_state and error codes onto unified statuses and failures, decrypted notification resources
// onto changes. No I/O, no clock, no keys here.
import type { Failure, FailureCode, NotifiedChange, PayRequest, PayResult, RefundResult, RefundStatus } from "../channel.ts";
import { failure, mapFailure } from "../failures.ts";

/** Domestic WeChat Pay settles in CNY only. */
export const WECHAT_CURRENCY = "CNY";
/** amount.total is a JSON int of fen: at least 1, at most 2^31 − 1. */
export const WECHAT_AMOUNT_MIN_MINOR = 1n;
export const WECHAT_AMOUNT_MAX_MINOR = 2_147_483_647n;
/** `description` is at most 127 bytes of UTF-8. */
export const WECHAT_DESCRIPTION_BYTES_MAX = 127;

export type WechatTradeType = "native" | "jsapi";

/** trade_state onto the attempt's status (and the failure code for the failed ones). */
export const TRADE_STATES: Readonly<Record<string, { readonly status: "succeeded" | "pending" | "failed"; readonly failureCode?: string }>> = {
  SUCCESS: { status: "succeeded" },
  // Paid, then (partly) refunded: the pay-in itself succeeded.
  REFUND: { status: "succeeded" },
  NOTPAY: { status: "pending" },
  // The payer is entering a password or confirming: wait.
  USERPAYING: { status: "pending" },
  CLOSED: { status: "failed", failureCode: "CLOSED" },
  REVOKED: { status: "failed", failureCode: "REVOKED" },
  PAYERROR: { status: "failed", failureCode: "PAYERROR" },
};

/**
 * WeChat Pay codes (trade states that are failures, and v3 error `code`s) onto unified codes. An
 * unknown code maps to channel_error through mapFailure, never to the payer's fault.
 */
export const WECHAT_CODES: Readonly<Record<string, FailureCode>> = {
  // The payer's side.
  NOTENOUGH: "insufficient_funds",
  NOT_ENOUGH: "insufficient_funds",
  PAYERROR: "declined",
  TRADE_ERROR: "declined",
  RULE_LIMIT: "limit_exceeded",
  CLOSED: "expired",
  ORDER_CLOSED: "expired",
  REVOKED: "canceled_by_payer",
  ACCOUNTERROR: "invalid_account",
  USER_ACCOUNT_ABNORMAL: "invalid_account",
  // A refund the bank could not return to the payer's card (refund_status ABNORMAL).
  ABNORMAL: "invalid_account",
  // WeChat Pay's side: retry with the same out_trade_no / out_refund_no.
  SYSTEM_ERROR: "channel_error",
  SYSTEMERROR: "channel_error",
  BANK_ERROR: "channel_error",
  BANKERROR: "channel_error",
  FREQUENCY_LIMITED: "channel_error",
  // Ours: an operator has to act.
  PARAM_ERROR: "misconfigured",
  INVALID_REQUEST: "misconfigured",
  SIGN_ERROR: "misconfigured",
  MCH_NOT_EXISTS: "misconfigured",
  APPID_MCHID_NOT_MATCH: "misconfigured",
  NO_AUTH: "misconfigured",
  OUT_TRADE_NO_USED: "misconfigured",
  ORDER_NOT_EXIST: "not_found",
  RESOURCE_NOT_EXISTS: "not_found",
};

/** Codes after which WeChat Pay asks for the same request again: the outcome is not known yet. */
export const WECHAT_RETRY_CODES: ReadonlySet<string> = new Set(["SYSTEM_ERROR", "SYSTEMERROR", "BANK_ERROR", "BANKERROR", "FREQUENCY_LIMITED"]);

/** refund_status onto the refund's status. */
export const REFUND_STATUSES: Readonly<Record<string, { readonly status: RefundStatus; readonly failureCode?: string }>> = {
  SUCCESS: { status: "succeeded" },
  PROCESSING: { status: "pending" },
  CLOSED: { status: "failed", failureCode: "CLOSED" },
  // Not returned to the payer and waiting for the merchant to act in WeChat's portal.
  ABNORMAL: { status: "unknown", failureCode: "ABNORMAL" },
};

/** RFC 3339 in Beijing time, as WeChat Pay writes time_expire ("2024-03-25T00:30:05+08:00"). */
export function rfc3339Beijing(epochMs: number): string {
  const d = new Date(epochMs + 8 * 3600_000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}+08:00`;
}

/** Cuts text to at most `bytesMax` bytes of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, bytesMax: number): string {
  let bytes = 0;
  let out = "";
  for (const ch of text) {
    bytes += Buffer.byteLength(ch);
    if (bytes > bytesMax) break;
    out += ch;
  }
  return out;
}

/** Fen as WeChat's JSON int. Only called on amounts within the wire's bounds, which Number holds exactly. */
export function toWireFen(amountMinor: bigint): number {
  if (amountMinor < 0n || amountMinor > WECHAT_AMOUNT_MAX_MINOR) throw new RangeError(`${amountMinor} fen is outside WeChat Pay's amount range`);
  return Number(amountMinor);
}

/** A WeChat JSON int of fen back to bigint; null for anything that is not a non-negative integer. */
export function fromWireFen(value: unknown): bigint | null {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : null;
}

export function chooseTradeType(options: PayRequest["options"]): WechatTradeType {
  return options?.trade_type === "jsapi" ? "jsapi" : "native";
}

/** The payer's openid for JSAPI (the attempt's `openid` option). */
export function payerOpenid(options: PayRequest["options"]): string | null {
  const openid = options?.openid;
  return typeof openid === "string" && /^[A-Za-z0-9_-]{1,128}$/.test(openid) ? openid : null;
}

/** Why a pay request cannot be sent, or null when it can. Nothing leaves Tally for these. */
export function payRequestProblem(request: PayRequest): Failure | null {
  if (request.currency !== WECHAT_CURRENCY) return failure("misconfigured", "TALLY_CURRENCY_NOT_SUPPORTED", `WeChat Pay takes ${WECHAT_CURRENCY} only, not ${request.currency}`);
  if (request.amount < WECHAT_AMOUNT_MIN_MINOR || request.amount > WECHAT_AMOUNT_MAX_MINOR) return failure("limit_exceeded", "TALLY_AMOUNT_OUT_OF_RANGE", `WeChat Pay takes 1 to ${WECHAT_AMOUNT_MAX_MINOR} fen`);
  if (request.installments !== undefined) return failure("misconfigured", "TALLY_INSTALLMENTS_NOT_SUPPORTED", "WeChat Pay has no installments here");
  if (chooseTradeType(request.options) === "jsapi" && payerOpenid(request.options) === null) return failure("misconfigured", "TALLY_OPENID_REQUIRED", "JSAPI needs the payer's openid");
  return null;
}

export interface PayBodyInput {
  readonly appid: string;
  readonly mchid: string;
  readonly notifyUrl: string;
  readonly expiresAtMs: number;
}

/** The body of POST /v3/pay/transactions/{native|jsapi}. */
export function payBody(request: PayRequest, input: PayBodyInput): Record<string, unknown> {
  const openid = payerOpenid(request.options);
  return {
    appid: input.appid,
    mchid: input.mchid,
    description: truncateUtf8(request.description.trim() || request.paymentId, WECHAT_DESCRIPTION_BYTES_MAX),
    out_trade_no: request.attemptId,
    time_expire: rfc3339Beijing(input.expiresAtMs),
    notify_url: input.notifyUrl,
    amount: { total: toWireFen(request.amount), currency: WECHAT_CURRENCY },
    ...(chooseTradeType(request.options) === "jsapi" && openid !== null ? { payer: { openid } } : {}),
    ...(request.payer?.clientIp !== undefined ? { scene_info: { payer_client_ip: request.payer.clientIp } } : {}),
  };
}

/** A WeChat Pay answer: HTTP status and the parsed JSON object (empty for an empty body). */
export interface WechatAnswer {
  readonly status: number;
  readonly data: Readonly<Record<string, unknown>>;
}

function answerFailure(answer: WechatAnswer): Failure {
  const code = typeof answer.data.code === "string" ? answer.data.code : `HTTP_${answer.status}`;
  return mapFailure(WECHAT_CODES, code, typeof answer.data.message === "string" ? answer.data.message : undefined);
}

const isOk = (answer: WechatAnswer) => answer.status >= 200 && answer.status < 300;

/**
 * The answer to creating the order. An error answer means no code_url or prepay_id reached anyone,
 * so no payer can pay it: the attempt failed (a channel_error is never failed over, as the
 * contract says, but it is not the payer's fault either).
 */
export function payResult(answer: WechatAnswer, tradeType: WechatTradeType): PayResult {
  if (!isOk(answer)) return { status: "failed", failure: answerFailure(answer) };
  if (tradeType === "native") {
    const codeUrl = answer.data.code_url;
    if (typeof codeUrl !== "string" || codeUrl === "") return { status: "unknown", failure: failure("channel_error", "TALLY_NO_CODE_URL", "the answer has no code_url") };
    return { status: "pending", nextAction: { type: "qr_code", qr: codeUrl } };
  }
  const prepayId = answer.data.prepay_id;
  if (typeof prepayId !== "string" || prepayId === "") return { status: "unknown", failure: failure("channel_error", "TALLY_NO_PREPAY_ID", "the answer has no prepay_id") };
  return { status: "pending" };
}

/** The message WeChat's JSAPI `requestPayment` checks: appId, timeStamp, nonceStr, package, each followed by \n. */
export function jsapiSignMessage(params: { appId: string; timeStamp: string; nonceStr: string; package: string }): string {
  return `${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
}

export interface QueryContext {
  readonly amount: bigint;
  readonly createdAtMs: number;
  readonly nowMs: number;
  readonly payWindowMs: number;
}

/** Clock skew allowed after time_expire before an order WeChat does not know counts as never created. */
export const ORDER_NOT_EXIST_GRACE_MS = 5 * 60_000;

/**
 * GET /v3/pay/transactions/out-trade-no/{id}'s answer. ORDER_NOT_EXIST: the order was never
 * created (our create call timed out before WeChat took it) — pending until the pay window we put
 * into time_expire has passed (plus a grace), then failed `expired`, since WeChat no longer takes
 * payment for it. Any other error says nothing about the trade: unknown, query again.
 */
export function queryResult(answer: WechatAnswer, context: QueryContext): PayResult {
  if (!isOk(answer)) {
    if (answer.data.code === "ORDER_NOT_EXIST" || answer.data.code === "RESOURCE_NOT_EXISTS") {
      if (context.nowMs < context.createdAtMs + context.payWindowMs + ORDER_NOT_EXIST_GRACE_MS) return { status: "pending" };
      return { status: "failed", failure: failure("expired", String(answer.data.code), "WeChat Pay never received the order before time_expire") };
    }
    return { status: "unknown", failure: answerFailure(answer) };
  }
  const transactionId = typeof answer.data.transaction_id === "string" && answer.data.transaction_id !== "" ? { channelRef: answer.data.transaction_id } : {};
  const state = typeof answer.data.trade_state === "string" ? answer.data.trade_state : "";
  const mapped = Object.hasOwn(TRADE_STATES, state) ? TRADE_STATES[state]! : null;
  if (mapped === null) return { status: "unknown", ...transactionId, failure: failure("channel_error", state || "TALLY_NO_TRADE_STATE", "unknown trade_state") };
  if (mapped.status === "succeeded") {
    const amount = answer.data.amount as Record<string, unknown> | undefined;
    const total = fromWireFen(amount?.total);
    // A different amount is never settled automatically: an operator looks at it.
    if (total !== context.amount) return { status: "unknown", ...transactionId, failure: failure("channel_error", "TALLY_AMOUNT_MISMATCH", `WeChat Pay says ${String(amount?.total)} fen, the attempt is ${context.amount}`) };
  }
  const desc = typeof answer.data.trade_state_desc === "string" ? answer.data.trade_state_desc : undefined;
  return { status: mapped.status, ...transactionId, ...(mapped.failureCode !== undefined ? { failure: mapFailure(WECHAT_CODES, mapped.failureCode, desc) } : {}) };
}

/** The body of POST /v3/refund/domestic/refunds; out_refund_no is our refund id, so a retry is the same refund. */
export function refundBody(request: { refundId: string; attemptId: string; channelRef?: string; amount: bigint; paymentAmount: bigint; reason?: string }, notifyUrl: string): Record<string, unknown> {
  return {
    ...(request.channelRef !== undefined ? { transaction_id: request.channelRef } : { out_trade_no: request.attemptId }),
    out_refund_no: request.refundId,
    ...(request.reason !== undefined ? { reason: truncateUtf8(request.reason, 80) } : {}),
    notify_url: notifyUrl,
    amount: { refund: toWireFen(request.amount), total: toWireFen(request.paymentAmount), currency: WECHAT_CURRENCY },
  };
}

export function refundResult(answer: WechatAnswer): RefundResult {
  const ref = typeof answer.data.refund_id === "string" ? { channelRef: answer.data.refund_id } : {};
  if (!isOk(answer)) {
    const f = answerFailure(answer);
    return { status: WECHAT_RETRY_CODES.has(f.channelCode) || answer.status >= 500 ? "unknown" : "failed", ...ref, failure: f };
  }
  return refundStatus(typeof answer.data.status === "string" ? answer.data.status : "", ref);
}

function refundStatus(status: string, ref: { channelRef?: string }): RefundResult {
  const mapped = Object.hasOwn(REFUND_STATUSES, status) ? REFUND_STATUSES[status]! : null;
  if (mapped === null) return { status: "unknown", ...ref, failure: failure("channel_error", status || "TALLY_NO_REFUND_STATUS", "unknown refund status") };
  return { status: mapped.status, ...ref, ...(mapped.failureCode !== undefined ? { failure: mapFailure(WECHAT_CODES, mapped.failureCode) } : {}) };
}

/** What a decrypted notification resource says; a reason when it says nothing usable. */
export function notificationChange(eventType: string, resource: Readonly<Record<string, unknown>>): { change: NotifiedChange; dedupeKey: string } | { ignore: string } | { reject: string } {
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  if (eventType.startsWith("TRANSACTION.")) {
    const attemptId = str(resource.out_trade_no);
    const state = str(resource.trade_state);
    if (attemptId === undefined) return { reject: "out_trade_no is missing" };
    if (state === undefined || !Object.hasOwn(TRADE_STATES, state)) return { reject: `unknown trade_state ${JSON.stringify(resource.trade_state)}` };
    const amount = fromWireFen((resource.amount as Record<string, unknown> | undefined)?.total);
    if (amount === null) return { reject: "amount.total is not an integer of fen" };
    const mapped = TRADE_STATES[state]!;
    if (mapped.status === "pending") return { ignore: `trade ${attemptId} is ${state}` };
    const ref = str(resource.transaction_id);
    return {
      dedupeKey: `wechat_pay:attempt:${attemptId}:${state}`,
      change: {
        target: "attempt",
        attemptId,
        status: mapped.status,
        ...(ref !== undefined ? { channelRef: ref } : {}),
        amount,
        ...(mapped.failureCode !== undefined ? { failure: mapFailure(WECHAT_CODES, mapped.failureCode, str(resource.trade_state_desc)) } : {}),
      },
    };
  }
  if (eventType.startsWith("REFUND.")) {
    const refundId = str(resource.out_refund_no);
    const status = str(resource.refund_status);
    if (refundId === undefined) return { reject: "out_refund_no is missing" };
    if (status === undefined || !Object.hasOwn(REFUND_STATUSES, status)) return { reject: `unknown refund_status ${JSON.stringify(resource.refund_status)}` };
    const ref = str(resource.refund_id);
    const result = refundStatus(status, ref !== undefined ? { channelRef: ref } : {});
    return { dedupeKey: `wechat_pay:refund:${refundId}:${status}`, change: { target: "refund", refundId, ...result } };
  }
  return { ignore: `event ${eventType} is not one Tally acts on` };
}
