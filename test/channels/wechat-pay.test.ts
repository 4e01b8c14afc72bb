// The WeChat Pay v3 connector against a fake API that checks request signatures for real: every
// flow end to end, the pure mapping tables, fen at the wire, answer-signature checks, and
// notifications — authentic ones accepted, every forged, stale or malformed one rejected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createVerify } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ChannelOutcomeUnknownError, ChannelUnavailableError, FAILURE_CODES, type PayRequest, type QueryRequest, type RawNotification, type RefundRequest } from "../../src/channels/channel.ts";
import { USER_CAUSED } from "../../src/channels/failures.ts";
import { createWechatPayChannel, type WechatPayChannel, type WechatPayConfig } from "../../src/channels/wechat-pay/index.ts";
import {
  ORDER_NOT_EXIST_GRACE_MS,
  WECHAT_CODES,
  fromWireFen,
  payRequestProblem,
  queryResult,
  refundResult,
  rfc3339Beijing,
  toWireFen,
  truncateUtf8,
} from "../../src/channels/wechat-pay/transform.ts";
import { rsaKeys } from "./fakes/alipay-fake.ts";
import { WechatPayFake, type SignedMessage } from "./fakes/wechat-pay-fake.ts";

const MCHID = "1900009191";
const APPID = "wxd678efh567hg6787";
const SERIAL = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C";
const APIV3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const merchant = rsaKeys();
const fake = new WechatPayFake(MCHID, APPID, merchant.publicKeyPem, SERIAL, APIV3_KEY);
let baseUrl = "";
let channel: WechatPayChannel;
let seq = 0;

function config(overrides: Partial<WechatPayConfig> = {}): WechatPayConfig {
  return {
    mchid: MCHID,
    appid: APPID,
    merchantPrivateKey: merchant.privateKeyPem,
    merchantSerialNo: SERIAL,
    apiV3Key: APIV3_KEY,
    platformPublicKeys: { [fake.platformSerial]: fake.platformKeys.publicKeyPem },
    baseUrl,
    timeoutMs: 1000, // well under the fake's slow answer (1.5 s), well over a loaded machine's round trip
    ...overrides,
  };
}

before(async () => {
  baseUrl = await fake.start();
  channel = createWechatPayChannel(config());
});
after(() => fake.close());

function payRequest(overrides: Partial<PayRequest> = {}): PayRequest {
  const attemptId = `att_wx_${++seq}`;
  return {
    attemptId,
    paymentId: `pay_${seq}`,
    amount: 250000n,
    currency: "CNY",
    description: "定金 / deposit, contract HT-2023-0042",
    method: "wechat_pay",
    notifyUrl: "https://tally.example/v1/channels/wechat_pay/notify",
    expiresAtUs: BigInt(Date.now() + 3600_000) * 1000n,
    ...overrides,
  };
}

function queryRequest(pay: PayRequest, overrides: Partial<QueryRequest> = {}): QueryRequest {
  return { attemptId: pay.attemptId, paymentId: pay.paymentId, amount: pay.amount, currency: "CNY", createdAtUs: BigInt(Date.now()) * 1000n, queriesBefore: 0, ...overrides };
}

function refundRequest(pay: PayRequest, overrides: Partial<RefundRequest> = {}): RefundRequest {
  return { refundId: `re_wx_${++seq}`, attemptId: pay.attemptId, amount: 1000n, paymentAmount: pay.amount, currency: "CNY", notifyUrl: pay.notifyUrl, ...overrides };
}

/** A port nothing listens on (fetch refuses "bad ports" such as 1 before connecting, so one is borrowed and released). */
async function closedPortNumber(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const raw = (message: SignedMessage): RawNotification => ({ contentType: "application/json", headers: message.headers, body: message.body });

// ---- pure ----

test("fen go on the wire as exact JSON integers, within WeChat's bounds", () => {
  const table: Array<[bigint, number]> = [
    [1n, 1],
    [250000n, 250000],
    [2_147_483_647n, 2_147_483_647],
  ];
  for (const [fen, wire] of table) {
    assert.equal(toWireFen(fen), wire);
    assert.equal(fromWireFen(wire), fen);
  }
  assert.throws(() => toWireFen(2_147_483_648n), RangeError);
  assert.throws(() => toWireFen(9007199254740991n), RangeError);
  assert.throws(() => toWireFen(-1n), RangeError);
  for (const bad of [1.5, -1, "100", 2 ** 53, null, undefined]) assert.equal(fromWireFen(bad), null, String(bad));
  assert.equal(fromWireFen(9007199254740991), 9007199254740991n);
});

test("time_expire is RFC 3339 in Beijing time; description is cut at 127 bytes of UTF-8", () => {
  assert.equal(rfc3339Beijing(Date.parse("2024-03-24T16:30:05Z")), "2024-03-25T00:30:05+08:00");
  const cut = truncateUtf8("押".repeat(100), 127);
  assert.equal(cut, "押".repeat(42));
  assert.ok(Buffer.byteLength(cut) <= 127);
  assert.equal(truncateUtf8("short", 127), "short");
});

test("every WeChat code maps to its unified code and user_caused", () => {
  for (const [code, unified] of Object.entries(WECHAT_CODES)) {
    assert.ok((FAILURE_CODES as readonly string[]).includes(unified), code);
    const f = refundResult({ status: 400, data: { code, message: "m" } }).failure!;
    assert.deepEqual([f.code, f.channelCode, f.userCaused], [unified, code, USER_CAUSED[unified]], code);
  }
  const expected: Array<[string, string, boolean]> = [
    ["NOTENOUGH", "insufficient_funds", true],
    ["PAYERROR", "declined", true],
    ["CLOSED", "expired", true],
    ["SYSTEMERROR", "channel_error", false],
    ["SYSTEM_ERROR", "channel_error", false],
    ["SIGN_ERROR", "misconfigured", false],
    ["SOMETHING_NEW", "channel_error", false],
  ];
  for (const [code, unified, userCaused] of expected) {
    const f = refundResult({ status: 400, data: { code } }).failure!;
    assert.deepEqual([f.code, f.userCaused], [unified, userCaused], code);
  }
});

test("query answers map by trade_state; ORDER_NOT_EXIST is pending until the pay window has passed", () => {
  const context = { amount: 100n, createdAtMs: 1_000_000, nowMs: 1_000_000, payWindowMs: 1_800_000 };
  const ok = (trade_state: string, total = 100) => ({ status: 200, data: { trade_state, transaction_id: "42", amount: { total } } });
  const table: Array<[{ status: number; data: Record<string, unknown> }, typeof context, string, string | undefined, boolean | undefined]> = [
    [ok("SUCCESS"), context, "succeeded", undefined, undefined],
    [ok("REFUND"), context, "succeeded", undefined, undefined],
    [ok("NOTPAY"), context, "pending", undefined, undefined],
    [ok("USERPAYING"), context, "pending", undefined, undefined],
    [ok("CLOSED"), context, "failed", "expired", true],
    [ok("REVOKED"), context, "failed", "canceled_by_payer", true],
    [ok("PAYERROR"), context, "failed", "declined", true],
    [ok("SUCCESS", 99), context, "unknown", "channel_error", false],
    [ok("NEW_STATE"), context, "unknown", "channel_error", false],
    [{ status: 404, data: { code: "ORDER_NOT_EXIST" } }, context, "pending", undefined, undefined],
    [{ status: 404, data: { code: "ORDER_NOT_EXIST" } }, { ...context, nowMs: context.createdAtMs + context.payWindowMs + ORDER_NOT_EXIST_GRACE_MS }, "failed", "expired", true],
    [{ status: 500, data: { code: "SYSTEM_ERROR" } }, context, "unknown", "channel_error", false],
  ];
  for (const [answer, ctx, status, code, userCaused] of table) {
    const result = queryResult(answer, ctx);
    assert.deepEqual([result.status, result.failure?.code, result.failure?.userCaused], [status, code, userCaused], JSON.stringify(answer));
  }
});

test("refund answers map by status; retryable errors are unknown", () => {
  const table: Array<[number, Record<string, unknown>, string]> = [
    [200, { status: "SUCCESS", refund_id: "r" }, "succeeded"],
    [200, { status: "PROCESSING" }, "pending"],
    [200, { status: "CLOSED" }, "failed"],
    [200, { status: "ABNORMAL" }, "unknown"],
    [500, { code: "SYSTEM_ERROR" }, "unknown"],
    [429, { code: "FREQUENCY_LIMITED" }, "unknown"],
    [403, { code: "NOT_ENOUGH" }, "failed"],
    [400, { code: "PARAM_ERROR" }, "failed"],
  ];
  for (const [status, data, expected] of table) assert.equal(refundResult({ status, data }).status, expected, JSON.stringify(data));
});

test("requests WeChat Pay cannot take are refused before anything is sent", () => {
  const table: Array<[Partial<PayRequest>, string | null]> = [
    [{}, null],
    [{ currency: "HKD" }, "TALLY_CURRENCY_NOT_SUPPORTED"],
    [{ amount: 0n }, "TALLY_AMOUNT_OUT_OF_RANGE"],
    [{ amount: 9007199254740991n }, "TALLY_AMOUNT_OUT_OF_RANGE"],
    [{ installments: 3 }, "TALLY_INSTALLMENTS_NOT_SUPPORTED"],
    [{ options: { trade_type: "jsapi" } }, "TALLY_OPENID_REQUIRED"],
    [{ options: { trade_type: "jsapi", openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" } }, null],
  ];
  for (const [overrides, code] of table) assert.equal(payRequestProblem(payRequest(overrides))?.channelCode ?? null, code, JSON.stringify(overrides, (_, v) => (typeof v === "bigint" ? String(v) : v)));
});

// ---- end to end against the fake ----

test("Native pay: code_url as a QR code, query, notification, refund", async () => {
  const request = payRequest({ amount: 1n, payer: { clientIp: "203.0.113.7" } });
  const result = await channel.pay(request);
  assert.equal(result.status, "pending");
  assert.equal(result.nextAction?.type, "qr_code");
  assert.match(result.nextAction!.qr!, /^weixin:\/\/wxpay\/bizpayurl\?pr=/);
  const call = fake.calls.at(-1)!;
  assert.equal(call.url, "/v3/pay/transactions/native");
  assert.deepEqual(call.body!.amount, { total: 1, currency: "CNY" });
  assert.equal(call.body!.out_trade_no, request.attemptId);
  assert.equal(call.body!.notify_url, request.notifyUrl);
  assert.deepEqual(call.body!.scene_info, { payer_client_ip: "203.0.113.7" });
  assert.match(String(call.body!.time_expire), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);

  assert.deepEqual(await channel.query(queryRequest(request)), { status: "pending" });
  assert.equal(fake.calls.at(-1)!.url, `/v3/pay/transactions/out-trade-no/${request.attemptId}?mchid=${MCHID}`);
  const order = fake.pay(request.attemptId);
  assert.deepEqual(await channel.query(queryRequest(request)), { status: "succeeded", channelRef: order.transactionId });

  const verdict = await channel.verifyNotification(raw(fake.notification("TRANSACTION.SUCCESS", fake.transactionResource(request.attemptId))));
  assert.deepEqual(verdict, {
    kind: "verified",
    dedupeKey: `wechat_pay:attempt:${request.attemptId}:SUCCESS`,
    change: { target: "attempt", attemptId: request.attemptId, status: "succeeded", channelRef: order.transactionId, amount: 1n },
  });

  const refund = refundRequest(request, { channelRef: order.transactionId, amount: 1n });
  const refunded = await channel.refund(refund);
  assert.equal(refunded.status, "succeeded");
  assert.deepEqual(fake.calls.at(-1)!.body, { transaction_id: order.transactionId, out_refund_no: refund.refundId, notify_url: request.notifyUrl, amount: { refund: 1, total: 1, currency: "CNY" } });
  assert.deepEqual(await channel.refund(refund), refunded);
  assert.equal(order.refunds.size, 1);

  const refundNotice = await channel.verifyNotification(raw(fake.notification("REFUND.SUCCESS", fake.refundResource(request.attemptId, refund.refundId))));
  assert.deepEqual(refundNotice, { kind: "verified", dedupeKey: `wechat_pay:refund:${refund.refundId}:SUCCESS`, change: { target: "refund", refundId: refund.refundId, status: "succeeded", channelRef: refunded.channelRef } });
});

test("JSAPI pay: prepay_id turned into signed requestPayment parameters", async () => {
  const openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
  const request = payRequest({ options: { trade_type: "jsapi", openid } });
  const result = await channel.pay(request);
  assert.equal(result.status, "pending");
  assert.equal(result.nextAction?.type, "none");
  const call = fake.calls.at(-1)!;
  assert.equal(call.url, "/v3/pay/transactions/jsapi");
  assert.deepEqual(call.body!.payer, { openid });
  const params = result.nextAction!.params!;
  assert.equal(params.appId, APPID);
  assert.equal(params.signType, "RSA");
  assert.match(params.package!, /^prepay_id=wx/);
  const message = `${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
  assert.ok(createVerify("RSA-SHA256").update(message).verify(merchant.publicKeyPem, params.paySign!, "base64"), "paySign verifies with the merchant key");

  const withPage = createWechatPayChannel(config({ jsapiPageUrl: "https://tally.example/checkout/wechat-jsapi" }));
  const redirected = await withPage.pay(payRequest({ options: { trade_type: "jsapi", openid } }));
  assert.equal(redirected.nextAction?.type, "redirect");
  const url = new URL(redirected.nextAction!.url!);
  assert.equal(url.origin + url.pathname, "https://tally.example/checkout/wechat-jsapi");
  assert.equal(url.searchParams.get("paySign"), redirected.nextAction!.params!.paySign);
});

test("trade states reported by query: closed, revoked, pay error, user paying", async () => {
  const table: Array<[Parameters<WechatPayFake["setState"]>[1], string, string | undefined]> = [
    ["CLOSED", "failed", "expired"],
    ["REVOKED", "failed", "canceled_by_payer"],
    ["PAYERROR", "failed", "declined"],
    ["USERPAYING", "pending", undefined],
  ];
  for (const [state, status, code] of table) {
    const request = payRequest();
    await channel.pay(request);
    fake.setState(request.attemptId, state, "银行返回失败");
    const result = await channel.query(queryRequest(request));
    assert.deepEqual([result.status, result.failure?.code], [status, code], state);
  }
});

test("an order WeChat never received: pending, then failed expired once the pay window has passed", async () => {
  const request = payRequest();
  assert.deepEqual(await channel.query(queryRequest(request)), { status: "pending" });
  const old = queryRequest(request, { createdAtUs: BigInt(Date.now() - 30 * 60_000 - ORDER_NOT_EXIST_GRACE_MS - 1000) * 1000n });
  const late = await channel.query(old);
  assert.deepEqual([late.status, late.failure?.code, late.failure?.userCaused], ["failed", "expired", true]);
});

test("faults: system error, slow, forged, unsigned and stale answers, refused connection", async () => {
  fake.faults.push("system_error");
  const failed = await channel.pay(payRequest());
  assert.deepEqual([failed.status, failed.failure?.code, failed.failure?.userCaused], ["failed", "channel_error", false]);

  for (const fault of ["slow", "bad_response_signature", "unsigned_response", "stale_response"] as const) {
    fake.faults.push(fault);
    await assert.rejects(channel.pay(payRequest()), ChannelOutcomeUnknownError, fault);
  }

  const request = payRequest();
  await channel.pay(request);
  fake.pay(request.attemptId);
  fake.faults.push("system_error");
  assert.equal((await channel.query(queryRequest(request))).status, "unknown");
  fake.faults.push("slow");
  await assert.rejects(channel.query(queryRequest(request)), ChannelOutcomeUnknownError);
  assert.equal((await channel.query(queryRequest(request))).status, "succeeded");

  fake.faults.push("slow");
  assert.deepEqual(await channel.refund(refundRequest(request)), { status: "unknown" });
  fake.faults.push("balance_not_enough");
  const poor = await channel.refund(refundRequest(request));
  assert.deepEqual([poor.status, poor.failure?.code, poor.failure?.channelCode], ["failed", "insufficient_funds", "NOT_ENOUGH"]);
  fake.refundStatus = "PROCESSING";
  try {
    assert.equal((await channel.refund(refundRequest(request))).status, "pending");
  } finally {
    fake.refundStatus = "SUCCESS";
  }

  const closedPort = createWechatPayChannel(config({ baseUrl: `http://127.0.0.1:${await closedPortNumber()}` }));
  await assert.rejects(closedPort.pay(payRequest()), ChannelUnavailableError);
  await assert.rejects(closedPort.query(queryRequest(request)), ChannelUnavailableError);
});

test("the fake really checks our signature: a key or serial WeChat does not know gets SIGN_ERROR", async () => {
  for (const overrides of [{ merchantPrivateKey: rsaKeys().privateKeyPem }, { merchantSerialNo: "0000" }]) {
    const stranger = createWechatPayChannel(config(overrides));
    const result = await stranger.pay(payRequest());
    assert.deepEqual([result.status, result.failure?.code, result.failure?.channelCode], ["failed", "misconfigured", "SIGN_ERROR"]);
  }
});

test("configuration is checked when the channel is made", () => {
  assert.throws(() => createWechatPayChannel(config({ apiV3Key: "short" })), /32 bytes/);
  assert.throws(() => createWechatPayChannel(config({ platformPublicKeys: {} })), /platform public key/);
});

// ---- notifications ----

test("authentic notifications verify; a replay within 5 minutes has the same dedupe key", async () => {
  const request = payRequest({ amount: 250000n });
  await channel.pay(request);
  fake.pay(request.attemptId);
  const message = fake.notification("TRANSACTION.SUCCESS", fake.transactionResource(request.attemptId));
  const first = await channel.verifyNotification(raw(message));
  const replay = await channel.verifyNotification(raw(message));
  assert.equal(first.kind, "verified");
  assert.deepEqual(replay, first);
  assert.equal(first.kind === "verified" && first.change.target === "attempt" ? first.change.amount : null, 250000n);
  // Header names in any case.
  const upper = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k.toUpperCase(), v]));
  assert.equal((await channel.verifyNotification({ ...raw(message), headers: upper })).kind, "verified");
  // A notice about a trade not yet final is authentic but changes nothing.
  fake.setState(request.attemptId, "USERPAYING");
  assert.equal((await channel.verifyNotification(raw(fake.notification("TRANSACTION.SUCCESS", fake.transactionResource(request.attemptId))))).kind, "ignored");
});

test("forged, stale and malformed notifications are rejected", async () => {
  const request = payRequest();
  await channel.pay(request);
  fake.pay(request.attemptId);
  const resource = fake.transactionResource(request.attemptId);
  const good = fake.notification("TRANSACTION.SUCCESS", resource);

  const tamperedBody = good.body.replace(/"summary":"[^"]*"/, '"summary":"x"');
  const envelope = JSON.parse(good.body) as { resource: Record<string, string> };
  const flipped = Buffer.from(envelope.resource.ciphertext!, "base64");
  flipped[0] = flipped[0]! ^ 1;
  const tamperedCipher = JSON.stringify({ ...envelope, resource: { ...envelope.resource, ciphertext: flipped.toString("base64") } });
  const withoutSignature = { ...good.headers };
  delete withoutSignature["wechatpay-signature"];
  const nowS = Math.floor(Date.now() / 1000);

  const cases: Array<[string, RawNotification]> = [
    ["signed by someone else", raw(fake.notification("TRANSACTION.SUCCESS", resource, { signer: "impostor" }))],
    ["an unknown platform serial", raw(fake.notification("TRANSACTION.SUCCESS", resource, { serial: "FFFF" }))],
    ["another merchant's mchid", raw(fake.notification("TRANSACTION.SUCCESS", { ...resource, mchid: "1230000109" }))],
    ["another app's appid", raw(fake.notification("TRANSACTION.SUCCESS", { ...resource, appid: "wx0000000000000000" }))],
    ["the body changed after signing", { ...raw(good), body: tamperedBody }],
    ["the ciphertext changed (re-signed, so only GCM catches it)", raw({ headers: fake.signatureHeaders(tamperedCipher), body: tamperedCipher })],
    ["encrypted with another APIv3 key", raw(fake.notification("TRANSACTION.SUCCESS", resource, { apiV3Key: "b".repeat(32) }))],
    ["a different associated_data than encrypted with", raw((() => {
      const body = JSON.stringify({ ...envelope, resource: { ...envelope.resource, associated_data: "refund" } });
      return { headers: fake.signatureHeaders(body), body };
    })())],
    ["stale: 6 minutes old", raw(fake.notification("TRANSACTION.SUCCESS", resource, { timestampS: nowS - 360 }))],
    ["from the future: 6 minutes ahead", raw(fake.notification("TRANSACTION.SUCCESS", resource, { timestampS: nowS + 360 }))],
    ["a replay of an old capture", raw(fake.notification("TRANSACTION.SUCCESS", resource, { timestampS: nowS - 3600 }))],
    ["no signature header", { ...raw(good), headers: withoutSignature }],
    ["no headers at all", { contentType: "application/json", headers: {}, body: good.body }],
    ["a body that is not JSON (signed)", raw({ headers: fake.signatureHeaders("resource=1"), body: "resource=1" })],
    ["no resource (signed)", raw({ headers: fake.signatureHeaders('{"event_type":"TRANSACTION.SUCCESS"}'), body: '{"event_type":"TRANSACTION.SUCCESS"}' })],
    ["a tampered amount inside the resource, re-encrypted but for the wrong merchant", raw(fake.notification("TRANSACTION.SUCCESS", { ...resource, mchid: "1", amount: { total: 1 } }))],
    ["an amount that is not an integer of fen", raw(fake.notification("TRANSACTION.SUCCESS", { ...resource, amount: { total: "250000" } }))],
    ["an unknown trade_state", raw(fake.notification("TRANSACTION.SUCCESS", { ...resource, trade_state: "MAYBE" }))],
    ["far too large", raw((() => {
      const body = JSON.stringify({ ...envelope, pad: "x".repeat(70_000) });
      return { headers: fake.signatureHeaders(body), body };
    })())],
  ];
  for (const [name, notification] of cases) {
    const verdict = await channel.verifyNotification(notification);
    assert.equal(verdict.kind, "rejected", name);
  }
  assert.equal((await channel.verifyNotification(raw(good))).kind, "verified");
});

test("a tampered amount that is authentic is passed on for the inbox to compare", async () => {
  // WeChat signed and encrypted it, so it is what WeChat says; the inbox holds the attempt's amount.
  const request = payRequest({ amount: 500n });
  await channel.pay(request);
  fake.pay(request.attemptId);
  const verdict = await channel.verifyNotification(raw(fake.notification("TRANSACTION.SUCCESS", fake.transactionResource(request.attemptId, { amount: { total: 1, currency: "CNY" } }))));
  assert.equal(verdict.kind === "verified" && verdict.change.target === "attempt" ? verdict.change.amount : null, 1n);
});

test("acknowledgement: 200 SUCCESS, or 500 FAIL so WeChat sends again", () => {
  assert.deepEqual(channel.acknowledge(true), { status: 200, contentType: "application/json; charset=utf-8", body: '{"code":"SUCCESS"}' });
  const fail = channel.acknowledge(false);
  assert.equal(fail.status, 500);
  assert.equal(JSON.parse(fail.body).code, "FAIL");
});
