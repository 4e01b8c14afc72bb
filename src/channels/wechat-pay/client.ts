// The WeChat Pay (API v3) connector's I/O: a small fetch client that signs every request, checks
// the platform signature of every answer before reading it, and sorts failures into the port's
// two kinds (never sent → ChannelUnavailableError; timeout or unreadable answer → outcome unknown).
import { createPrivateKey, type KeyObject } from "node:crypto";
import type { Channel, ChannelFlow, NotificationVerdict, NotifyAck, PayRequest, PayResult, QueryRequest, RawNotification, RefundRequest, RefundResult } from "../channel.ts";
import { ChannelOutcomeUnknownError, ChannelUnavailableError, notSentCode } from "../channel.ts";
import { failure } from "../failures.ts";
import { APIV3_KEY_BYTES, authorization, nonce, platformKeys, rsaSign, signatureProblem, type PlatformKeys } from "./crypto.ts";
import { acknowledgeWechat, verifyWechatNotification } from "./notify.ts";
import { WECHAT_CURRENCY, chooseTradeType, jsapiSignMessage, payBody, payRequestProblem, payResult, queryResult, refundBody, refundResult, type WechatAnswer } from "./transform.ts";

export interface WechatPayConfig {
  /** 商户号. */
  readonly mchid: string;
  /** The AppID bound to the merchant (公众号/小程序/移动应用). */
  readonly appid: string;
  /** The merchant API certificate's private key (apiclient_key.pem), PEM. */
  readonly merchantPrivateKey: string;
  /** The merchant API certificate's serial number, sent as serial_no. */
  readonly merchantSerialNo: string;
  /** The APIv3 key: 32 bytes, decrypts notification resources. */
  readonly apiV3Key: string;
  /** WeChat Pay's public keys by serial (platform certificate serial or PUB_KEY_ID_…), PEM; several during a rotation. */
  readonly platformPublicKeys: Readonly<Record<string, string>>;
  /** Default https://api.mch.weixin.qq.com; a test's fake server otherwise. */
  readonly baseUrl?: string;
  /** Overrides the request's notify URL (the public HTTPS address WeChat can reach). */
  readonly notifyUrl?: string;
  /** Per call, including reading the answer. Default 10 s. */
  readonly timeoutMs?: number;
  /** How long a payer has to pay an attempt (time_expire, capped by the payment's expiry). Default 30 min. */
  readonly payWindowMs?: number;
  /** A page inside WeChat that calls `requestPayment`: JSAPI then redirects there with the signed parameters in the query. */
  readonly jsapiPageUrl?: string;
}

export const WECHAT_BASE_URL = "https://api.mch.weixin.qq.com";
export const WECHAT_TIMEOUT_MS_DEFAULT = 10_000;
export const WECHAT_PAY_WINDOW_MS_DEFAULT = 30 * 60_000;
/** Answers are small JSON objects; a larger one is not WeChat's. */
const ANSWER_BYTES_MAX = 256 * 1024;

const FLOWS: ReadonlySet<ChannelFlow> = new Set(["pay", "query", "refund", "notify"]);
/** Connection errors that happen before a byte of the request left: nothing can have moved. */


export class WechatPayChannel implements Channel {
  readonly id = "wechat_pay";
  readonly methods = ["wechat_pay"] as const;
  readonly flows = FLOWS;
  private readonly privateKey: KeyObject;
  private readonly platformKeys: PlatformKeys;
  private readonly apiV3Key: Buffer;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly payWindowMs: number;

  constructor(private readonly config: WechatPayConfig, private readonly nowMs: () => number = Date.now) {
    if (!config.mchid || !config.appid || !config.merchantSerialNo) throw new TypeError("WeChat Pay needs mchid, appid and the merchant serial number");
    this.apiV3Key = Buffer.from(config.apiV3Key, "utf8");
    if (this.apiV3Key.length !== APIV3_KEY_BYTES) throw new TypeError(`the WeChat Pay APIv3 key must be ${APIV3_KEY_BYTES} bytes`);
    this.privateKey = createPrivateKey(config.merchantPrivateKey);
    this.platformKeys = platformKeys(config.platformPublicKeys);
    if (this.platformKeys.size === 0) throw new TypeError("WeChat Pay needs at least one platform public key");
    this.baseUrl = (config.baseUrl ?? WECHAT_BASE_URL).replace(/\/+$/, "");
    this.timeoutMs = config.timeoutMs ?? WECHAT_TIMEOUT_MS_DEFAULT;
    this.payWindowMs = config.payWindowMs ?? WECHAT_PAY_WINDOW_MS_DEFAULT;
  }

  async pay(request: PayRequest): Promise<PayResult> {
    const problem = payRequestProblem(request);
    if (problem !== null) return { status: "failed", failure: problem };
    const tradeType = chooseTradeType(request.options);
    const body = payBody(request, {
      appid: this.config.appid,
      mchid: this.config.mchid,
      notifyUrl: this.config.notifyUrl ?? request.notifyUrl,
      expiresAtMs: Math.min(Number(request.expiresAtUs / 1000n), this.nowMs() + this.payWindowMs),
    });
    const answer = await this.call("POST", `/v3/pay/transactions/${tradeType}`, body);
    const result = payResult(answer, tradeType);
    if (tradeType !== "jsapi" || result.status !== "pending") return result;
    const params = this.jsapiParams(String(answer.data.prepay_id));
    if (this.config.jsapiPageUrl === undefined) return { status: "pending", nextAction: { type: "none", params } };
    const url = new URL(this.config.jsapiPageUrl);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    return { status: "pending", nextAction: { type: "redirect", url: url.toString(), params } };
  }

  async query(request: QueryRequest): Promise<PayResult> {
    if (request.currency !== WECHAT_CURRENCY) return { status: "failed", failure: failure("misconfigured", "TALLY_CURRENCY_NOT_SUPPORTED") };
    const path = `/v3/pay/transactions/out-trade-no/${encodeURIComponent(request.attemptId)}?mchid=${encodeURIComponent(this.config.mchid)}`;
    const answer = await this.call("GET", path);
    return queryResult(answer, { amount: request.amount, createdAtMs: Number(request.createdAtUs / 1000n), nowMs: this.nowMs(), payWindowMs: this.payWindowMs });
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    if (request.currency !== WECHAT_CURRENCY) return { status: "failed", failure: failure("misconfigured", "TALLY_CURRENCY_NOT_SUPPORTED") };
    let answer: WechatAnswer;
    try {
      answer = await this.call("POST", "/v3/refund/domestic/refunds", refundBody(request, this.config.notifyUrl ?? request.notifyUrl));
    } catch (error) {
      // Sent but unanswered: the same out_refund_no later settles it without refunding twice.
      if (error instanceof ChannelOutcomeUnknownError) return { status: "unknown" };
      throw error;
    }
    return refundResult(answer);
  }

  async verifyNotification(notification: RawNotification): Promise<NotificationVerdict> {
    return verifyWechatNotification({ mchid: this.config.mchid, appid: this.config.appid, apiV3Key: this.apiV3Key, platformKeys: this.platformKeys }, notification, this.nowMs());
  }

  acknowledge(accepted: boolean): NotifyAck {
    return acknowledgeWechat(accepted);
  }

  /** What WeChat's JSAPI `requestPayment` takes, signed with the merchant key. */
  private jsapiParams(prepayId: string): Record<string, string> {
    const params = { appId: this.config.appid, timeStamp: String(Math.floor(this.nowMs() / 1000)), nonceStr: nonce(), package: `prepay_id=${prepayId}` };
    return { ...params, signType: "RSA", paySign: rsaSign(jsapiSignMessage(params), this.privateKey) };
  }

  /** One signed call; the answer is returned only once its platform signature verifies. */
  private async call(method: "GET" | "POST", pathWithQuery: string, body?: Record<string, unknown>): Promise<WechatAnswer> {
    const bodyText = body === undefined ? "" : JSON.stringify(body);
    const headers: Record<string, string> = {
      Authorization: authorization({
        mchid: this.config.mchid,
        serialNo: this.config.merchantSerialNo,
        privateKey: this.privateKey,
        method,
        pathWithQuery,
        body: bodyText,
        timestampS: Math.floor(this.nowMs() / 1000),
        nonce: nonce(),
      }),
      Accept: "application/json",
      "User-Agent": "tally-wechat-pay/1",
      ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
    };
    const signal = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${pathWithQuery}`, { method, headers, signal, ...(body !== undefined ? { body: bodyText } : {}) });
    } catch (error) {
      const code = notSentCode(error);
      if (code !== null) throw new ChannelUnavailableError(`WeChat Pay ${method} ${pathWithQuery} could not be sent: ${code}`, { cause: error });
      throw new ChannelOutcomeUnknownError(`WeChat Pay ${method} ${pathWithQuery}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new ChannelOutcomeUnknownError(`WeChat Pay ${method} ${pathWithQuery}: the answer was cut off`, { cause: error });
    }
    if (Buffer.byteLength(text) > ANSWER_BYTES_MAX) throw new ChannelOutcomeUnknownError(`WeChat Pay ${method} ${pathWithQuery}: the answer is too large`);
    // Every answer, errors included, must be WeChat's: an unsigned one could be anyone's.
    const problem = signatureProblem(response.headers, text, this.platformKeys, this.nowMs());
    if (problem !== null) throw new ChannelOutcomeUnknownError(`WeChat Pay ${method} ${pathWithQuery} (HTTP ${response.status}): ${problem}`);
    if (text === "") return { status: response.status, data: {} };
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw new ChannelOutcomeUnknownError(`WeChat Pay ${method} ${pathWithQuery}: the answer is not JSON`, { cause: error });
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) throw new ChannelOutcomeUnknownError(`WeChat Pay ${method} ${pathWithQuery}: the answer is not a JSON object`);
    return { status: response.status, data: data as Record<string, unknown> };
  }
}
