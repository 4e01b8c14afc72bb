// The cashier in a real browser (Chromium via playwright-core, on a real port): paying with the
// simulator, a decline then a retry, a pending payment settled by the channel's notification,
// both languages, a phone viewport, and finished payments that offer nothing to pay.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { checkoutUrl, startBrowserRig, watchErrors, type BrowserRig } from "./browser.ts";

const SHOTS = join("test-output", "cashier");

const PHONE = { width: 375, height: 667 };

describe("cashier in a browser", () => {
  let rig: BrowserRig;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];

  before(async () => {
    rig = await startBrowserRig("checkout-browser");
  });
  after(async () => rig?.close());

  async function open(url: string, options: { locale?: string; viewport?: { width: number; height: number } } = {}): Promise<void> {
    context = await rig.browser.newContext({ locale: options.locale ?? "zh-CN", viewport: options.viewport ?? { width: 1280, height: 800 } });
    page = await context.newPage();
    errors = watchErrors(page);
    const response = await page.goto(url);
    assert.equal(response?.status(), 200);
  }

  /** Keeps a screenshot of the page's state in the test output (test-output/cashier/). */
  async function snap(name: string): Promise<void> {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  async function done(): Promise<void> {
    assert.deepEqual(errors, [], "no script errors and no CSP violations");
    await context.close();
  }

  async function choose(method: string, outcome?: string): Promise<void> {
    await page.locator(`label.method[data-method="${method}"]`).click();
    if (outcome) await page.selectOption("#sandbox-outcome", outcome);
  }

  test("pays with the simulator, shows success and returns to the merchant", async () => {
    const { url } = await checkoutUrl(rig);
    await open(url);
    await snap("01-open-zh-CN");
    assert.equal(await page.textContent("#amount"), "¥2,500.00");
    assert.equal(await page.isVisible("#sandbox-outcome"), false, "the sandbox selector shows only for the simulator");
    await choose("simulator", "succeeded");
    assert.equal(await page.isVisible("#plans"), false, "installment plans show only for Alipay");
    await page.click("#pay-button");
    await page.waitForSelector("#done-title:has-text('支付成功')");
    await snap("02-succeeded");
    assert.equal(await page.locator("#pay-button").count(), 0, "the pay button is gone");
    await page.waitForSelector("#countdown:has-text('秒后自动返回商户')");
    await page.waitForURL(`${rig.merchantUrl}/orders/0001`, { timeout: 10_000 });
    assert.equal(await page.textContent("#merchant"), "Merchant order page");
    await done();
  });

  test("a declined payment says why in plain words; trying again succeeds", async () => {
    const { id, url } = await checkoutUrl(rig);
    await open(url);
    await choose("simulator", "declined");
    await page.click("#pay-button");
    await page.waitForSelector("#notice:visible");
    assert.match((await page.textContent("#notice-text"))!, /银行或支付机构拒绝了这笔付款/);
    await snap("03-declined-retry");
    assert.equal(await page.textContent("#pay-label"), "重新支付");
    assert.equal(await page.isEnabled("#pay-button"), true);
    await choose("simulator", "succeeded");
    await page.click("#pay-button");
    await page.waitForSelector("#done-title:has-text('支付成功')");
    const payment = await rig.app.request("GET", `/v1/payments/${id}`);
    assert.equal(payment.body.status, "succeeded");
    assert.deepEqual(payment.body.attempts.map((a: { status: string }) => a.status), ["failed", "succeeded"]);
    await done();
  });

  test("a pending payment waits, and the page picks up the channel's notification", async () => {
    const { id, url } = await checkoutUrl(rig);
    await open(url);
    await choose("simulator", "pending");
    await page.click("#pay-button");
    await page.waitForSelector("#waiting-section:visible");
    assert.equal(await page.textContent("#waiting-title"), "正在确认支付结果");
    await snap("04-pending");
    const payment = await rig.app.request("GET", `/v1/payments/${id}`);
    assert.equal(payment.body.status, "processing");
    const attemptId = payment.body.attempts[0].id as string;
    // The channel's notification arrives over the network, as a real one would.
    const notify = await fetch(`${rig.baseUrl}/v1/channels/simulator/notify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ attempt_id: attemptId, outcome: "succeeded" }),
    });
    assert.equal(notify.status, 200, await notify.text());
    await page.waitForSelector("#done-title:has-text('支付成功')", { timeout: 10_000 });
    assert.equal(await page.isVisible("#waiting-section"), false);
    await done();
  });

  test("English by ?lang=en and by the browser's language; Chinese by default", async () => {
    const { url } = await checkoutUrl(rig);
    await open(`${url}&lang=en`);
    assert.equal(await page.textContent("#amount"), "CN¥2,500.00");
    assert.equal(await page.getAttribute("html", "lang"), "en");
    assert.equal(await page.textContent("label.method[data-method='alipay'] .method-name"), "Alipay");
    assert.equal(await page.isVisible("#plans"), true, "Alipay is chosen first and shows its plans");
    assert.match((await page.textContent("#plans"))!, /3 × CN¥852\.51.*fee CN¥19\.17\/mo/);
    await snap("05-open-en-installments");
    await choose("simulator", "channel_error");
    await page.click("#pay-button");
    await page.waitForSelector("#notice:visible");
    assert.match((await page.textContent("#notice-text"))!, /payment service had a problem and you were not charged/);
    assert.equal(await page.textContent("#pay-label"), "Try again");
    await done();

    await open(url, { locale: "en-US" });
    assert.equal(await page.textContent("#amount"), "CN¥2,500.00");
    await page.click("a.lang");
    await page.waitForSelector("html[lang='zh-CN']");
    assert.equal(await page.textContent("#amount"), "¥2,500.00");
    assert.equal(await page.textContent("label.method[data-method='alipay'] .method-name"), "支付宝");
    await done();
  });

  test("a phone (375 × 667) needs no horizontal scrolling, in both languages", async () => {
    const long = "二手房定金 / deposit for apartment 3-1702, contract HT-2023-0042-SUPPLEMENTARY-AGREEMENT-NO-0000000000000001";
    const { url } = await checkoutUrl(rig, { description: long, methods: ["alipay", "wechat_pay", "unionpay", "card", "simulator"] });
    for (const lang of ["zh-CN", "en"]) {
      await open(`${url}&lang=${lang}`, { viewport: PHONE });
      // A string expression: it runs in the page, where the DOM types this project does not load live.
      const width = (await page.evaluate("({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })")) as { scroll: number; client: number };
      assert.ok(width.scroll <= width.client, `${lang}: content ${width.scroll} px wide in a ${width.client} px viewport`);
      const button = await page.locator("#pay-button").boundingBox();
      assert.ok(button && button.height >= 44 && button.x >= 0 && button.x + button.width <= PHONE.width, `${lang}: a thumb-sized pay button on screen`);
      await choose("simulator");
      assert.equal(await page.isVisible("#sandbox-outcome"), true);
      await done();
    }
  });

  test("finished payments say so and offer no pay button", async () => {
    const canceled = await checkoutUrl(rig);
    assert.equal((await rig.app.request("POST", `/v1/payments/${canceled.id}/cancel`, {})).status, 200);
    await open(canceled.url);
    assert.equal(await page.textContent("#done-title"), "订单已取消");
    await snap("06-canceled");
    assert.equal(await page.locator("#pay-button").count(), 0);
    await done();

    const expired = await checkoutUrl(rig);
    await rig.app.tally.db.kysely.updateTable("payments").set({ expires_at: BigInt(Date.now() - 1000) * 1000n }).where("id", "=", expired.id).execute();
    await open(`${expired.url}&lang=en`);
    assert.equal(await page.textContent("#done-title"), "Payment expired");
    await snap("07-expired-en");
    assert.equal(await page.locator("#pay-button").count(), 0);
    assert.equal(await page.getAttribute("#return-link", "href"), `${rig.merchantUrl}/orders/0001`);
    await done();

    const paid = await checkoutUrl(rig);
    const attempt = await rig.app.request("POST", `/v1/payments/${paid.id}/attempts`, { method: "simulator" });
    assert.equal(attempt.body.status, "succeeded");
    await open(paid.url);
    assert.equal(await page.textContent("#done-title"), "支付成功");
    assert.equal(await page.locator("#pay-button").count(), 0);
    // Opened after the fact: no automatic return, the payer chooses.
    await page.waitForTimeout(500);
    assert.equal(await page.isVisible("#countdown"), false);
    await done();
  });
});
