// Helpers for the cashier tests: a merchant account and payments made through the API, and the
// cashier URLs a payer would open (paths, without the test host).
import assert from "node:assert/strict";
import type { TestApp } from "../support/app.ts";

export const MERCHANT_ACCOUNT = "wallet:store:17";

export async function createMerchantAccount(app: TestApp): Promise<void> {
  const res = await app.request("POST", "/v1/ledger/accounts", { id: MERCHANT_ACCOUNT, currency: "CNY" });
  assert.equal(res.status, 201, res.text);
}

export interface CheckoutPaths {
  readonly id: string;
  readonly secret: string;
  /** `/checkout/{id}?secret=...` */
  readonly page: string;
  readonly status: string;
  readonly attempts: string;
}

export async function createPayment(app: TestApp, fields: Record<string, unknown> = {}): Promise<CheckoutPaths> {
  const res = await app.request("POST", "/v1/payments", {
    amount: 250000,
    currency: "CNY",
    merchant_account_id: MERCHANT_ACCOUNT,
    description: "定金 / deposit, contract HT-2023-0042",
    return_url: "https://merchant.example/orders/0001",
    methods: ["alipay", "wechat_pay", "simulator"],
    ...fields,
  });
  assert.equal(res.status, 201, res.text);
  const url = new URL(res.body.checkout_url as string);
  const secret = url.searchParams.get("secret")!;
  const base = url.pathname;
  assert.equal(base, `/checkout/${encodeURIComponent(res.body.id)}`);
  const q = `secret=${encodeURIComponent(secret)}`;
  return { id: res.body.id, secret, page: `${base}?${q}`, status: `${base}/status?${q}`, attempts: `${base}/attempts?${q}` };
}
