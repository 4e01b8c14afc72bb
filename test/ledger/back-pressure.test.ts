// Back-pressure: past the engine's queue limit, requests are refused with 503 unavailable and
// Retry-After instead of queueing without bound; nothing refused is applied, nothing accepted lost.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startTestApp, type TestApp } from "../support/app.ts";

let app: TestApp;
before(async () => {
  app = await startTestApp({ limits: { engineQueueTransfersMax: 10 } });
  for (const account of [{ id: "bank", currency: "CNY", normal_balance: "debit" }, { id: "wallet", currency: "CNY" }]) {
    assert.equal((await app.request("POST", "/v1/ledger/accounts", account)).status, 201);
  }
});
after(async () => app.close());

test("a full engine queue answers 503 with Retry-After, and loses nothing", async () => {
  const ids = Array.from({ length: 60 }, (_, i) => `bp-${i}`);
  // Sent together, the requests reach the engine before its first batch runs, so the queue fills.
  const responses = await Promise.all(
    ids.map((id) => app.request("POST", "/v1/ledger/transfers", { id, debit_account_id: "bank", credit_account_id: "wallet", amount: 1, currency: "CNY" })),
  );
  const accepted = ids.filter((_, i) => responses[i]!.status === 201);
  const refused = responses.filter((r) => r.status === 503);
  assert.equal(accepted.length + refused.length, ids.length, "every request is either applied or refused");
  assert.ok(accepted.length >= 1 && accepted.length <= 10, `at most the queue limit is accepted at once (got ${accepted.length})`);
  assert.ok(refused.length >= 50);
  for (const r of refused) {
    assert.equal(r.body.error.code, "unavailable");
    assert.equal(r.headers["retry-after"], "1");
  }
  const wallet = (await app.request("GET", "/v1/ledger/accounts/wallet")).body;
  assert.equal(wallet.credits_posted, accepted.length, "exactly the accepted transfers were applied");
  for (const [i, id] of ids.entries()) {
    const got = await app.request("GET", `/v1/ledger/transfers/${id}`);
    assert.equal(got.status, responses[i]!.status === 201 ? 200 : 404, id);
  }
  // Once the queue drains, the refused requests succeed when retried with the same ids.
  const retried = await app.request("POST", "/v1/ledger/transfers", { id: "bp-59", debit_account_id: "bank", credit_account_id: "wallet", amount: 1, currency: "CNY" });
  assert.ok(retried.status === 201 || retried.status === 200, retried.text);
});
