// The Alipay connector's I/O, on the official `alipay-sdk` (OpenAPI v1 gateway, RSA2): page and wap
// pay build a signed redirect to Alipay's cashier (no call is made: the trade is created when the
// payer opens it), query and refund are signed gateway calls whose answers' signatures the SDK
// verifies. Errors are sorted into the port's two kinds: never sent, or outcome unknown.
import { createPrivateKey } from "node:crypto";
import { AlipaySdk } from "alipay-sdk";
import type { Channel, ChannelFlow, NotificationVerdict, NotifyAck, PayRequest, PayResult, QueryRequest, RawNotification, RefundRequest, RefundResult } from "../channel.ts";
import { ChannelOutcomeUnknownError, ChannelUnavailableError, notSentCode } from "../channel.ts";
import { failure } from "../failures.ts";
import { acknowledgeAlipay, verifyAlipayNotification } from "./notify.ts";
import {
  ALIPAY_CURRENCY,
  ALIPAY_PRODUCTS,
  chooseProduct,
  huabeiSellerPercent,
  payBizContent,
  payRequestProblem,
  queryResult,
  refundBizContent,
  refundResult,
  type AlipayAnswer,
  type HuabeiSellerPercent,
} from "./transform.ts";

export interface AlipayConfig {
  readonly appId: string;
  /** The application's private key, PEM (PKCS#1 or PKCS#8) or Alipay's bare base64. */
  readonly privateKey: string;
  /** Alipay's public key for this application (公钥模式), PEM or bare base64. */
  readonly alipayPublicKey: string;
  /** Default https://openapi.alipay.com/gateway.do; the sandbox or a test's fake server otherwise. */
  readonly gatewayUrl?: string;
  /** Overrides the request's notify URL (the public address Alipay can reach, behind a proxy). */
  readonly notifyUrl?: string;
  /** Per gateway call; a slower answer is an unknown outcome. Default 10 s. */
  readonly timeoutMs?: number;
  /** How long a payer has to pay an attempt (time_expire, capped by the payment's expiry). Default 30 min. */
  readonly payWindowMs?: number;
  /** Who bears Huabei's installment fee unless the attempt says: 0 = the payer, 100 = the seller. Default 0. */
  readonly huabeiSellerPercent?: HuabeiSellerPercent;
}

export const ALIPAY_GATEWAY_URL = "https://openapi.alipay.com/gateway.do";
export const ALIPAY_TIMEOUT_MS_DEFAULT = 10_000;
export const ALIPAY_PAY_WINDOW_MS_DEFAULT = 30 * 60_000;

const FLOWS: ReadonlySet<ChannelFlow> = new Set(["pay", "query", "refund", "notify"]);
/** Connection errors that happen before a byte of the request left: nothing can have moved. */

function keyType(privateKey: string): "PKCS1" | "PKCS8" {
  if (privateKey.includes("BEGIN RSA PRIVATE KEY")) return "PKCS1";
  if (privateKey.includes("BEGIN PRIVATE KEY")) return "PKCS8";
  // Alipay's key tool hands out bare base64; which encoding it is shows only by parsing it.
  try {
    createPrivateKey({ key: Buffer.from(privateKey.replace(/\s+/g, ""), "base64"), format: "der", type: "pkcs8" });
    return "PKCS8";
  } catch {
    return "PKCS1";
  }
}


export class AlipayChannel implements Channel {
  readonly id = "alipay";
  readonly methods = ["alipay"] as const;
  readonly flows = FLOWS;
  private readonly sdk: AlipaySdk;
  private readonly payWindowMs: number;

  constructor(private readonly config: AlipayConfig, private readonly nowMs: () => number = Date.now) {
    if (!config.appId) throw new TypeError("Alipay needs an app id");
    this.sdk = new AlipaySdk({
      appId: config.appId,
      privateKey: config.privateKey,
      keyType: keyType(config.privateKey),
      alipayPublicKey: config.alipayPublicKey,
      gateway: config.gatewayUrl ?? ALIPAY_GATEWAY_URL,
      timeout: config.timeoutMs ?? ALIPAY_TIMEOUT_MS_DEFAULT,
      signType: "RSA2",
      // Alipay's own snake_case names, as its documentation and our transform use them.
      camelcase: false,
    });
    this.payWindowMs = config.payWindowMs ?? ALIPAY_PAY_WINDOW_MS_DEFAULT;
  }

  async pay(request: PayRequest): Promise<PayResult> {
    const problem = payRequestProblem(request);
    if (problem !== null) return { status: "failed", failure: problem };
    const sellerPercent = huabeiSellerPercent(request.options, this.config.huabeiSellerPercent ?? 0);
    if (sellerPercent === null) return { status: "failed", failure: failure("misconfigured", "TALLY_HB_FQ_SELLER_PERCENT", "hb_fq_seller_percent must be 0 or 100") };
    const product = chooseProduct(request);
    const expiresAtMs = Math.min(Number(request.expiresAtUs / 1000n), this.nowMs() + this.payWindowMs);
    const bizContent = payBizContent(request, { product, sellerPercent, expiresAtMs });
    // A GET link to the gateway, signed; the payer's browser carries it to Alipay's cashier.
    const url = this.sdk.pageExecute(ALIPAY_PRODUCTS[product].method, "GET", {
      bizContent,
      notifyUrl: this.config.notifyUrl ?? request.notifyUrl,
      ...(request.returnUrl !== undefined ? { returnUrl: request.returnUrl } : {}),
    });
    return { status: "pending", nextAction: { type: "redirect", url } };
  }

  async query(request: QueryRequest): Promise<PayResult> {
    if (request.currency !== ALIPAY_CURRENCY) return { status: "failed", failure: failure("misconfigured", "TALLY_CURRENCY_NOT_SUPPORTED") };
    const answer = await this.exec("alipay.trade.query", {
      out_trade_no: request.attemptId,
      ...(request.channelRef !== undefined ? { trade_no: request.channelRef } : {}),
    });
    return queryResult(answer, { amount: request.amount, createdAtMs: Number(request.createdAtUs / 1000n), nowMs: this.nowMs(), payWindowMs: this.payWindowMs });
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    if (request.currency !== ALIPAY_CURRENCY) return { status: "failed", failure: failure("misconfigured", "TALLY_CURRENCY_NOT_SUPPORTED") };
    let answer: AlipayAnswer;
    try {
      answer = await this.exec("alipay.trade.refund", refundBizContent(request));
    } catch (error) {
      // Sent but unanswered: the same out_request_no later settles it without refunding twice.
      if (error instanceof ChannelOutcomeUnknownError) return { status: "unknown" };
      throw error;
    }
    return refundResult(answer);
  }

  async verifyNotification(notification: RawNotification): Promise<NotificationVerdict> {
    return verifyAlipayNotification(this.sdk, this.config.appId, notification);
  }

  acknowledge(accepted: boolean): NotifyAck {
    return acknowledgeAlipay(accepted);
  }

  /** One signed gateway call; the answer's RSA2 signature is verified before it is read. */
  private async exec(method: string, bizContent: Record<string, unknown>): Promise<AlipayAnswer> {
    try {
      const answer: unknown = await this.sdk.exec(method, { bizContent }, { validateSign: true });
      if (typeof answer !== "object" || answer === null) throw new ChannelOutcomeUnknownError(`Alipay answered ${method} with no object`);
      return answer as AlipayAnswer;
    } catch (error) {
      if (error instanceof ChannelOutcomeUnknownError) throw error;
      const code = notSentCode(error);
      if (code !== null) throw new ChannelUnavailableError(`Alipay ${method} could not be sent: ${code}`, { cause: error });
      // A timeout, a reset, an unsigned or badly signed answer, a non-200: money may have moved.
      throw new ChannelOutcomeUnknownError(`Alipay ${method}: ${error instanceof Error ? error.message.slice(0, 300) : String(error)}`, { cause: error });
    }
  }
}
