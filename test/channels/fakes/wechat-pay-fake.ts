// A fake WeChat Pay API v3 on 127.0.0.1: it checks each request's WECHATPAY2-SHA256-RSA2048
// Authorization against the merchant's public key (written here from WeChat's documentation, not
// borrowed from the connector, so a mistake on either side shows), answers signed with its own
// platform key, keeps orders and refunds, and makes signed, AES-256-GCM encrypted notifications —
// and forged ones — on demand.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createCipheriv, createSign, createVerify, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { rsaKeys } from "./alipay-fake.ts";

export type WechatFault =
  | "system_error" // 500 SYSTEM_ERROR
  | "slow" // answers after the client has given up
  | "bad_response_signature" // signed with a key that is not the platform's
  | "unsigned_response" // no Wechatpay-* headers
  | "stale_response" // signed 10 minutes ago
  | "balance_not_enough"; // refund: 403 NOT_ENOUGH

export interface FakeOrder {
  outTradeNo: string;
  transactionId: string;
  tradeType: "NATIVE" | "JSAPI";
  state: "NOTPAY" | "SUCCESS" | "CLOSED" | "PAYERROR" | "USERPAYING" | "REVOKED" | "REFUND";
  stateDesc: string;
  total: number;
  body: Record<string, unknown>;
  refunds: Map<string, Record<string, unknown>>;
}

export interface RecordedCall {
  readonly method: string;
  readonly url: string;
  readonly body: Record<string, unknown> | null;
}

export interface SignedMessage {
  readonly headers: Record<string, string>;
  readonly body: string;
}

export class WechatPayFake {
  readonly platformKeys = rsaKeys();
  readonly platformSerial = randomBytes(20).toString("hex").toUpperCase();
  readonly orders = new Map<string, FakeOrder>();
  readonly calls: RecordedCall[] = [];
  readonly faults: WechatFault[] = [];
  /** What a new refund's status is. */
  refundStatus: "SUCCESS" | "PROCESSING" = "SUCCESS";
  slowMs = 1500;
  private readonly impostorKeys = rsaKeys();
  private server: Server | null = null;
  private seq = 0;

  constructor(
    readonly mchid: string,
    readonly appid: string,
    private readonly merchantPublicKeyPem: string,
    private readonly merchantSerialNo: string,
    private readonly apiV3Key: string,
  ) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    if (this.server === null) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  mustOrder(outTradeNo: string): FakeOrder {
    const order = this.orders.get(outTradeNo);
    if (order === undefined) throw new Error(`the fake has no order ${outTradeNo}`);
    return order;
  }

  /** The payer pays (scans the code, confirms in WeChat). */
  pay(outTradeNo: string): FakeOrder {
    const order = this.mustOrder(outTradeNo);
    order.state = "SUCCESS";
    order.stateDesc = "支付成功";
    return order;
  }

  setState(outTradeNo: string, state: FakeOrder["state"], stateDesc = ""): FakeOrder {
    const order = this.mustOrder(outTradeNo);
    order.state = state;
    order.stateDesc = stateDesc;
    return order;
  }

  /** The decrypted resource of a TRANSACTION.SUCCESS notification. */
  transactionResource(outTradeNo: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const order = this.mustOrder(outTradeNo);
    return {
      mchid: this.mchid,
      appid: this.appid,
      out_trade_no: order.outTradeNo,
      transaction_id: order.transactionId,
      trade_type: order.tradeType,
      trade_state: order.state,
      trade_state_desc: order.stateDesc,
      bank_type: "OTHERS",
      success_time: "2024-03-24T16:41:59+08:00",
      payer: { openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
      amount: { total: order.total, payer_total: order.total, currency: "CNY", payer_currency: "CNY" },
      ...overrides,
    };
  }

  refundResource(outTradeNo: string, outRefundNo: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const order = this.mustOrder(outTradeNo);
    const refund = order.refunds.get(outRefundNo);
    return {
      mchid: this.mchid,
      out_trade_no: order.outTradeNo,
      transaction_id: order.transactionId,
      out_refund_no: outRefundNo,
      refund_id: refund?.refund_id ?? "50000000382019052709732678859",
      refund_status: "SUCCESS",
      success_time: "2024-03-24T17:00:00+08:00",
      user_received_account: "招商银行信用卡0403",
      amount: { total: order.total, refund: (refund?.amount as Record<string, number> | undefined)?.refund ?? 1, payer_total: order.total, payer_refund: 1 },
      ...overrides,
    };
  }

  /** A notification as WeChat sends it: the resource encrypted with the APIv3 key, the body signed with the platform key. */
  notification(
    eventType: string,
    resource: Record<string, unknown>,
    options: { timestampS?: number; signer?: "platform" | "impostor"; serial?: string; apiV3Key?: string; associatedData?: string } = {},
  ): SignedMessage {
    const associatedData = options.associatedData ?? (eventType.startsWith("REFUND.") ? "refund" : "transaction");
    const nonce = randomBytes(6).toString("hex");
    const cipher = createCipheriv("aes-256-gcm", Buffer.from(options.apiV3Key ?? this.apiV3Key, "utf8"), Buffer.from(nonce, "utf8"));
    cipher.setAAD(Buffer.from(associatedData, "utf8"));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(resource), "utf8"), cipher.final(), cipher.getAuthTag()]).toString("base64");
    const body = JSON.stringify({
      id: `EV-${++this.seq}-${randomBytes(4).toString("hex")}`,
      create_time: "2024-03-24T16:42:00+08:00",
      resource_type: "encrypt-resource",
      event_type: eventType,
      summary: "支付成功",
      resource: { original_type: eventType.startsWith("REFUND.") ? "refund" : "transaction", algorithm: "AEAD_AES_256_GCM", ciphertext, associated_data: associatedData, nonce },
    });
    return { headers: { "content-type": "application/json", ...this.signatureHeaders(body, options) }, body };
  }

  /** Wechatpay-* headers over `timestamp\nnonce\nbody\n`. */
  signatureHeaders(body: string, options: { timestampS?: number; signer?: "platform" | "impostor"; serial?: string } = {}): Record<string, string> {
    const timestamp = String(options.timestampS ?? Math.floor(Date.now() / 1000));
    const nonce = randomBytes(16).toString("hex");
    const key = options.signer === "impostor" ? this.impostorKeys.privateKeyPem : this.platformKeys.privateKeyPem;
    const signature = createSign("RSA-SHA256").update(`${timestamp}\n${nonce}\n${body}\n`, "utf8").sign(key, "base64");
    return { "wechatpay-timestamp": timestamp, "wechatpay-nonce": nonce, "wechatpay-signature": signature, "wechatpay-serial": options.serial ?? this.platformSerial };
  }

  /** Why the request's Authorization is not the merchant's, or null. */
  private authProblem(req: IncomingMessage, body: string): string | null {
    const auth = req.headers.authorization ?? "";
    const match = /^WECHATPAY2-SHA256-RSA2048 (.+)$/.exec(auth);
    if (match === null) return "no WECHATPAY2-SHA256-RSA2048 Authorization";
    const fields: Record<string, string> = {};
    for (const [, name, value] of match[1]!.matchAll(/(\w+)="([^"]*)"/g)) fields[name!] = value!;
    if (fields.mchid !== this.mchid) return "mchid does not match";
    if (fields.serial_no !== this.merchantSerialNo) return "serial_no is not the merchant certificate's";
    if (!fields.nonce_str || !fields.signature || !/^\d+$/.test(fields.timestamp ?? "")) return "fields missing";
    if (Math.abs(Date.now() - Number(fields.timestamp) * 1000) > 5 * 60_000) return "timestamp too far from now";
    const message = `${req.method}\n${req.url}\n${fields.timestamp}\n${fields.nonce_str}\n${body}\n`;
    const ok = createVerify("RSA-SHA256").update(message, "utf8").verify(this.merchantPublicKeyPem, fields.signature, "base64");
    return ok ? null : "signature does not verify";
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const bodyText = Buffer.concat(chunks).toString("utf8");
    let body: Record<string, unknown> | null = null;
    try {
      body = bodyText === "" ? null : (JSON.parse(bodyText) as Record<string, unknown>);
    } catch {
      return this.answer(res, 400, { code: "PARAM_ERROR", message: "JSON 格式错误" });
    }
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    this.calls.push({ method: req.method ?? "", url: req.url ?? "", body });
    const authProblem = this.authProblem(req, bodyText);
    if (authProblem !== null) return this.answer(res, 401, { code: "SIGN_ERROR", message: authProblem });

    const fault = this.faults.shift();
    if (fault === "slow") await new Promise((resolve) => setTimeout(resolve, this.slowMs));
    if (fault === "system_error") return this.answer(res, 500, { code: "SYSTEM_ERROR", message: "系统错误" });
    const sign = { fault };

    const payMatch = /^\/v3\/pay\/transactions\/(native|jsapi)$/.exec(url.pathname);
    if (req.method === "POST" && payMatch !== null && body !== null) {
      const amount = body.amount as Record<string, unknown> | undefined;
      if (body.mchid !== this.mchid || body.appid !== this.appid) return this.answer(res, 400, { code: "APPID_MCHID_NOT_MATCH", message: "appid和mch_id不匹配" }, sign);
      if (!Number.isInteger(amount?.total) || (amount!.total as number) < 1 || amount?.currency !== "CNY") return this.answer(res, 400, { code: "PARAM_ERROR", message: "amount.total" }, sign);
      if (typeof body.out_trade_no !== "string" || typeof body.description !== "string" || typeof body.notify_url !== "string" || typeof body.time_expire !== "string") {
        return this.answer(res, 400, { code: "PARAM_ERROR", message: "missing field" }, sign);
      }
      const jsapi = payMatch[1] === "jsapi";
      if (jsapi && typeof (body.payer as Record<string, unknown> | undefined)?.openid !== "string") return this.answer(res, 400, { code: "PARAM_ERROR", message: "payer.openid" }, sign);
      if (!this.orders.has(body.out_trade_no)) {
        this.orders.set(body.out_trade_no, {
          outTradeNo: body.out_trade_no,
          transactionId: `42000000${String(++this.seq).padStart(20, "0")}`,
          tradeType: jsapi ? "JSAPI" : "NATIVE",
          state: "NOTPAY",
          stateDesc: "",
          total: amount!.total as number,
          body,
          refunds: new Map(),
        });
      }
      return jsapi
        ? this.answer(res, 200, { prepay_id: `wx${Date.now()}${this.seq}` }, sign)
        : this.answer(res, 200, { code_url: `weixin://wxpay/bizpayurl?pr=${randomBytes(5).toString("hex")}` }, sign);
    }

    const queryMatch = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && queryMatch !== null) {
      if (url.searchParams.get("mchid") !== this.mchid) return this.answer(res, 400, { code: "PARAM_ERROR", message: "mchid" }, sign);
      const order = this.orders.get(decodeURIComponent(queryMatch[1]!));
      if (order === undefined) return this.answer(res, 404, { code: "ORDER_NOT_EXIST", message: "订单不存在" }, sign);
      const { payer: _payer, ...resource } = this.transactionResource(order.outTradeNo);
      return this.answer(res, 200, order.state === "NOTPAY" ? { ...resource, transaction_id: undefined, success_time: undefined } : resource, sign);
    }

    if (req.method === "POST" && url.pathname === "/v3/refund/domestic/refunds" && body !== null) {
      const order = [...this.orders.values()].find((o) => o.outTradeNo === body!.out_trade_no || o.transactionId === body!.transaction_id);
      if (order === undefined) return this.answer(res, 404, { code: "RESOURCE_NOT_EXISTS", message: "订单不存在" }, sign);
      if (fault === "balance_not_enough") return this.answer(res, 403, { code: "NOT_ENOUGH", message: "基本账户余额不足" }, sign);
      const amount = body.amount as Record<string, unknown> | undefined;
      if (amount?.total !== order.total || !Number.isInteger(amount?.refund) || amount?.currency !== "CNY") return this.answer(res, 400, { code: "PARAM_ERROR", message: "amount" }, sign);
      if (order.state !== "SUCCESS" && order.state !== "REFUND") return this.answer(res, 400, { code: "INVALID_REQUEST", message: "订单状态不正确" }, sign);
      const outRefundNo = String(body.out_refund_no);
      // WeChat answers a repeated out_refund_no with the first refund, moving no money again.
      let refund = order.refunds.get(outRefundNo);
      if (refund === undefined) {
        refund = { refund_id: `50300${String(++this.seq).padStart(24, "0")}`, out_refund_no: outRefundNo, transaction_id: order.transactionId, out_trade_no: order.outTradeNo, channel: "ORIGINAL", status: this.refundStatus, amount: { refund: amount.refund, total: order.total, currency: "CNY" } };
        order.refunds.set(outRefundNo, refund);
        order.state = "REFUND";
      }
      return this.answer(res, 200, refund, sign);
    }
    return this.answer(res, 404, { code: "NOT_FOUND", message: "no such API" }, sign);
  }

  private answer(res: ServerResponse, status: number, data: Record<string, unknown>, options: { fault?: WechatFault | undefined } = {}): void {
    if (res.destroyed) return;
    const body = JSON.stringify(data);
    const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)), "request-id": randomBytes(8).toString("hex") };
    if (options.fault !== "unsigned_response") {
      Object.assign(
        headers,
        this.signatureHeaders(body, {
          ...(options.fault === "bad_response_signature" ? { signer: "impostor" as const } : {}),
          ...(options.fault === "stale_response" ? { timestampS: Math.floor(Date.now() / 1000) - 600 } : {}),
        }),
      );
    }
    res.writeHead(status, headers);
    res.end(body);
  }
}
