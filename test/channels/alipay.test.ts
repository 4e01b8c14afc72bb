// The Alipay connector against a fake Alipay gateway that verifies signatures for real: every flow
// end to end, the pure mapping tables, Huabei parameters, exact yuan↔fen, and notifications —
// authentic ones accepted, every forged or malformed one rejected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChannelOutcomeUnknownError, ChannelUnavailableError, FAILURE_CODES, type PayRequest, type QueryRequest, type RefundRequest } from "../../src/channels/channel.ts";
import { USER_CAUSED } from "../../src/channels/failures.ts";
import { createAlipayChannel, type AlipayChannel } from "../../src/channels/alipay/index.ts";
import {
  ALIPAY_SUB_CODES,
  TRADE_NOT_EXIST_GRACE_MS,
  beijingTime,
  fromYuan,
  notificationChange,
  payRequestProblem,
  queryResult,
  refundResult,
  toYuan,
} from "../../src/channels/alipay/transform.ts";
import { AlipayFake, rsaKeys } from "./fakes/alipay-fake.ts";

const APP_ID = "2021000000000001";
const app = rsaKeys();
const fake = new AlipayFake(APP_ID, app.publicKeyPem);
let gatewayUrl = "";
let clockMs = Date.parse("2024-03-24T08:00:00Z");
const now = () => clockMs;
let channel: AlipayChannel;
let seq = 0;

function channelWith(overrides: Partial<Parameters<typeof createAlipayChannel>[0]> = {}): AlipayChannel {
  return createAlipayChannel({ appId: APP_ID, privateKey: app.privateKeyPem, alipayPublicKey: fake.alipayKeys.publicKeyPem, gatewayUrl, timeoutMs: 1000, ...overrides }, now);
}

before(async () => {
  gatewayUrl = await fake.start();
  channel = channelWith();
});
after(() => fake.close());

function payRequest(overrides: Partial<PayRequest> = {}): PayRequest {
  const attemptId = `att_ali_${++seq}`;
  return {
    attemptId,
    paymentId: `pay_${seq}`,
    amount: 250000n,
    currency: "CNY",
    description: "定金 / deposit, contract HT-2023-0042",
    method: "alipay",
    notifyUrl: "https://tally.example/v1/channels/alipay/notify",
    returnUrl: "https://merchant.example/orders/0001",
    expiresAtUs: BigInt(clockMs + 3600_000) * 1000n,
    ...overrides,
  };
}

function queryRequest(pay: PayRequest, overrides: Partial<QueryRequest> = {}): QueryRequest {
  return { attemptId: pay.attemptId, paymentId: pay.paymentId, amount: pay.amount, currency: "CNY", createdAtUs: BigInt(clockMs) * 1000n, queriesBefore: 0, ...overrides };
}

function refundRequest(pay: PayRequest, overrides: Partial<RefundRequest> = {}): RefundRequest {
  return { refundId: `re_${++seq}`, attemptId: pay.attemptId, amount: 1000n, paymentAmount: pay.amount, currency: "CNY", notifyUrl: pay.notifyUrl, ...overrides };
}

/** Pays through the connector and opens the cashier as the payer's browser would. */
async function openCashier(request: PayRequest): Promise<URL> {
  const result = await channel.pay(request);
  assert.equal(result.status, "pending");
  assert.equal(result.nextAction?.type, "redirect");
  const url = new URL(result.nextAction!.url!);
  const response = await fetch(url);
  assert.equal(response.status, 200, await response.text());
  return url;
}

const form = (body: string) => ({ contentType: "application/x-www-form-urlencoded; charset=utf-8", headers: {}, body });

// ---- pure: money at the wire ----

test("yuan strings convert to and from fen exactly", () => {
  const table: Array<[bigint, string]> = [
    [1n, "0.01"],
    [10n, "0.10"],
    [100n, "1.00"],
    [250000n, "2500.00"],
    [9007199254740991n, "90071992547409.91"],
    [10_000_000_000n, "100000000.00"],
  ];
  for (const [fen, yuan] of table) {
    assert.equal(toYuan(fen), yuan);
    assert.equal(fromYuan(yuan), fen);
  }
  assert.equal(fromYuan("2500"), 250000n);
  assert.equal(fromYuan("0.1"), 10n);
  for (const bad of ["0.001", "-1.00", "1e3", "1,000.00", "", " 1.00", "0x10", "１.００"]) assert.equal(fromYuan(bad), null, bad);
  assert.equal(fromYuan(1), null);
  assert.equal(fromYuan(undefined), null);
});

test("time_expire is Beijing time", () => {
  assert.equal(beijingTime(0), "1970-01-01 08:00:00");
  assert.equal(beijingTime(Date.parse("2024-03-24T16:30:05Z")), "2024-03-25 00:30:05");
});

// ---- pure: tables ----

test("every Alipay sub_code maps to its unified code and user_caused", () => {
  for (const [subCode, code] of Object.entries(ALIPAY_SUB_CODES)) {
    assert.ok((FAILURE_CODES as readonly string[]).includes(code), subCode);
    const result = refundResult({ code: "40004", sub_code: subCode, sub_msg: "m" });
    assert.equal(result.failure?.code, code, subCode);
    assert.equal(result.failure?.channelCode, subCode);
    assert.equal(result.failure?.userCaused, USER_CAUSED[code], subCode);
  }
  const expected: Array<[string, string, boolean]> = [
    ["ACQ.BUYER_BALANCE_NOT_ENOUGH", "insufficient_funds", true],
    ["ACQ.PAYMENT_AUTH_CODE_INVALID", "invalid_account", true],
    ["ACQ.TRADE_HAS_CLOSE", "expired", true],
    ["ACQ.SYSTEM_ERROR", "channel_error", false],
    ["isv.invalid-signature", "misconfigured", false],
    ["ACQ.SOMETHING_NEW", "channel_error", false],
  ];
  for (const [subCode, code, userCaused] of expected) {
    const f = refundResult({ code: "40004", sub_code: subCode }).failure!;
    assert.deepEqual([f.code, f.userCaused], [code, userCaused], subCode);
  }
});

test("query answers map by trade_status; TRADE_NOT_EXIST is pending until the pay window has passed", () => {
  const context = { amount: 250000n, createdAtMs: 1_000_000, nowMs: 1_000_000, payWindowMs: 1_800_000 };
  const ok = (trade_status: string, total_amount = "2500.00") => ({ code: "10000", trade_no: "T1", trade_status, total_amount });
  const table: Array<[Record<string, unknown>, typeof context, string, string | undefined, boolean | undefined]> = [
    [ok("TRADE_SUCCESS"), context, "succeeded", undefined, undefined],
    [ok("TRADE_FINISHED"), context, "succeeded", undefined, undefined],
    [ok("WAIT_BUYER_PAY"), context, "pending", undefined, undefined],
    [ok("TRADE_CLOSED"), context, "failed", "expired", true],
    [ok("TRADE_SUCCESS", "2499.99"), context, "unknown", "channel_error", false],
    [ok("SOMETHING_ELSE"), context, "unknown", "channel_error", false],
    [{ code: "40004", sub_code: "ACQ.TRADE_NOT_EXIST" }, context, "pending", undefined, undefined],
    [{ code: "40004", sub_code: "ACQ.TRADE_NOT_EXIST" }, { ...context, nowMs: context.createdAtMs + context.payWindowMs + TRADE_NOT_EXIST_GRACE_MS - 1 }, "pending", undefined, undefined],
    [{ code: "40004", sub_code: "ACQ.TRADE_NOT_EXIST" }, { ...context, nowMs: context.createdAtMs + context.payWindowMs + TRADE_NOT_EXIST_GRACE_MS }, "failed", "expired", true],
    [{ code: "20000", sub_code: "ACQ.SYSTEM_ERROR" }, context, "unknown", "channel_error", false],
    [{ code: "40002", sub_code: "isv.invalid-signature" }, context, "unknown", "misconfigured", false],
  ];
  for (const [answer, ctx, status, code, userCaused] of table) {
    const result = queryResult(answer, ctx);
    assert.equal(result.status, status, JSON.stringify(answer));
    assert.equal(result.failure?.code, code, JSON.stringify(answer));
    assert.equal(result.failure?.userCaused, userCaused, JSON.stringify(answer));
  }
});

test("refund answers: fund_change Y succeeded, N pending, system error unknown, business error failed", () => {
  assert.equal(refundResult({ code: "10000", fund_change: "Y", trade_no: "T" }).status, "succeeded");
  assert.equal(refundResult({ code: "10000", fund_change: "N" }).status, "pending");
  assert.equal(refundResult({ code: "20000", sub_code: "ACQ.SYSTEM_ERROR" }).status, "unknown");
  assert.equal(refundResult({ code: "40004", sub_code: "ACQ.SELLER_BALANCE_NOT_ENOUGH" }).status, "failed");
});

test("requests Alipay cannot take are refused before anything is sent", () => {
  const base = payRequest();
  const table: Array<[Partial<PayRequest>, string | null]> = [
    [{}, null],
    [{ currency: "USD" }, "TALLY_CURRENCY_NOT_SUPPORTED"],
    [{ amount: 0n }, "ACQ.TOTAL_FEE_EXCEED"],
    [{ amount: 10_000_000_000n }, null],
    [{ amount: 10_000_000_001n }, "ACQ.TOTAL_FEE_EXCEED"],
    [{ installments: 3 }, null],
    [{ installments: 12 }, null],
    [{ installments: 4 }, "TALLY_INSTALLMENTS_NOT_SUPPORTED"],
  ];
  for (const [overrides, channelCode] of table) assert.equal(payRequestProblem({ ...base, ...overrides })?.channelCode ?? null, channelCode, JSON.stringify(overrides, (_, v) => (typeof v === "bigint" ? String(v) : v)));
});

// ---- end to end against the fake ----

test("page pay: a signed redirect to the gateway, then query, notification and refund", async () => {
  const request = payRequest();
  const url = await openCashier(request);
  assert.equal(url.origin + url.pathname, gatewayUrl);
  const sent = fake.requests.at(-1)!;
  assert.equal(sent.method, "alipay.trade.page.pay");
  assert.equal(sent.params.notify_url, request.notifyUrl);
  assert.equal(sent.params.return_url, request.returnUrl);
  assert.equal(sent.bizContent.out_trade_no, request.attemptId);
  assert.equal(sent.bizContent.total_amount, "2500.00");
  assert.equal(sent.bizContent.product_code, "FAST_INSTANT_TRADE_PAY");
  assert.equal(sent.bizContent.time_expire, beijingTime(clockMs + 30 * 60_000));
  assert.equal(sent.bizContent.extend_params, undefined);

  assert.deepEqual(await channel.query(queryRequest(request)), { status: "pending", channelRef: fake.trades.get(request.attemptId)!.tradeNo });
  const trade = fake.pay(request.attemptId);
  assert.deepEqual(await channel.query(queryRequest(request)), { status: "succeeded", channelRef: trade.tradeNo });

  const verdict = await channel.verifyNotification(form(fake.notification(request.attemptId)));
  assert.deepEqual(verdict, {
    kind: "verified",
    dedupeKey: `alipay:attempt:${request.attemptId}:TRADE_SUCCESS`,
    change: { target: "attempt", attemptId: request.attemptId, status: "succeeded", channelRef: trade.tradeNo, amount: 250000n },
  });

  const refund = refundRequest(request, { channelRef: trade.tradeNo, amount: 1n });
  assert.deepEqual(await channel.refund(refund), { status: "succeeded", channelRef: trade.tradeNo });
  const refundCall = fake.requests.at(-1)!;
  assert.equal(refundCall.method, "alipay.trade.refund");
  assert.deepEqual(refundCall.bizContent, { out_trade_no: request.attemptId, trade_no: trade.tradeNo, refund_amount: "0.01", out_request_no: refund.refundId });
  // The same refund id again is the same refund at Alipay, not a second one.
  assert.equal((await channel.refund(refund)).status, "succeeded");
  assert.equal(fake.trades.get(request.attemptId)!.refunds.size, 1);
});

test("wap pay for a phone's browser (or when asked), with quit_url", async () => {
  const phone = payRequest({ payer: { userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148" } });
  await openCashier(phone);
  let sent = fake.requests.at(-1)!;
  assert.equal(sent.method, "alipay.trade.wap.pay");
  assert.equal(sent.bizContent.product_code, "QUICK_WAP_WAY");
  assert.equal(sent.bizContent.quit_url, phone.returnUrl);

  await openCashier(payRequest({ options: { product: "wap" } }));
  assert.equal(fake.requests.at(-1)!.method, "alipay.trade.wap.pay");
  await openCashier(payRequest({ options: { product: "page" }, payer: { userAgent: "Android Mobile" } }));
  sent = fake.requests.at(-1)!;
  assert.equal(sent.method, "alipay.trade.page.pay");
});

test("Huabei installments: hb_fq_num and who bears the fee", async () => {
  const table: Array<[Partial<PayRequest>, 0 | 100 | undefined, Record<string, string> | "refused"]> = [
    [{ installments: 3 }, undefined, { hb_fq_num: "3", hb_fq_seller_percent: "0" }],
    [{ installments: 6, options: { hb_fq_seller_percent: 100 } }, undefined, { hb_fq_num: "6", hb_fq_seller_percent: "100" }],
    [{ installments: 12 }, 100, { hb_fq_num: "12", hb_fq_seller_percent: "100" }],
    [{ installments: 12, options: { hb_fq_seller_percent: 0 } }, 100, { hb_fq_num: "12", hb_fq_seller_percent: "0" }],
    [{ installments: 6, options: { hb_fq_seller_percent: 50 } }, undefined, "refused"],
    [{ installments: 24 }, undefined, "refused"],
  ];
  for (const [overrides, sellerDefault, expected] of table) {
    const ch = channelWith(sellerDefault !== undefined ? { huabeiSellerPercent: sellerDefault } : {});
    const request = payRequest(overrides);
    const result = await ch.pay(request);
    if (expected === "refused") {
      assert.equal(result.status, "failed");
      assert.equal(result.failure?.code, "misconfigured");
      assert.equal(result.nextAction, undefined);
      continue;
    }
    const response = await fetch(result.nextAction!.url!);
    assert.equal(response.status, 200);
    assert.deepEqual(fake.requests.at(-1)!.bizContent.extend_params, expected);
  }
});

test("a query before the payer opens the cashier is pending; after the pay window it failed expired", async () => {
  const request = payRequest();
  const result = await channel.pay(request);
  assert.equal(result.status, "pending");
  const query = queryRequest(request);
  assert.deepEqual(await channel.query(query), { status: "pending" });
  const saved = clockMs;
  clockMs += 30 * 60_000 + TRADE_NOT_EXIST_GRACE_MS + 1;
  try {
    const late = await channel.query(query);
    assert.equal(late.status, "failed");
    assert.deepEqual([late.failure?.code, late.failure?.channelCode, late.failure?.userCaused], ["expired", "ACQ.TRADE_NOT_EXIST", true]);
  } finally {
    clockMs = saved;
  }
});

test("a trade closed unpaid fails as expired, caused by the payer", async () => {
  const request = payRequest();
  await openCashier(request);
  fake.closeTrade(request.attemptId);
  const result = await channel.query(queryRequest(request));
  assert.equal(result.status, "failed");
  assert.deepEqual([result.failure?.code, result.failure?.userCaused], ["expired", true]);
});

test("faults: system error, slow answer, forged answer, proxy error page, refused connection", async () => {
  const request = payRequest();
  await openCashier(request);
  fake.pay(request.attemptId);

  fake.faults.push("system_error");
  const busy = await channel.query(queryRequest(request));
  assert.equal(busy.status, "unknown");
  assert.deepEqual([busy.failure?.channelCode, busy.failure?.userCaused], ["ACQ.SYSTEM_ERROR", false]);

  for (const fault of ["slow", "bad_response_signature", "http_502"] as const) {
    fake.faults.push(fault);
    await assert.rejects(channel.query(queryRequest(request)), ChannelOutcomeUnknownError, fault);
  }
  // The fake is fine again: the same query settles.
  assert.equal((await channel.query(queryRequest(request))).status, "succeeded");

  fake.faults.push("slow");
  assert.deepEqual(await channel.refund(refundRequest(request)), { status: "unknown" });
  fake.faults.push("balance_not_enough");
  const poor = await channel.refund(refundRequest(request));
  assert.equal(poor.status, "failed");
  assert.deepEqual([poor.failure?.code, poor.failure?.channelCode], ["insufficient_funds", "ACQ.SELLER_BALANCE_NOT_ENOUGH"]);

  const closedPort = channelWith({ gatewayUrl: "http://127.0.0.1:1/gateway.do" });
  await assert.rejects(closedPort.query(queryRequest(request)), ChannelUnavailableError);
});

test("the fake really checks our signature: a key Alipay does not know is misconfigured", async () => {
  const request = payRequest();
  await openCashier(request);
  const stranger = channelWith({ privateKey: rsaKeys().privateKeyPem });
  const result = await stranger.query(queryRequest(request));
  assert.equal(result.status, "unknown");
  assert.deepEqual([result.failure?.code, result.failure?.channelCode], ["misconfigured", "isv.invalid-signature"]);
  // And its redirect is refused by the gateway.
  const redirect = await stranger.pay(payRequest());
  const before = fake.trades.size;
  await fetch(redirect.nextAction!.url!);
  assert.equal(fake.trades.size, before);
});

// ---- notifications ----

test("authentic notifications: success, closed, waiting (ignored), refund; a replay has the same dedupe key", async () => {
  const request = payRequest({ amount: 1n });
  await openCashier(request);
  const waiting = await channel.verifyNotification(form(fake.notification(request.attemptId)));
  assert.equal(waiting.kind, "ignored");

  fake.pay(request.attemptId);
  const body = fake.notification(request.attemptId);
  const first = await channel.verifyNotification(form(body));
  const replay = await channel.verifyNotification(form(body));
  assert.equal(first.kind, "verified");
  assert.deepEqual(replay, first);
  assert.equal(first.kind === "verified" && first.change.target === "attempt" ? first.change.amount : null, 1n);

  const refund = await channel.verifyNotification(form(fake.notification(request.attemptId, { out_biz_no: "re_77", refund_fee: "0.01", gmt_refund: "2024-03-24 17:00:00.000", trade_status: "TRADE_CLOSED" })));
  assert.deepEqual(refund, { kind: "verified", dedupeKey: "alipay:refund:re_77", change: { target: "refund", refundId: "re_77", status: "succeeded", channelRef: fake.trades.get(request.attemptId)!.tradeNo } });

  fake.closeTrade(request.attemptId);
  const closed = await channel.verifyNotification(form(fake.notification(request.attemptId)));
  assert.equal(closed.kind === "verified" ? closed.change.status : closed.kind, "failed");
});

test("forged and malformed notifications are rejected", async () => {
  const request = payRequest();
  await openCashier(request);
  fake.pay(request.attemptId);
  const params = fake.notificationParams(request.attemptId);
  const signed = new URLSearchParams(fake.signNotification(params));

  const tampered = new URLSearchParams(signed);
  tampered.set("total_amount", "0.01");
  const wrongStatus = new URLSearchParams(signed);
  wrongStatus.set("out_trade_no", "att_someone_else");
  const noSign = new URLSearchParams(signed);
  noSign.delete("sign");
  const weakType = new URLSearchParams(signed);
  weakType.set("sign_type", "RSA");
  const cases: Array<[string, { contentType: string | undefined; body: string }]> = [
    ["signed by someone else", form(fake.signNotification(params, "impostor"))],
    ["signed by Alipay for another app id", form(fake.signNotification({ ...params, app_id: "2021999999999999" }))],
    ["amount changed after signing", form(tampered.toString())],
    ["trade changed after signing", form(wrongStatus.toString())],
    ["no signature", form(noSign.toString())],
    ["RSA (SHA-1) instead of RSA2", form(weakType.toString())],
    ["a repeated name", form(`${signed.toString()}&total_amount=0.01`)],
    ["garbage in the signature", form(signed.toString().replace(/sign=[^&]+/, "sign=%%%"))],
    ["a JSON body", { contentType: "application/json", body: JSON.stringify(Object.fromEntries(signed)) }],
    ["an empty body", form("")],
    ["far too large", form(`${signed.toString()}&pad=${"x".repeat(70_000)}`)],
    ["an amount that is not yuan", form(fake.signNotification({ ...params, total_amount: "1e3" }))],
    ["an unknown trade_status", form(fake.signNotification({ ...params, trade_status: "TRADE_MAYBE" }))],
  ];
  for (const [name, notification] of cases) {
    const verdict = await channel.verifyNotification({ headers: {}, ...notification });
    assert.equal(verdict.kind, "rejected", name);
  }
  // The untouched one still verifies, so the rejections above are about what was changed.
  assert.equal((await channel.verifyNotification(form(signed.toString()))).kind, "verified");
});

test("notificationChange reads the parameters without trusting a missing trade", () => {
  assert.deepEqual(notificationChange({ trade_status: "TRADE_SUCCESS", total_amount: "1.00" }), { reject: "out_trade_no is missing" });
});

test("acknowledgement: text/plain success or fail", () => {
  assert.deepEqual(channel.acknowledge(true), { status: 200, contentType: "text/plain; charset=utf-8", body: "success" });
  assert.deepEqual(channel.acknowledge(false), { status: 200, contentType: "text/plain; charset=utf-8", body: "fail" });
});
