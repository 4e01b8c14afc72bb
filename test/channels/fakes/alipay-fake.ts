// A fake Alipay gateway on 127.0.0.1 that speaks the real OpenAPI v1 protocol: it verifies the
// RSA2 signature of every request with the application's public key (written here from Alipay's
// documentation, not borrowed from the SDK, so a signing mistake on either side shows), answers
// `{"<method>_response": {...}, "sign": ...}` signed with its own key, keeps trades, and makes
// signed notifications — and forged ones — on demand.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createSign, createVerify, generateKeyPairSync, type KeyObject } from "node:crypto";
import type { AddressInfo } from "node:net";

export interface RsaKeys {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

export function rsaKeys(): RsaKeys {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** Alipay's content to sign: sorted `name=value` joined by `&`, without `sign` (and `sign_type` for notifications) and empty values. */
export function alipaySignContent(params: Readonly<Record<string, string>>, exclude: readonly string[]): string {
  return Object.keys(params)
    .filter((k) => !exclude.includes(k) && params[k] !== "")
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join("&");
}

export function rsa2Sign(content: string, privateKeyPem: string | KeyObject): string {
  return createSign("RSA-SHA256").update(content, "utf8").sign(privateKeyPem, "base64");
}

export type AlipayFault =
  | "system_error" // ACQ.SYSTEM_ERROR (code 20000)
  | "slow" // answers after the client has given up
  | "bad_response_signature" // signed with a key that is not Alipay's
  | "balance_not_enough" // refund: ACQ.SELLER_BALANCE_NOT_ENOUGH
  | "http_502"; // a proxy's error page

export interface FakeTrade {
  outTradeNo: string;
  tradeNo: string;
  totalAmount: string;
  status: "WAIT_BUYER_PAY" | "TRADE_SUCCESS" | "TRADE_CLOSED" | "TRADE_FINISHED";
  productCode: string;
  bizContent: Record<string, unknown>;
  refunds: Map<string, string>;
}

export interface RecordedRequest {
  readonly httpMethod: string;
  readonly method: string;
  readonly params: Record<string, string>;
  readonly bizContent: Record<string, unknown>;
}

export class AlipayFake {
  readonly alipayKeys = rsaKeys();
  readonly trades = new Map<string, FakeTrade>();
  readonly requests: RecordedRequest[] = [];
  /** Faults applied to the next gateway calls, one each, in order. */
  readonly faults: AlipayFault[] = [];
  slowMs = 1500;
  private server: Server | null = null;
  private tradeSeq = 0;
  private notifySeq = 0;
  private readonly impostorKeys = rsaKeys();

  constructor(readonly appId: string, private readonly appPublicKeyPem: string) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return `${this.baseUrl()}/gateway.do`;
  }

  baseUrl(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    if (this.server === null) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** The payer pays in the cashier. */
  pay(outTradeNo: string): FakeTrade {
    const trade = this.mustTrade(outTradeNo);
    trade.status = "TRADE_SUCCESS";
    return trade;
  }

  /** Alipay closes the unpaid trade (time_expire passed). */
  closeTrade(outTradeNo: string): FakeTrade {
    const trade = this.mustTrade(outTradeNo);
    trade.status = "TRADE_CLOSED";
    return trade;
  }

  /** The parameters of a trade notification, unsigned; `overrides` change or add fields. */
  notificationParams(outTradeNo: string, overrides: Record<string, string> = {}): Record<string, string> {
    const trade = this.mustTrade(outTradeNo);
    return {
      notify_time: "2024-03-24 16:42:00",
      notify_type: "trade_status_sync",
      notify_id: `ntf${++this.notifySeq}`,
      charset: "utf-8",
      version: "1.0",
      sign_type: "RSA2",
      app_id: this.appId,
      trade_no: trade.tradeNo,
      out_trade_no: trade.outTradeNo,
      trade_status: trade.status,
      total_amount: trade.totalAmount,
      receipt_amount: trade.totalAmount,
      buyer_pay_amount: trade.totalAmount,
      subject: String(trade.bizContent.subject ?? ""),
      gmt_payment: "2024-03-24 16:41:59",
      ...overrides,
    };
  }

  /** A form body signed as Alipay signs notifications (without sign and sign_type), or with another key. */
  signNotification(params: Record<string, string>, signer: "alipay" | "impostor" = "alipay"): string {
    const key = signer === "alipay" ? this.alipayKeys.privateKeyPem : this.impostorKeys.privateKeyPem;
    const sign = rsa2Sign(alipaySignContent(params, ["sign", "sign_type"]), key);
    return new URLSearchParams({ ...params, sign }).toString();
  }

  notification(outTradeNo: string, overrides: Record<string, string> = {}): string {
    return this.signNotification(this.notificationParams(outTradeNo, overrides));
  }

  private mustTrade(outTradeNo: string): FakeTrade {
    const trade = this.trades.get(outTradeNo);
    if (trade === undefined) throw new Error(`the fake has no trade ${outTradeNo}: the payer never opened the cashier`);
    return trade;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    if (url.pathname !== "/gateway.do") return this.send(res, 404, "text/plain", "not found");

    const params: Record<string, string> = {};
    for (const [k, v] of url.searchParams) params[k] = v;
    if (req.method === "POST" && body !== "") for (const [k, v] of new URLSearchParams(body)) params[k] = v;
    const method = params.method ?? "";

    // Requests are signed over every parameter but sign (sign_type included).
    const signOk = params.sign !== undefined && createVerify("RSA-SHA256").update(alipaySignContent(params, ["sign"]), "utf8").verify(this.appPublicKeyPem, params.sign, "base64");
    let bizContent: Record<string, unknown> = {};
    try {
      bizContent = JSON.parse(params.biz_content ?? "{}") as Record<string, unknown>;
    } catch {
      bizContent = {};
    }
    this.requests.push({ httpMethod: req.method ?? "", method, params, bizContent });

    const responseKey = `${method.replaceAll(".", "_")}_response`;
    if (!signOk) return this.answer(res, responseKey, { code: "40002", msg: "Invalid Arguments", sub_code: "isv.invalid-signature", sub_msg: "验签出错" });
    if (params.app_id !== this.appId) return this.answer(res, responseKey, { code: "40002", msg: "Invalid Arguments", sub_code: "isv.invalid-app-id", sub_msg: "无效的AppID参数" });
    if (params.sign_type !== "RSA2" || params.charset !== "utf-8" || params.version !== "1.0" || !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(params.timestamp ?? "")) {
      return this.answer(res, responseKey, { code: "40001", msg: "Missing Required Arguments", sub_code: "isv.missing-signature-type" });
    }

    // The payer's browser following page/wap pay's redirect: the trade now exists at Alipay.
    if (req.method === "GET" && (method === "alipay.trade.page.pay" || method === "alipay.trade.wap.pay")) {
      const outTradeNo = String(bizContent.out_trade_no ?? "");
      const totalAmount = String(bizContent.total_amount ?? "");
      if (!this.trades.has(outTradeNo)) {
        this.trades.set(outTradeNo, {
          outTradeNo,
          tradeNo: `2024032422001${String(++this.tradeSeq).padStart(8, "0")}`,
          totalAmount,
          status: "WAIT_BUYER_PAY",
          productCode: String(bizContent.product_code ?? ""),
          bizContent,
          refunds: new Map(),
        });
      }
      return this.send(res, 200, "text/html; charset=utf-8", `<html><body>支付宝收银台 ${outTradeNo} ¥${totalAmount}</body></html>`);
    }
    if (req.method !== "POST") return this.send(res, 405, "text/plain", "method not allowed");

    const fault = this.faults.shift();
    if (fault === "slow") await new Promise((resolve) => setTimeout(resolve, this.slowMs));
    if (fault === "http_502") return this.send(res, 502, "text/html", "<html>Bad Gateway</html>");
    if (fault === "system_error") return this.answer(res, responseKey, { code: "20000", msg: "Service Currently Unavailable", sub_code: "ACQ.SYSTEM_ERROR", sub_msg: "系统错误" });
    const signer = fault === "bad_response_signature" ? "impostor" : "alipay";

    switch (method) {
      case "alipay.trade.query": {
        const trade = this.trades.get(String(bizContent.out_trade_no ?? ""));
        if (trade === undefined) return this.answer(res, responseKey, { code: "40004", msg: "Business Failed", sub_code: "ACQ.TRADE_NOT_EXIST", sub_msg: "交易不存在" }, signer);
        return this.answer(
          res,
          responseKey,
          { code: "10000", msg: "Success", trade_no: trade.tradeNo, out_trade_no: trade.outTradeNo, trade_status: trade.status, total_amount: trade.totalAmount, buyer_logon_id: "159****5620" },
          signer,
        );
      }
      case "alipay.trade.refund": {
        const trade = this.trades.get(String(bizContent.out_trade_no ?? ""));
        if (trade === undefined) return this.answer(res, responseKey, { code: "40004", msg: "Business Failed", sub_code: "ACQ.TRADE_NOT_EXIST", sub_msg: "交易不存在" }, signer);
        if (fault === "balance_not_enough") return this.answer(res, responseKey, { code: "40004", msg: "Business Failed", sub_code: "ACQ.SELLER_BALANCE_NOT_ENOUGH", sub_msg: "卖家余额不足" }, signer);
        if (trade.status !== "TRADE_SUCCESS") return this.answer(res, responseKey, { code: "40004", msg: "Business Failed", sub_code: "ACQ.TRADE_STATUS_ERROR", sub_msg: "交易状态不合法" }, signer);
        const requestNo = String(bizContent.out_request_no ?? "");
        // Alipay answers a repeated out_request_no with the first refund, moving no money again.
        const repeated = trade.refunds.has(requestNo);
        if (!repeated) trade.refunds.set(requestNo, String(bizContent.refund_amount ?? ""));
        let refundedMinor = 0n;
        for (const amount of trade.refunds.values()) refundedMinor += BigInt(amount.replace(".", ""));
        const refundFee = `${refundedMinor / 100n}.${String(refundedMinor % 100n).padStart(2, "0")}`;
        return this.answer(res, responseKey, { code: "10000", msg: "Success", trade_no: trade.tradeNo, out_trade_no: trade.outTradeNo, fund_change: "Y", refund_fee: refundFee }, signer);
      }
      default:
        return this.answer(res, responseKey, { code: "40004", msg: "Business Failed", sub_code: "isv.invalid-method" }, signer);
    }
  }

  /** `{"<key>": <inner>, "sign": <RSA2 over the inner JSON text exactly as sent>}`. */
  private answer(res: ServerResponse, responseKey: string, inner: Record<string, unknown>, signer: "alipay" | "impostor" = "alipay"): void {
    const innerText = JSON.stringify(inner);
    const key = signer === "alipay" ? this.alipayKeys.privateKeyPem : this.impostorKeys.privateKeyPem;
    this.send(res, 200, "application/json; charset=utf-8", `{"${responseKey}":${innerText},"sign":"${rsa2Sign(innerText, key)}"}`);
  }

  private send(res: ServerResponse, status: number, contentType: string, body: string): void {
    if (res.destroyed) return;
    res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
    res.end(body);
  }
}
