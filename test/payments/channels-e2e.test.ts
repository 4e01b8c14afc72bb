// Payments through the real Alipay and WeChat Pay connectors, against fake gateways that sign,
// verify and encrypt for real: attempt → the channel's next action → the payer pays → the
// channel's notification (or a re-query) settles the payment. Forged, replayed, tampered and
// malformed notifications change no money and all stay in the inbox.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createAlipayChannel } from "../../src/channels/alipay/index.ts";
import { createWechatPayChannel } from "../../src/channels/wechat-pay/index.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { account, balances, createPayment, notificationRows } from "../support/payments.ts";
import { AlipayFake, rsaKeys } from "../channels/fakes/alipay-fake.ts";
import { WechatPayFake } from "../channels/fakes/wechat-pay-fake.ts";

const ALIPAY_APP_ID = "2021000000000001";
const MCHID = "1900000001";
const APPID = "wx8888888888888888";

describe("payments through the Alipay and WeChat Pay connectors", () => {
  const clock = new ManualClock(BigInt(Date.now()) * 1000n);
  const alipayApp = rsaKeys();
  const alipay = new AlipayFake(ALIPAY_APP_ID, alipayApp.publicKeyPem);
  const merchant = rsaKeys();
  const merchantSerial = randomBytes(20).toString("hex").toUpperCase();
  const apiV3Key = randomBytes(16).toString("hex");
  const wechat = new WechatPayFake(MCHID, APPID, merchant.publicKeyPem, merchantSerial, apiV3Key);
  let app: TestApp;

  before(async () => {
    const gatewayUrl = await alipay.start();
    const wechatUrl = await wechat.start();
    app = await startTestApp({
      clock,
      label: "channels",
      options: {
        channels: [
          createAlipayChannel({ appId: ALIPAY_APP_ID, privateKey: alipayApp.privateKeyPem, alipayPublicKey: alipay.alipayKeys.publicKeyPem, gatewayUrl, timeoutMs: 2000 }, () => clock.nowMs()),
          createWechatPayChannel(
            { mchid: MCHID, appid: APPID, merchantPrivateKey: merchant.privateKeyPem, merchantSerialNo: merchantSerial, apiV3Key, platformPublicKeys: { [wechat.platformSerial]: wechat.platformKeys.publicKeyPem }, baseUrl: wechatUrl, timeoutMs: 2000 },
            () => clock.nowMs(),
          ),
        ],
      },
    });
    await account(app, "wallet:store:17");
  });
  after(async () => {
    await app.close();
    await alipay.close();
    await wechat.close();
  });

  const notify = (channel: string, body: string, headers: Record<string, string>) =>
    app.tally.server.inject({ method: "POST", url: `/v1/channels/${channel}/notify`, headers, payload: body });

  async function inbox(status: "rejected" | "duplicate" | "applied") {
    return notificationRows(app, status);
  }

  test("Alipay with Huabei installments: redirect, then the signed notification settles it once", async () => {
    const before = await balances(app, "wallet:store:17");
    const p = await createPayment(app, { methods: ["alipay", "wechat_pay"], amount: 250000 });
    const a = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay", installments: 6 });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.body.channel, "alipay");
    assert.equal(a.body.status, "pending");
    assert.equal(a.body.next_action.type, "redirect");
    assert.ok(a.body.next_action.url.startsWith(alipay.baseUrl()));
    await fetch(a.body.next_action.url); // the payer's browser opens Alipay's cashier
    const biz = alipay.trades.get(a.body.id)!.bizContent as { extend_params?: { hb_fq_num?: string } };
    assert.equal(biz.extend_params?.hb_fq_num, "6");

    alipay.pay(a.body.id);
    const form = alipay.notification(a.body.id);
    const headers = { "content-type": "application/x-www-form-urlencoded; charset=utf-8" };
    const first = await notify("alipay", form, headers);
    assert.equal(first.statusCode, 200);
    assert.equal(first.body, "success");
    const paid = (await app.request("GET", `/v1/payments/${p.id}`)).body;
    assert.equal(paid.status, "succeeded");
    const mid = await balances(app, "wallet:store:17");
    assert.equal(mid.credits_posted - before.credits_posted, 250000);

    const replay = await notify("alipay", form, headers);
    assert.equal(replay.body, "success", "a duplicate is acknowledged so the channel stops sending it");
    assert.deepEqual(await balances(app, "wallet:store:17"), mid, "a duplicate moves no money");
    assert.ok((await inbox("duplicate")).length >= 1);
  });

  test("forged, tampered and malformed Alipay notifications change nothing and are kept", async () => {
    const p = await createPayment(app, { methods: ["alipay"], amount: 8800 });
    const a = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay" });
    await fetch(a.body.next_action.url);
    alipay.pay(a.body.id);
    const before = await balances(app, "wallet:store:17");
    const rejectedBefore = (await inbox("rejected")).length;
    const headers = { "content-type": "application/x-www-form-urlencoded" };
    const forged = alipay.signNotification(alipay.notificationParams(a.body.id), "impostor");
    const tampered = alipay.notification(a.body.id, { total_amount: "0.01" });
    const otherApp = alipay.notification(a.body.id, { app_id: "2021999999999999" });
    for (const body of [forged, tampered, otherApp, "not=a&valid=notification", "%%%garbage", ""]) {
      const res = await notify("alipay", body, headers);
      assert.equal(res.body, "fail", `answered fail to: ${body.slice(0, 60)}`);
    }
    assert.deepEqual(await balances(app, "wallet:store:17"), before);
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "processing");
    const kept = await inbox("rejected");
    assert.equal(kept.length - rejectedBefore, 6, "every refused notification is in the inbox");
    assert.ok(kept.some((r) => r.body === forged), "stored exactly as received");
  });

  test("an Alipay attempt with no notification is settled by the re-query job", async () => {
    const p = await createPayment(app, { methods: ["alipay"], amount: 1234 });
    const a = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay" });
    assert.equal(a.body.status, "pending");
    await fetch(a.body.next_action.url);
    alipay.pay(a.body.id);
    clock.advanceMs(120_000);
    await app.tally.runPaymentJobs();
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "succeeded");
    const r = await app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 234 });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.status, "succeeded");
    assert.ok(alipay.requests.some((q) => q.method === "alipay.trade.refund"));
  });

  test("WeChat Pay native: a QR code, then the signed, encrypted notification settles it", async () => {
    const before = await balances(app, "wallet:store:17");
    const p = await createPayment(app, { methods: ["wechat_pay"], amount: 5000 });
    const a = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "wechat_pay" });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.body.channel, "wechat_pay");
    assert.equal(a.body.next_action.type, "qr_code");
    assert.match(a.body.next_action.qr, /^weixin:\/\//);
    wechat.pay(a.body.id);

    const stale = wechat.notification("TRANSACTION.SUCCESS", wechat.transactionResource(a.body.id), { timestampS: Math.floor(Date.now() / 1000) - 3600 });
    const staleRes = await notify("wechat_pay", stale.body, stale.headers);
    assert.notEqual(staleRes.statusCode, 200, "a stale (replayed) notification is refused");
    const impostor = wechat.notification("TRANSACTION.SUCCESS", wechat.transactionResource(a.body.id), { signer: "impostor" });
    assert.notEqual((await notify("wechat_pay", impostor.body, impostor.headers)).statusCode, 200);
    const wrongKey = wechat.notification("TRANSACTION.SUCCESS", wechat.transactionResource(a.body.id), { apiV3Key: randomBytes(16).toString("hex") });
    assert.notEqual((await notify("wechat_pay", wrongKey.body, wrongKey.headers)).statusCode, 200);
    const cheap = wechat.notification("TRANSACTION.SUCCESS", wechat.transactionResource(a.body.id, { amount: { total: 1, payer_total: 1, currency: "CNY", payer_currency: "CNY" } }));
    assert.notEqual((await notify("wechat_pay", cheap.body, cheap.headers)).statusCode, 200, "an amount that differs from the attempt's is refused");
    assert.deepEqual(await balances(app, "wallet:store:17"), before);

    const good = wechat.notification("TRANSACTION.SUCCESS", wechat.transactionResource(a.body.id));
    const res = await notify("wechat_pay", good.body, good.headers);
    assert.ok(res.statusCode === 200 || res.statusCode === 204, res.body);
    assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "succeeded");
    const after = await balances(app, "wallet:store:17");
    assert.equal(after.credits_posted - before.credits_posted, 5000);
  });

  test("a notification for a channel Tally does not have is 404, and an oversized one 413", async () => {
    const unknown = await notify("paypal", "{}", { "content-type": "application/json" });
    assert.equal(unknown.statusCode, 404);
    const huge = await notify("alipay", "a=".padEnd(70 * 1024, "x"), { "content-type": "application/x-www-form-urlencoded" });
    assert.equal(huge.statusCode, 413);
  });
});
