// Helpers for escrow tests: agreements through the HTTP API and the ledger check that follows
// every step.
import assert from "node:assert/strict";
import type { TestApp } from "./app.ts";

const BANK = "demo-bank";
const payer = (name: string) => ({ name, id_number: "11010519491231002X", phone: "13812345678" });
const payee = { name: "李四", bank_account_number: "6222020200112233445", account_name: "李四" };

export async function createAgreement(app: TestApp, id: string, amountDue: number, extra: Record<string, unknown> = {}) {
  const res = await app.request("POST", "/v1/agreements", { id, contract_ref: `HT-${id}`, amount_due: amountDue, currency: "CNY", custody_bank: BANK, payer: payer("王小明"), payee, ...extra });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** Debits = credits over the whole ledger, and each escrow account holds what its agreement says. */
export async function assertLedgerAgrees(app: TestApp) {
  const totals = await app.tally.db.read
    .selectFrom("ledger_accounts")
    .select((eb) => [eb.fn.sum<string>("debits_posted").as("dp"), eb.fn.sum<string>("credits_posted").as("cp"), eb.fn.sum<string>("debits_pending").as("dn"), eb.fn.sum<string>("credits_pending").as("cn")])
    .executeTakeFirstOrThrow();
  assert.equal(String(totals.dp), String(totals.cp), "posted debits = posted credits");
  assert.equal(String(totals.dn), String(totals.cn), "pending debits = pending credits");
  const agreements = (await app.request("GET", "/v1/agreements?limit=100")).body.data;
  for (const a of agreements) {
    const escrow = (await app.request("GET", `/v1/ledger/accounts/${a.escrow_account_id}`)).body;
    assert.equal(escrow.credits_posted - escrow.debits_posted, a.amount_received - a.amount_released - a.amount_refunded - a.amount_converted, `escrow of ${a.id}`);
    assert.equal(escrow.debits_pending, a.amount_pending, `held on the escrow of ${a.id}`);
  }
}

