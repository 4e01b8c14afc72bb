// Helpers for payment tests: accounts, payments and attempts through the HTTP API.
import assert from "node:assert/strict";
import type { TestApp } from "./app.ts";
import { NOTIFICATION_PURPOSE } from "../../src/payments/notifications.ts";

let seq = 0;
export const nextId = (prefix: string) => `${prefix}-${++seq}`;

export async function account(app: TestApp, id: string, fields: Record<string, unknown> = {}) {
  const res = await app.request("POST", "/v1/ledger/accounts", { id, currency: "CNY", ...fields });
  assert.equal(res.status, 201, res.text);
}

export async function balances(app: TestApp, id: string) {
  const res = await app.request("GET", `/v1/ledger/accounts/${id}`);
  assert.equal(res.status, 200, res.text);
  return res.body as { debits_pending: number; debits_posted: number; credits_pending: number; credits_posted: number };
}

export async function createPayment(app: TestApp, fields: Record<string, unknown> = {}) {
  const res = await app.request("POST", "/v1/payments", { id: nextId("order"), amount: 250000, currency: "CNY", merchant_account_id: "wallet:store:17", ...fields });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

export async function attempt(app: TestApp, paymentId: string, simulator: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return app.request("POST", `/v1/payments/${paymentId}/attempts`, { method: "simulator", simulator, ...extra });
}


/** The notification inbox's rows, each with its body opened from the vault's seal as the inbox reads it. */
export async function notificationRows(app: TestApp, status?: string) {
  let query = app.tally.db.read.selectFrom("channel_notifications").selectAll();
  if (status !== undefined) query = query.where("status", "=", status as "applied");
  const rows = await query.orderBy("id").execute();
  return rows.map((r) => ({ ...r, stored: r.body, body: r.sealed_body === null ? r.body : app.tally.vault.openDocument(NOTIFICATION_PURPOSE, r.sealed_body).toString("utf8") }));
}
