// The Channel port: what Tally asks of a payment channel (Alipay, WeChat Pay, the simulator, ...).
// A connector declares the flows it supports; each flow takes plain domain values (amounts are
// bigint minor units) and answers with a unified status, never the channel's own vocabulary.
// Connectors convert at their edge (yuan decimal strings, the channel's status codes) in a pure
// `transform.ts`; their `client.ts` does the I/O; `notify.ts` verifies what the channel sends us.

export const PAYMENT_METHODS = ["alipay", "wechat_pay", "unionpay", "card", "simulator"] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

export type ChannelFlow = "pay" | "query" | "refund" | "payout" | "notify";

/** Unified failure codes (payments-wide). `user_caused` comes from the table in failures.ts. */
export const FAILURE_CODES = [
  "declined",
  "insufficient_funds",
  "wrong_password",
  "canceled_by_payer",
  "expired",
  "invalid_account",
  "limit_exceeded",
  "identity_check_failed",
  "channel_error",
  "timeout",
  "not_found",
  "misconfigured",
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export interface Failure {
  readonly code: FailureCode;
  /** The channel's own code, kept for operators (e.g. Alipay `ACQ.BUYER_BALANCE_NOT_ENOUGH`). */
  readonly channelCode: string;
  readonly userCaused: boolean;
  readonly message?: string;
}

export interface NextAction {
  readonly type: "redirect" | "qr_code" | "none";
  readonly url?: string;
  readonly qr?: string;
  /** Signed parameters the payer's client hands to the channel's own SDK (WeChat JSAPI's `requestPayment`). */
  readonly params?: Readonly<Record<string, string>>;
}

/** The outcome of a pay-in attempt as the channel reports it. */
export type PayStatus = "pending" | "succeeded" | "failed" | "unknown";

export interface PayRequest {
  /** Our attempt id: sent to the channel as its merchant order number (out_trade_no). */
  readonly attemptId: string;
  readonly paymentId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly description: string;
  readonly method: PaymentMethod;
  /** Installment periods (Alipay Huabei `hb_fq_num`), when the payer chose a plan. */
  readonly installments?: number;
  readonly returnUrl?: string;
  /** Where the channel posts its asynchronous notification. */
  readonly notifyUrl: string;
  readonly expiresAtUs: bigint;
  /** Channel-specific options from the attempt request (e.g. the simulator's outcome). */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly payer?: { readonly clientIp?: string; readonly userAgent?: string };
}

export interface PayResult {
  readonly status: PayStatus;
  /** The channel's own transaction number (Alipay trade_no, WeChat transaction_id). */
  readonly channelRef?: string;
  readonly nextAction?: NextAction;
  readonly failure?: Failure;
}

export interface QueryRequest {
  readonly attemptId: string;
  readonly paymentId: string;
  readonly channelRef?: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly options?: Readonly<Record<string, unknown>>;
  /** When the attempt was made. */
  readonly createdAtUs: bigint;
  /** How many times this attempt has been queried before. */
  readonly queriesBefore: number;
}

export type RefundStatus = "pending" | "succeeded" | "failed" | "unknown";

export interface RefundRequest {
  readonly refundId: string;
  readonly attemptId: string;
  readonly channelRef?: string;
  readonly amount: bigint;
  /** The amount of the original payment (Alipay and WeChat Pay want it beside the refund). */
  readonly paymentAmount: bigint;
  readonly currency: string;
  readonly reason?: string;
  readonly notifyUrl: string;
}

export interface RefundResult {
  readonly status: RefundStatus;
  readonly channelRef?: string;
  readonly failure?: Failure;
}

export type PayoutStatus = "pending" | "in_transit" | "paid" | "failed" | "returned" | "unknown";

export interface PayoutRequest {
  readonly payoutId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly destination: { readonly bankAccountNumber: string; readonly accountName: string; readonly bankCode?: string };
  readonly options?: Readonly<Record<string, unknown>>;
  readonly notifyUrl: string;
}

export interface PayoutResult {
  readonly status: PayoutStatus;
  readonly channelRef?: string;
  readonly failure?: Failure;
}

/** A notification exactly as it arrived. */
export interface RawNotification {
  readonly contentType: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** The body as text (decoded as UTF-8). */
  readonly body: string;
  /**
   * The body's bytes exactly as received, when they came over HTTP: what the inbox keeps, and
   * what a connector whose channel sends another charset (GBK) would decode itself.
   */
  readonly bytes?: Uint8Array;
}

/** What a verified notification says happened. */
export type NotifiedChange =
  | { readonly target: "attempt"; readonly attemptId: string; readonly status: PayStatus; readonly channelRef?: string; readonly amount?: bigint; readonly failure?: Failure }
  | { readonly target: "refund"; readonly refundId: string; readonly status: RefundStatus; readonly channelRef?: string; readonly failure?: Failure }
  | { readonly target: "payout"; readonly payoutId: string; readonly status: PayoutStatus; readonly channelRef?: string; readonly failure?: Failure };

export type NotificationVerdict =
  | { readonly kind: "verified"; readonly dedupeKey: string; readonly change: NotifiedChange }
  /** Authentic but about nothing Tally acts on (e.g. an Alipay WAIT_BUYER_PAY notice). */
  | { readonly kind: "ignored"; readonly dedupeKey: string; readonly reason: string }
  | { readonly kind: "rejected"; readonly reason: string };

/** The answer the channel expects, in its own protocol. */
export interface NotifyAck {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

export interface Channel {
  readonly id: string;
  readonly methods: readonly PaymentMethod[];
  readonly flows: ReadonlySet<ChannelFlow>;
  pay?(request: PayRequest): Promise<PayResult>;
  query?(request: QueryRequest): Promise<PayResult>;
  refund?(request: RefundRequest): Promise<RefundResult>;
  payout?(request: PayoutRequest): Promise<PayoutResult>;
  queryPayout?(request: { readonly payoutId: string; readonly channelRef?: string; readonly options?: Readonly<Record<string, unknown>>; readonly queriesBefore: number }): Promise<PayoutResult>;
  verifyNotification?(notification: RawNotification): Promise<NotificationVerdict>;
  /** The answer to a notification: `accepted` is false when it was rejected or could not be applied. */
  acknowledge?(accepted: boolean): NotifyAck;
}

/** Network errors that mean the request never left this machine (so no money can have moved). */
const NOT_SENT_CODES: ReadonlySet<string> = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]);

/**
 * The code of a "request never sent" network error in `error` or its causes (fetch wraps the
 * socket's error), or null: a connector turns it into a ChannelUnavailableError.
 */
export function notSentCode(error: unknown): string | null {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return NOT_SENT_CODES.has(code) ? code : null;
    e = e.cause;
  }
  return null;
}

/**
 * The request never reached the channel (connection refused, circuit open, DNS): no money can
 * have moved, so routing may fail over to another channel.
 */
export class ChannelUnavailableError extends Error {
  override name = "ChannelUnavailableError";
}

/**
 * The channel did not answer in time, or answered something we cannot read: money may have
 * moved. Never fail over; the attempt becomes `unknown` and is settled by querying the channel.
 */
export class ChannelOutcomeUnknownError extends Error {
  override name = "ChannelOutcomeUnknownError";
}
