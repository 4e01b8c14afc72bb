// The ledger's basic flows through the HTTP API, on SQLite and on PostgreSQL.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { DIALECTS } from "../support/databases.ts";
import { startTestApp, type TestApp } from "../support/app.ts";

for (const dialect of DIALECTS) {
  describe(`ledger basics on ${dialect}`, () => {
    let app: TestApp;
    before(async () => {
      app = await startTestApp({ dialect, label: "basics" });
      for (const account of [
        { id: "bank", currency: "CNY", normal_balance: "debit" },
        { id: "wallet", currency: "CNY", flags: { debits_must_not_exceed_credits: true } },
      ]) {
        const res = await app.request("POST", "/v1/ledger/accounts", account);
        assert.equal(res.status, 201, res.text);
      }
    });
    after(async () => app.close());

    test("a transfer moves money and both balances follow", async () => {
      const res = await app.request("POST", "/v1/ledger/transfers", {
        id: "t1", debit_account_id: "bank", credit_account_id: "wallet", amount: 1250, currency: "CNY",
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.status, "posted");
      assert.match(res.body.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
      const wallet = (await app.request("GET", "/v1/ledger/accounts/wallet")).body;
      assert.equal(wallet.credits_posted, 1250);
      assert.equal(wallet.balance, 1250);
      const bank = (await app.request("GET", "/v1/ledger/accounts/bank")).body;
      assert.equal(bank.debits_posted, 1250);
      assert.equal(bank.balance, 1250, "a debit-normal account's balance is debits - credits");
    });

    test("a hold, partially posted, releases the rest", async () => {
      const batch = await app.request("POST", "/v1/ledger/transfers/batch", {
        transfers: [
          { id: "h1", debit_account_id: "wallet", credit_account_id: "bank", amount: 500, currency: "CNY", pending: true },
          { id: "p1", post_pending_id: "h1", amount: 300 },
        ],
      });
      assert.equal(batch.status, 200, batch.text);
      assert.deepEqual(batch.body.results, [{ id: "h1", result: "created" }, { id: "p1", result: "created" }]);
      const wallet = (await app.request("GET", "/v1/ledger/accounts/wallet")).body;
      assert.deepEqual(
        [wallet.debits_pending, wallet.debits_posted, wallet.credits_posted, wallet.balance, wallet.available],
        [0, 300, 1250, 950, 950],
      );
      assert.equal((await app.request("GET", "/v1/ledger/transfers/h1")).body.status, "posted");
    });

    test("the batch answer names each transfer by its id as sent, for every character an id may hold; an id that would need escaping is refused", async () => {
      for (const id of ["ids-from", "ids-to"]) assert.equal((await app.request("POST", "/v1/ledger/accounts", { id, currency: "CNY" })).status, 201);
      const ids = ["Az09_.:-", "x".repeat(64), "a:b.c-d_e", "-", "."];
      const batch = await app.request("POST", "/v1/ledger/transfers/batch", {
        transfers: ids.map((id) => ({ id, debit_account_id: "ids-from", credit_account_id: "ids-to", amount: 1, currency: "CNY" })),
      });
      assert.equal(batch.status, 200, batch.text);
      assert.deepEqual(JSON.parse(batch.text).results, ids.map((id) => ({ id, result: "created" })));
      for (const id of ['a"b', "a\\b", "a\u0001b", "a b", "ü", "a</script>"]) {
        const res = await app.request("POST", "/v1/ledger/transfers/batch", {
          transfers: [{ id, debit_account_id: "ids-from", credit_account_id: "ids-to", amount: 1, currency: "CNY" }],
        });
        assert.equal(res.status, 400, `${JSON.stringify(id)}: ${res.text}`);
        assert.equal(res.body.error.code, "validation_failed");
      }
      assert.equal((await app.request("GET", "/v1/ledger/accounts/ids-to")).body.credits_posted, ids.length);
    });

    test("an overdraft of a flagged account is refused and changes nothing", async () => {
      const res = await app.request("POST", "/v1/ledger/transfers", {
        id: "t-over", debit_account_id: "wallet", credit_account_id: "bank", amount: 951, currency: "CNY",
      });
      assert.equal(res.status, 422);
      assert.equal(res.body.error.code, "exceeds_credits");
      assert.equal((await app.request("GET", "/v1/ledger/accounts/wallet")).body.balance, 950);
      assert.equal((await app.request("GET", "/v1/ledger/transfers/t-over")).status, 404);
    });

    test("history lists newest first with balance_after, and pages", async () => {
      const first = await app.request("GET", "/v1/ledger/accounts/wallet/transfers?limit=2");
      assert.equal(first.status, 200);
      assert.deepEqual(first.body.data.map((t: any) => t.id), ["p1", "h1"]);
      assert.equal(first.body.has_more, true);
      assert.equal(first.body.data[1].balance_after.debits_pending, 500);
      const second = await app.request("GET", "/v1/ledger/accounts/wallet/transfers?limit=2&starting_after=h1");
      assert.deepEqual(second.body.data.map((t: any) => t.id), ["t1"]);
      assert.equal(second.body.has_more, false);
    });
  });
}
