// Alipay's vocabulary, pure: yuan strings at the wire, Alipay's trade statuses and sub_codes, the
// biz_content of each call. No I/O and no clock here (time comes in as an argument), so every
// mapping is a table a test can walk through.
import type { Failure, FailureCode, NotifiedChange, PayRequest, PayResult, RefundResult } from "../channel.ts";
import { failure, mapFailure } from "../failures.ts";
import { formatMinor, parseMinor } from "../../kernel/money.ts";

/** Alipay's domestic products settle in CNY only. */
export const ALIPAY_CURRENCY = "CNY";
/** Alipay's bounds on total_amount: 0.01 to 100,000,000.00 yuan. */
export const ALIPAY_AMOUNT_MIN_MINOR = 1n;
export const ALIPAY_AMOUNT_MAX_MINOR = 10_000_000_000n;
/** `subject` is at most 256 characters. */
export const ALIPAY_SUBJECT_CHARS_MAX = 256;
/** Huabei (花呗分期) plans Alipay offers. */
export const HUABEI_PERIODS = [3, 6, 12] as const;
/** hb_fq_seller_percent: 0 = the payer bears the installment fee, 100 = the seller does. */
export const HUABEI_SELLER_PERCENTS = [0, 100] as const;
export type HuabeiSellerPercent = (typeof HUABEI_SELLER_PERCENTS)[number];

export type AlipayProduct = "page" | "wap";
export const ALIPAY_PRODUCTS: Readonly<Record<AlipayProduct, { readonly method: string; readonly productCode: string }>> = {
  page: { method: "alipay.trade.page.pay", productCode: "FAST_INSTANT_TRADE_PAY" },
  wap: { method: "alipay.trade.wap.pay", productCode: "QUICK_WAP_WAY" },
};

/**
 * Alipay sub_codes onto unified codes. An unknown sub_code maps to channel_error (mapFailure), so
 * a code missing here can never count as the payer's fault.
 */
export const ALIPAY_SUB_CODES: Readonly<Record<string, FailureCode>> = {
  // The payer's side.
  "ACQ.BUYER_BALANCE_NOT_ENOUGH": "insufficient_funds",
  "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH": "insufficient_funds",
  "ACQ.PAYMENT_AUTH_CODE_INVALID": "invalid_account",
  "ACQ.BUYER_ENABLE_STATUS_FORBID": "declined",
  "ACQ.BUYER_SELLER_EQUAL": "declined",
  "ACQ.TRADE_BUYER_NOT_MATCH": "declined",
  "ACQ.ERROR_BALANCE_PAYMENT_DISABLE": "declined",
  "ACQ.MOBILE_PAYMENT_SWITCH_OFF": "declined",
  "ACQ.PAYMENT_REQUEST_HAS_RISK": "declined",
  "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR": "limit_exceeded",
  "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR": "limit_exceeded",
  "ACQ.PRODUCT_AMOUNT_LIMIT_ERROR": "limit_exceeded",
  "ACQ.TOTAL_FEE_EXCEED": "limit_exceeded",
  "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT": "identity_check_failed",
  "ACQ.TRADE_HAS_CLOSE": "expired",
  // Tally's own names for what a trade status says (see TRADE_STATUSES).
  TRADE_CLOSED: "expired",
  // Alipay's side: retry later with the same out_trade_no / out_request_no.
  "ACQ.SYSTEM_ERROR": "channel_error",
  "aop.ACQ.SYSTEM_ERROR": "channel_error",
  "isp.unknow-error": "channel_error",
  "ACQ.PAYMENT_FAIL": "channel_error",
  "ACQ.PULL_MOBILE_CASHIER_FAIL": "channel_error",
  // Our configuration or request is wrong: an operator has to act.
  "ACQ.INVALID_PARAMETER": "misconfigured",
  "ACQ.ACCESS_FORBIDDEN": "misconfigured",
  "ACQ.PARTNER_ERROR": "misconfigured",
  "ACQ.SELLER_BEEN_BLOCKED": "misconfigured",
  "ACQ.CONTEXT_INCONSISTENT": "misconfigured",
  "ACQ.DISCORDANT_REPEAT_REQUEST": "misconfigured",
  "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": "misconfigured",
  "ACQ.REFUND_FEE_ERROR": "misconfigured",
  "isv.invalid-signature": "misconfigured",
  "isv.invalid-app-id": "misconfigured",
  "isv.missing-signature": "misconfigured",
  // Refunds.
  "ACQ.TRADE_NOT_EXIST": "not_found",
  "ACQ.SELLER_BALANCE_NOT_ENOUGH": "insufficient_funds",
  "ACQ.TRADE_STATUS_ERROR": "declined",
  "ACQ.TRADE_HAS_FINISHED": "declined",
  "ACQ.REASON_TRADE_BEEN_FREEZEN": "declined",
};

/** Sub_codes after which Alipay asks for the same request again: the outcome is not known yet. */
export const ALIPAY_RETRY_SUB_CODES: ReadonlySet<string> = new Set(["ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"]);

/** Alipay's trade_status onto the attempt's status. */
export const TRADE_STATUSES: Readonly<Record<string, { readonly status: "succeeded" | "pending" | "failed"; readonly failureCode?: string }>> = {
  TRADE_SUCCESS: { status: "succeeded" },
  // Paid, and past the refund window: still a success.
  TRADE_FINISHED: { status: "succeeded" },
  WAIT_BUYER_PAY: { status: "pending" },
  // An unpaid trade closed at time_expire or by the merchant; a paid one closed by a full refund
  // arrives as a refund notification (out_biz_no), never through here.
  TRADE_CLOSED: { status: "failed", failureCode: "TRADE_CLOSED" },
};

/** Fen to Alipay's yuan string, exactly ("0.01", "2500.00"). */
export function toYuan(amountMinor: bigint): string {
  return formatMinor(amountMinor, ALIPAY_CURRENCY);
}

/** Alipay's yuan string to fen, exactly; null for anything that is not a non-negative amount. */
export function fromYuan(text: unknown): bigint | null {
  if (typeof text !== "string") return null;
  const parsed = parseMinor(text, ALIPAY_CURRENCY);
  return parsed.ok && parsed.value >= 0n ? parsed.value : null;
}

/** Alipay's `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8, no daylight saving). */
export function beijingTime(epochMs: number): string {
  const d = new Date(epochMs + 8 * 3600_000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

const MOBILE_AGENT = /Mobile|Android|iPhone|iPad|HarmonyOS/i;

/** `options.product` ("page" | "wap") if given, else wap for a phone's browser, else page. */
export function chooseProduct(request: Pick<PayRequest, "options" | "payer">): AlipayProduct {
  const product = request.options?.product;
  if (product === "page" || product === "wap") return product;
  return request.payer?.userAgent !== undefined && MOBILE_AGENT.test(request.payer.userAgent) ? "wap" : "page";
}

export function huabeiSellerPercent(options: PayRequest["options"], fallback: HuabeiSellerPercent): HuabeiSellerPercent | null {
  const value = options?.hb_fq_seller_percent;
  if (value === undefined) return fallback;
  return value === 0 || value === 100 || value === "0" || value === "100" ? (Number(value) as HuabeiSellerPercent) : null;
}

/** Why a pay request cannot be sent, or null when it can. Nothing leaves Tally for these. */
export function payRequestProblem(request: PayRequest): Failure | null {
  if (request.currency !== ALIPAY_CURRENCY) return failure("misconfigured", "TALLY_CURRENCY_NOT_SUPPORTED", `Alipay takes ${ALIPAY_CURRENCY} only, not ${request.currency}`);
  if (request.amount < ALIPAY_AMOUNT_MIN_MINOR || request.amount > ALIPAY_AMOUNT_MAX_MINOR) {
    return failure("limit_exceeded", "ACQ.TOTAL_FEE_EXCEED", `Alipay takes 0.01 to ${toYuan(ALIPAY_AMOUNT_MAX_MINOR)} yuan`);
  }
  if (request.installments !== undefined && !(HUABEI_PERIODS as readonly number[]).includes(request.installments)) {
    return failure("misconfigured", "TALLY_INSTALLMENTS_NOT_SUPPORTED", `Huabei offers ${HUABEI_PERIODS.join(", ")} periods`);
  }
  return null;
}

export interface PayBizContentInput {
  readonly product: AlipayProduct;
  readonly sellerPercent: HuabeiSellerPercent;
  /** The trade's absolute expiry (time_expire), epoch milliseconds. */
  readonly expiresAtMs: number;
}

/** biz_content of alipay.trade.page.pay / wap.pay. */
export function payBizContent(request: PayRequest, input: PayBizContentInput): Record<string, unknown> {
  const subject = Array.from(request.description.trim() || request.paymentId).slice(0, ALIPAY_SUBJECT_CHARS_MAX).join("");
  return {
    out_trade_no: request.attemptId,
    total_amount: toYuan(request.amount),
    subject,
    product_code: ALIPAY_PRODUCTS[input.product].productCode,
    time_expire: beijingTime(input.expiresAtMs),
    ...(request.installments !== undefined
      ? { extend_params: { hb_fq_num: String(request.installments), hb_fq_seller_percent: String(input.sellerPercent) } }
      : {}),
    ...(input.product === "wap" && request.returnUrl !== undefined ? { quit_url: request.returnUrl } : {}),
  };
}

/** An Alipay gateway answer's business part (the `<method>_response` object). */
export type AlipayAnswer = Readonly<Record<string, unknown>>;

function answerFailure(answer: AlipayAnswer): Failure {
  const subCode = typeof answer.sub_code === "string" ? answer.sub_code : `code_${String(answer.code)}`;
  const message = typeof answer.sub_msg === "string" ? answer.sub_msg : typeof answer.msg === "string" ? answer.msg : undefined;
  return mapFailure(ALIPAY_SUB_CODES, subCode, message);
}

export interface QueryContext {
  readonly amount: bigint;
  readonly createdAtMs: number;
  readonly nowMs: number;
  /** The pay window the connector put into time_expire; after it Alipay refuses to open the trade. */
  readonly payWindowMs: number;
}

/** Clock skew and Alipay's own lag allowed after time_expire before a missing trade counts as never paid. */
export const TRADE_NOT_EXIST_GRACE_MS = 5 * 60_000;

/**
 * alipay.trade.query's answer as an attempt result.
 * ACQ.TRADE_NOT_EXIST: a page/wap trade exists at Alipay only once the payer opens the cashier, so
 * "not exist" means "not started yet" (pending) until the pay window we put into time_expire (plus
 * a grace) has passed; after that Alipay can no longer create it, and the attempt failed `expired`
 * (user-caused: the payer never paid).
 */
export function queryResult(answer: AlipayAnswer, context: QueryContext): PayResult {
  if (answer.code !== "10000") {
    if (answer.sub_code === "ACQ.TRADE_NOT_EXIST") {
      const closedAtMs = context.createdAtMs + context.payWindowMs + TRADE_NOT_EXIST_GRACE_MS;
      if (context.nowMs < closedAtMs) return { status: "pending" };
      return { status: "failed", failure: failure("expired", "ACQ.TRADE_NOT_EXIST", "the payer never opened the Alipay cashier before time_expire") };
    }
    // A failed query says nothing about the trade: keep looking.
    return { status: "unknown", failure: answerFailure(answer) };
  }
  const tradeNo = typeof answer.trade_no === "string" ? answer.trade_no : undefined;
  const ref = tradeNo !== undefined ? { channelRef: tradeNo } : {};
  const tradeStatus = typeof answer.trade_status === "string" ? answer.trade_status : "";
  const mapped = Object.hasOwn(TRADE_STATUSES, tradeStatus) ? TRADE_STATUSES[tradeStatus]! : null;
  if (mapped === null) return { status: "unknown", ...ref, failure: failure("channel_error", tradeStatus || "TALLY_NO_TRADE_STATUS", "unknown trade_status") };
  if (mapped.status === "succeeded") {
    const paid = fromYuan(answer.total_amount);
    // A different amount is never settled automatically: an operator looks at it.
    if (paid !== context.amount) {
      return { status: "unknown", ...ref, failure: failure("channel_error", "TALLY_AMOUNT_MISMATCH", `Alipay says ${String(answer.total_amount)} yuan, the attempt is ${toYuan(context.amount)}`) };
    }
  }
  return { status: mapped.status, ...ref, ...(mapped.failureCode !== undefined ? { failure: mapFailure(ALIPAY_SUB_CODES, mapped.failureCode, "the Alipay trade was closed unpaid") } : {}) };
}

/** biz_content of alipay.trade.refund; out_request_no is our refund id, so a retry is the same refund. */
export function refundBizContent(request: { refundId: string; attemptId: string; channelRef?: string; amount: bigint; reason?: string }): Record<string, unknown> {
  return {
    out_trade_no: request.attemptId,
    ...(request.channelRef !== undefined ? { trade_no: request.channelRef } : {}),
    refund_amount: toYuan(request.amount),
    out_request_no: request.refundId,
    ...(request.reason !== undefined ? { refund_reason: request.reason.slice(0, 256) } : {}),
  };
}

/**
 * alipay.trade.refund's answer. fund_change "Y" is the refund done; "N" means this call moved no
 * money and the outcome follows (Alipay's refund notification): pending. ACQ.SYSTEM_ERROR asks for
 * a retry with the same out_request_no: unknown.
 */
export function refundResult(answer: AlipayAnswer): RefundResult {
  const ref = typeof answer.trade_no === "string" ? { channelRef: answer.trade_no } : {};
  if (answer.code === "10000") return { status: answer.fund_change === "Y" ? "succeeded" : "pending", ...ref };
  const f = answerFailure(answer);
  return { status: ALIPAY_RETRY_SUB_CODES.has(f.channelCode) || answer.code === "20000" ? "unknown" : "failed", ...ref, failure: f };
}

/** What a verified notification's parameters say; null with a reason when they say nothing usable. */
export function notificationChange(params: Readonly<Record<string, string>>): { change: NotifiedChange; dedupeKey: string } | { ignore: string } | { reject: string } {
  const outTradeNo = params.out_trade_no;
  const tradeStatus = params.trade_status;
  if (outTradeNo === undefined || outTradeNo === "") return { reject: "out_trade_no is missing" };
  if (tradeStatus === undefined || !Object.hasOwn(TRADE_STATUSES, tradeStatus)) return { reject: `unknown trade_status ${JSON.stringify(tradeStatus)}` };
  const ref = params.trade_no ? { channelRef: params.trade_no } : {};
  // A refund shows up as a trade notification carrying the refund's out_request_no (out_biz_no).
  if (params.out_biz_no && (params.gmt_refund || params.refund_fee)) {
    return { dedupeKey: `alipay:refund:${params.out_biz_no}`, change: { target: "refund", refundId: params.out_biz_no, status: "succeeded", ...ref } };
  }
  const amount = fromYuan(params.total_amount);
  if (amount === null) return { reject: `total_amount ${JSON.stringify(params.total_amount)} is not a yuan amount` };
  const mapped = TRADE_STATUSES[tradeStatus]!;
  if (mapped.status === "pending") return { ignore: `trade ${outTradeNo} is ${tradeStatus}` };
  return {
    dedupeKey: `alipay:attempt:${outTradeNo}:${tradeStatus}`,
    change: {
      target: "attempt",
      attemptId: outTradeNo,
      status: mapped.status,
      ...ref,
      amount,
      ...(mapped.failureCode !== undefined ? { failure: mapFailure(ALIPAY_SUB_CODES, mapped.failureCode, "the Alipay trade was closed unpaid") } : {}),
    },
  };
}
