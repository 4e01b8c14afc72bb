// Browser support for the cashier tests: Debian's chromium driven by playwright-core, a Tally
// listening on a real port (so the page's fetches and redirects are real), and a tiny merchant
// page to return to. A missing chromium fails loudly: these tests are never skipped.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type Page } from "playwright-core";
import { startTestApp, type TestApp } from "../support/app.ts";
import { createMerchantAccount } from "./support.ts";

export const CHROMIUM_PATH = process.env.TALLY_CHROMIUM_PATH ?? "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `The cashier's browser tests need Chromium at ${CHROMIUM_PATH} and it is not there. ` +
        "Install it with: apt-get update && apt-get install -y chromium (or set TALLY_CHROMIUM_PATH). " +
        "These tests are never skipped.",
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

export interface BrowserRig {
  readonly app: TestApp;
  readonly browser: Browser;
  /** Tally's base URL on a real port. */
  readonly baseUrl: string;
  /** The merchant's page payers return to (answers 200 to any path). */
  readonly merchantUrl: string;
  close(): Promise<void>;
}

export async function startBrowserRig(label: string): Promise<BrowserRig> {
  const browser = await launchChromium();
  const merchant: Server = createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(`<!doctype html><title>Merchant</title><h1 id="merchant">Merchant order page</h1><p>${request.url === undefined ? "" : "back"}</p>`);
  });
  await new Promise<void>((resolve) => merchant.listen(0, "127.0.0.1", resolve));
  const merchantUrl = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}`;
  // No fixed publicUrl: listen() makes the real address the base of every checkout_url.
  const app = await startTestApp({ label, config: { publicUrl: undefined } });
  const baseUrl = await app.tally.listen();
  await createMerchantAccount(app);
  return {
    app,
    browser,
    baseUrl,
    merchantUrl,
    async close() {
      await browser.close();
      await app.close();
      await new Promise<void>((resolve) => merchant.close(() => resolve()));
    },
  };
}

/** Creates a payment and answers its checkout_url (absolute, on the real port). */
export async function checkoutUrl(rig: BrowserRig, fields: Record<string, unknown> = {}): Promise<{ id: string; url: string }> {
  const res = await rig.app.request("POST", "/v1/payments", {
    amount: 250000,
    currency: "CNY",
    merchant_account_id: "wallet:store:17",
    description: "定金 / deposit, contract HT-2023-0042",
    return_url: `${rig.merchantUrl}/orders/0001`,
    methods: ["alipay", "wechat_pay", "simulator"],
    ...fields,
  });
  if (res.status !== 201) throw new Error(`creating a payment failed: ${res.status} ${res.text}`);
  return { id: res.body.id, url: res.body.checkout_url };
}

/** Collects what would show a broken page: script errors and console errors (CSP violations among them). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  return errors;
}
