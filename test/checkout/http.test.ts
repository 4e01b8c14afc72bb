// The cashier through HTTP as a payer's browser calls it: only the client secret opens a
// payment, merchant strings are escaped, the security headers are on every answer, amounts are
// formatted per locale, and attempts follow the payment's rules.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestApp, type TestApp, type TestResponse } from "../support/app.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { createMerchantAccount, createPayment, type CheckoutPaths } from "./support.ts";

const payer = { key: null } as const;

function assertSecurityHeaders(res: TestResponse, label: string): void {
  assert.equal(res.headers["x-frame-options"], "DENY", label);
  assert.equal(res.headers["referrer-policy"], "no-referrer", label);
  assert.equal(res.headers["x-content-type-options"], "nosniff", label);
  assert.equal(res.headers["cache-control"], "no-store", label);
  assert.match(String(res.headers["content-security-policy"]), /frame-ancestors 'none'/, label);
}

/** The 404 body without its per-request id. */
function notFoundShape(res: TestResponse): unknown {
  return { status: res.status, error: { ...res.body?.error, request_id: undefined } };
}

describe("cashier over HTTP", () => {
  let app: TestApp;
  let clock: ManualClock;
  before(async () => {
    clock = new ManualClock(BigInt(Date.UTC(2023, 2, 24, 8, 0)) * 1000n);
    app = await startTestApp({ clock, label: "checkout" });
    await createMerchantAccount(app);
  });
  after(async () => app.close());

  test("the page shows the description, the amount in zh-CN by default, the methods and the plans", async () => {
    const p = await createPayment(app);
    const res = await app.request("GET", p.page, undefined, payer);
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers["content-type"]), /^text\/html; charset=utf-8/);
    assert.match(res.text, /<html lang="zh-CN">/);
    assert.match(res.text, /<p class="amount" id="amount">¥2,500\.00<\/p>/);
    assert.match(res.text, /定金 \/ deposit, contract HT-2023-0042/);
    for (const label of ["支付宝", "微信支付", "模拟支付"]) assert.ok(res.text.includes(`<span class="method-name">${label}</span>`), label);
    assert.ok(!res.text.includes("云闪付") && !res.text.includes(">银行卡<"), "only the methods the payment offers");
    // ¥2,500.00 at 2.3% = ¥57.50 over 3 periods: 19.17 + 19.17 + 19.16; the first period quoted.
    assert.ok(res.text.includes("¥852.51 × 3期") && res.text.includes("手续费 ¥19.17/期"), "3 periods");
    assert.ok(res.text.includes("¥435.42 × 6期") && res.text.includes("手续费 ¥18.75/期"), "6 periods");
    assert.ok(res.text.includes("¥223.97 × 12期") && res.text.includes("手续费 ¥15.63/期"), "12 periods");
    assert.match(res.text, /<select id="sandbox-outcome" name="outcome"><option value="succeeded">/);
    assert.match(res.text, /id="pay-button"/);
    assert.match(res.text, /请在 3月24日 16:30 前完成支付/, "the deadline in China time (08:00Z + 30 min)");
  });

  test("English by ?lang=en and by Accept-Language; ?lang= wins over the header", async () => {
    const p = await createPayment(app);
    const byQuery = await app.request("GET", `${p.page}&lang=en`, undefined, payer);
    const byHeader = await app.request("GET", p.page, undefined, { key: null, headers: { "accept-language": "en-US,en;q=0.9" } });
    for (const res of [byQuery, byHeader]) {
      assert.equal(res.status, 200);
      assert.match(res.text, /<html lang="en">/);
      assert.match(res.text, /<p class="amount" id="amount">CN¥2,500\.00<\/p>/);
      assert.ok(res.text.includes('<span class="method-name">Alipay</span>') && res.text.includes('<span class="method-name">WeChat Pay</span>'));
      assert.ok(res.text.includes("3 × CN¥852.51") && res.text.includes("fee CN¥19.17/mo"));
      assert.match(res.text, /Please pay before Mar 24, 16:30 \(UTC\+8\)/);
    }
    const zh = await app.request("GET", `${p.page}&lang=zh-CN`, undefined, { key: null, headers: { "accept-language": "en" } });
    assert.match(zh.text, /<html lang="zh-CN">/);
    assert.match(zh.text, /¥2,500\.00/);
  });

  test("only the payment's own secret opens it; everything else is the same 404", async () => {
    const p = await createPayment(app);
    const other = await createPayment(app);
    const wrongs = [
      `/checkout/${p.id}`,
      `/checkout/${p.id}?secret=`,
      `/checkout/${p.id}?secret=${other.secret}`,
      `/checkout/${p.id}?secret=${p.secret}x`,
      `/checkout/${p.id}?secret=${p.secret}&secret=${p.secret}`,
      `/checkout/pay_unknown?secret=${p.secret}`,
      `/checkout/${encodeURIComponent("<script>")}?secret=x`,
    ];
    const pages = [];
    for (const url of wrongs) {
      const res = await app.request("GET", url, undefined, payer);
      assert.equal(res.status, 404, url);
      assertSecurityHeaders(res, url);
      assert.ok(!res.text.includes(p.id) && !res.text.includes("2,500"), `${url} shows nothing of the payment`);
      pages.push(res.text.replace(/nonce-[^']+'|nonce="[^"]+"/g, "nonce"));
    }
    assert.equal(new Set(pages).size, 1, "one answer for every wrong secret and unknown payment");
    assert.match(pages[0]!, /找不到这笔订单/);

    const statuses = [];
    for (const url of wrongs) {
      const [path, query = ""] = url.split("?");
      const res = await app.request("GET", `${path}/status?${query}`, undefined, payer);
      assertSecurityHeaders(res, url);
      statuses.push(notFoundShape(res));
      // The secret is checked before the body: a wrong secret with a bad body is still a 404.
      const attempt = await app.request("POST", `${path}/attempts?${query}`, { method: "bitcoin" }, payer);
      assert.deepEqual(notFoundShape(attempt), notFoundShape(res), url);
    }
    assert.deepEqual(statuses[0], { status: 404, error: { code: "not_found", message: "no such checkout", request_id: undefined } });
    assert.equal(new Set(statuses.map((s) => JSON.stringify(s))).size, 1);

    // A merchant key opens nothing here: the cashier knows only client secrets.
    const withKey = await app.request("GET", `/checkout/${p.id}/status`);
    assert.equal(withKey.status, 404);
    assert.equal((await app.request("GET", other.status, undefined, payer)).status, 200);
  });

  test("security headers, and a CSP nonce that only the page's own script carries", async () => {
    const p = await createPayment(app);
    const res = await app.request("GET", p.page, undefined, payer);
    assertSecurityHeaders(res, "page");
    const csp = String(res.headers["content-security-policy"]);
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    assert.ok(nonce, csp);
    assert.match(csp, /default-src 'none'/);
    assert.ok(!csp.includes("unsafe-inline") && !csp.includes("http"), "no inline allowance, no external origins");
    const scripts = [...res.text.matchAll(/<script([^>]*)>/g)].map((m) => m[1]!.trim());
    assert.deepEqual(scripts, ['type="application/json" id="cashier-data"', `nonce="${nonce}"`]);
    assert.ok(!/\s(src|href)="(https?:)?\/\/(?!merchant\.example)/.test(res.text), "no external assets");
    assert.ok(!/\sstyle="/.test(res.text) && !/\son[a-z]+="/.test(res.text), "no inline style or handler attributes");
    const second = await app.request("GET", p.page, undefined, payer);
    assert.notEqual(String(second.headers["content-security-policy"]), csp, "a fresh nonce per response");
    assertSecurityHeaders(await app.request("GET", p.status, undefined, payer), "status");
  });

  test("hostile merchant strings are escaped; a javascript: return_url is never a link", async () => {
    const p = await createPayment(app, { description: `<script>alert(1)</script><img src=x onerror=alert(2)>"'&` });
    await app.tally.db.kysely.updateTable("payments").set({ return_url: "javascript:alert(3)//https://x" }).where("id", "=", p.id).execute();
    const res = await app.request("GET", p.page, undefined, payer);
    assert.equal(res.status, 200);
    assert.ok(res.text.includes("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;"));
    assert.ok(!res.text.includes("<script>alert(1)") && !res.text.includes("<img src=x"));
    assert.ok(!/javascript:/i.test(res.text), "the javascript: URL appears nowhere, not as a link nor in the page data");
    assert.ok(!res.text.includes('class="leave"') && !res.text.includes('id="return-link"'));
    const status = await app.request("GET", p.status, undefined, payer);
    assert.equal(status.body.return_url, null);
  });

  test("status JSON: status, amount, currency, failure, latest attempt, return_url", async () => {
    const p = await createPayment(app);
    const fresh = await app.request("GET", p.status, undefined, payer);
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.body, { status: "requires_payment_method", amount: 250000, currency: "CNY", failure: null, latest_attempt: null, return_url: "https://merchant.example/orders/0001" });
    const declined = await app.request("POST", p.attempts, { method: "simulator", simulator: { outcome: "declined" } }, payer);
    assert.equal(declined.status, 201, declined.text);
    const failed = await app.request("GET", p.status, undefined, payer);
    assert.equal(failed.body.status, "failed");
    assert.deepEqual(failed.body.failure, { code: "declined", user_caused: true });
    assert.equal(failed.body.latest_attempt.id, declined.body.id);
    assert.equal(failed.body.latest_attempt.status, "failed");
  });

  test("attempts: declined, then a retry succeeds; a paid payment cannot be paid twice", async () => {
    const p = await createPayment(app);
    const declined = await app.request("POST", p.attempts, { method: "simulator", simulator: { outcome: "declined" } }, payer);
    assert.equal(declined.status, 201);
    assert.equal(declined.body.status, "failed");
    assert.equal(declined.body.failure.code, "declined");
    const failedPage = await app.request("GET", p.page, undefined, payer);
    assert.match(failedPage.text, /<div id="notice" class="notice" role="alert">/);
    assert.ok(failedPage.text.includes("银行或支付机构拒绝了这笔付款"));
    assert.ok(failedPage.text.includes('<span id="pay-label">重新支付</span>'));

    const paid = await app.request("POST", p.attempts, { method: "simulator", simulator: { outcome: "succeeded" } }, payer);
    assert.equal(paid.status, 201, paid.text);
    assert.equal(paid.body.status, "succeeded");
    assert.equal((await app.request("GET", p.status, undefined, payer)).body.status, "succeeded");
    const page = await app.request("GET", p.page, undefined, payer);
    assert.ok(page.text.includes('<h2 id="done-title">支付成功</h2>'));
    assert.ok(!page.text.includes('id="pay-button"') && !page.text.includes('id="pay-form"'), "no pay button");
    assert.ok(page.text.includes('<a id="return-link" class="button primary" href="https://merchant.example/orders/0001">返回商户</a>'));
    const twice = await app.request("POST", p.attempts, { method: "simulator" }, payer);
    assert.equal(twice.status, 422);
    assert.equal(twice.body.error.code, "invalid_state_transition");
    const payment = await app.request("GET", `/v1/payments/${p.id}`);
    assert.equal(payment.body.attempts.length, 2);
    assert.equal(payment.body.amount_captured, 250000);
  });

  test("attempts: one in flight at a time, only offered methods, installments passed on", async () => {
    const p = await createPayment(app);
    const pending = await app.request("POST", p.attempts, { method: "simulator", simulator: { outcome: "pending" } }, payer);
    assert.equal(pending.status, 201);
    assert.equal(pending.body.status, "pending");
    assert.deepEqual(pending.body.next_action, { type: "none" });
    const inFlight = await app.request("POST", p.attempts, { method: "simulator" }, payer);
    assert.equal(inFlight.status, 409);
    assert.equal(inFlight.body.error.code, "attempt_in_progress");
    assert.match((await app.request("GET", p.page, undefined, payer)).text, /<section id="waiting-section" class="state" aria-live="polite">/);

    const q = await createPayment(app);
    const card = await app.request("POST", q.attempts, { method: "card" }, payer);
    assert.equal(card.status, 422);
    assert.equal(card.body.error.code, "method_not_allowed");
    assertSecurityHeaders(card, "error answer");
    const invalid = await app.request("POST", q.attempts, { method: "alipay", installments: 5 }, payer);
    assert.equal(invalid.status, 400);
    const huabei = await app.request("POST", q.attempts, { method: "alipay", installments: 6 }, payer);
    assert.equal(huabei.status, 201, huabei.text);
    assert.equal(huabei.body.installments, 6);
    assert.equal(huabei.body.method, "alipay");
  });

  test("no sandbox selector or plans where the payment does not offer them", async () => {
    const p = await createPayment(app, { methods: ["wechat_pay", "unionpay", "card"] });
    const res = await app.request("GET", p.page, undefined, payer);
    assert.ok(!res.text.includes('id="sandbox-outcome"') && !res.text.includes('id="plans"'));
    for (const label of ["微信支付", "云闪付", "银行卡"]) assert.ok(res.text.includes(`<span class="method-name">${label}</span>`), label);
  });

  test("an expired or canceled payment says so and offers no pay button", async () => {
    const expiring = await createPayment(app, { expires_in_seconds: 60 });
    const canceled = await createPayment(app);
    assert.equal((await app.request("POST", `/v1/payments/${canceled.id}/cancel`, {})).status, 200);
    clock.advanceMs(61_000);
    const expiredPage = await app.request("GET", expiring.page, undefined, payer);
    assert.equal(expiredPage.status, 200);
    assert.ok(expiredPage.text.includes('<h2 id="done-title">订单已过期</h2>'));
    assert.ok(!expiredPage.text.includes('id="pay-button"'));
    assert.equal((await app.request("GET", expiring.status, undefined, payer)).body.status, "expired");
    const late = await app.request("POST", expiring.attempts, { method: "simulator" }, payer);
    assert.equal(late.status, 422);
    assert.equal(late.body.error.code, "invalid_state_transition");
    const canceledPage = await app.request("GET", `${canceled.page}&lang=en`, undefined, payer);
    assert.ok(canceledPage.text.includes('<h2 id="done-title">Payment canceled</h2>'));
    assert.ok(!canceledPage.text.includes('id="pay-button"'));
  });
});

describe("cashier amounts in other currencies", () => {
  let app: TestApp;
  let p: CheckoutPaths;
  before(async () => {
    app = await startTestApp({ label: "checkout-usd" });
    assert.equal((await app.request("POST", "/v1/ledger/accounts", { id: "wallet:usd", currency: "USD" })).status, 201);
    p = await createPayment(app, { amount: 1999, currency: "USD", merchant_account_id: "wallet:usd" });
  });
  after(async () => app.close());

  test("USD in both locales, and no Huabei plans outside CNY", async () => {
    const zh = await app.request("GET", p.page, undefined, payer);
    const en = await app.request("GET", `${p.page}&lang=en`, undefined, payer);
    assert.match(zh.text, /id="amount">US\$19\.99</);
    assert.match(en.text, /id="amount">\$19\.99</);
    assert.ok(!zh.text.includes('id="plans"'));
  });
});
