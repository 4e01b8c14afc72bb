// Pay-in through the HTTP API with the simulator channel, on SQLite and PostgreSQL: every status
// PAYMENTS.md names, the ledger postings behind them, and the errors of each transition.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/kernel/clock.ts";
import { DIALECTS } from "../support/databases.ts";
import { startTestApp, type TestApp } from "../support/app.ts";

import { account, attempt, balances, createPayment, nextId } from "../support/payments.ts";

async function events(app: TestApp, type: string) {
  const rows = await app.tally.db.read.selectFrom("outbox_events").selectAll().where("type", "=", type).orderBy("seq").execute();
  return rows.map((r) => ({ ...r, data: JSON.parse(r.data) }));
}

for (const dialect of DIALECTS) {
  describe(`pay-in on ${dialect}`, () => {
    let app: TestApp;
    const clock = new ManualClock(BigInt(Date.UTC(2026, 10, 25)) * 1000n);
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "payin" });
      await account(app, "wallet:store:17");
      await account(app, "wallet:usd", { currency: "USD" });
      await account(app, "bank:debit", { normal_balance: "debit" });
    });
    after(async () => app.close());

    test("a successful attempt posts the amount from the channel's clearing account to the merchant", async () => {
      const before = await balances(app, "wallet:store:17");
      const p = await createPayment(app, { description: "定金 / deposit, contract HT-2023-0042", contract_ref: "HT-2023-0042" });
      assert.equal(p.status, "requires_payment_method");
      assert.equal(p.amount_captured, 0);
      assert.deepEqual(p.attempts, []);
      assert.match(p.checkout_url, /^http:\/\/tally\.test\/checkout\/order-\d+\?secret=cs_[A-Za-z0-9_-]{32}$/);
      const a = await attempt(app, p.id, { outcome: "succeeded" });
      assert.equal(a.status, 201, a.text);
      assert.equal(a.body.status, "succeeded");
      assert.equal(a.body.channel, "simulator");
      assert.equal(a.body.failure, null);
      const got = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(got.status, "succeeded");
      assert.equal(got.amount_captured, 250000);
      assert.equal(got.attempts.length, 1);
      const after = await balances(app, "wallet:store:17");
      assert.equal(after.credits_posted - before.credits_posted, 250000);
      const clearing = await balances(app, "clearing:simulator:CNY");
      assert.ok(clearing.debits_posted >= 250000);
      const succeeded = await events(app, "payment.succeeded");
      assert.ok(succeeded.some((e) => e.data.object.id === p.id && e.data.object.status === "succeeded"));
    });

    test("declined is a user-caused failure; the payment accepts a new attempt that succeeds", async () => {
      const p = await createPayment(app);
      const a = await attempt(app, p.id, { outcome: "declined" });
      assert.equal(a.status, 201);
      assert.equal(a.body.status, "failed");
      assert.deepEqual({ code: a.body.failure.code, user_caused: a.body.failure.user_caused }, { code: "declined", user_caused: true });
      const failed = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(failed.status, "failed");
      assert.equal(failed.failure.code, "declined");
      const again = await attempt(app, p.id, { outcome: "succeeded" });
      assert.equal(again.body.status, "succeeded");
      const done = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(done.status, "succeeded");
      assert.equal(done.failure, null);
      assert.equal(done.attempts.length, 2);
      const late = await attempt(app, p.id, { outcome: "succeeded" });
      assert.equal(late.status, 422);
      assert.equal(late.body.error.code, "invalid_state_transition");
    });

    test("channel_error is a system failure and moves no money", async () => {
      const before = await balances(app, "wallet:store:17");
      const p = await createPayment(app);
      const a = await attempt(app, p.id, { outcome: "channel_error" });
      assert.equal(a.body.status, "failed");
      assert.equal(a.body.failure.code, "channel_error");
      assert.equal(a.body.failure.user_caused, false);
      assert.deepEqual(await balances(app, "wallet:store:17"), before);
    });

    test("a timeout leaves the attempt unknown until the re-query job settles it; nothing else may start meanwhile", async () => {
      const p = await createPayment(app);
      const a = await attempt(app, p.id, { outcome: "timeout", then: "succeeded" });
      assert.equal(a.body.status, "unknown");
      assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.status, "processing");
      const second = await attempt(app, p.id, { outcome: "succeeded" });
      assert.equal(second.status, 409);
      assert.equal(second.body.error.code, "attempt_in_progress");
      const cancel = await app.request("POST", `/v1/payments/${p.id}/cancel`, {});
      assert.equal(cancel.status, 409);
      assert.equal(cancel.body.error.code, "attempt_in_progress");
      clock.advanceMs(60_000);
      await app.tally.runPaymentJobs();
      const settled = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(settled.status, "succeeded");
      assert.equal(settled.attempts[0].status, "succeeded");
    });

    test("a timeout that the channel later reports declined fails the payment", async () => {
      const p = await createPayment(app);
      await attempt(app, p.id, { outcome: "timeout", then: "declined" });
      clock.advanceMs(60_000);
      await app.tally.runPaymentJobs();
      const settled = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(settled.status, "failed");
      assert.equal(settled.failure.code, "declined");
    });

    test("manual capture holds the money; a partial capture posts part and releases the rest", async () => {
      const before = await balances(app, "wallet:store:17");
      const p = await createPayment(app, { capture: "manual", amount: 10000 });
      await attempt(app, p.id, { outcome: "succeeded" });
      const held = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(held.status, "requires_capture");
      assert.equal(held.amount_held, 10000);
      const mid = await balances(app, "wallet:store:17");
      assert.equal(mid.credits_pending - before.credits_pending, 10000);
      assert.equal(mid.credits_posted, before.credits_posted);
      const over = await app.request("POST", `/v1/payments/${p.id}/capture`, { amount: 10001 });
      assert.equal(over.status, 422);
      assert.equal(over.body.error.code, "exceeds_pending_transfer_amount");
      const captured = await app.request("POST", `/v1/payments/${p.id}/capture`, { amount: 7000 });
      assert.equal(captured.status, 200, captured.text);
      assert.equal(captured.body.status, "succeeded");
      assert.equal(captured.body.amount_captured, 7000);
      const end = await balances(app, "wallet:store:17");
      assert.equal(end.credits_pending, before.credits_pending);
      assert.equal(end.credits_posted - before.credits_posted, 7000);
      const twice = await app.request("POST", `/v1/payments/${p.id}/capture`, {});
      assert.equal(twice.status, 422);
      assert.equal(twice.body.error.code, "invalid_state_transition");
    });

    test("cancel of a held payment voids the hold; a canceled payment takes no attempt", async () => {
      const before = await balances(app, "wallet:store:17");
      const p = await createPayment(app, { capture: "manual", amount: 3000 });
      await attempt(app, p.id, { outcome: "succeeded" });
      const canceled = await app.request("POST", `/v1/payments/${p.id}/cancel`);
      assert.equal(canceled.status, 200, canceled.text);
      assert.equal(canceled.body.status, "canceled");
      assert.deepEqual(await balances(app, "wallet:store:17"), before);
      const again = await attempt(app, p.id, { outcome: "succeeded" });
      assert.equal(again.body.error.code, "invalid_state_transition");
      assert.ok((await events(app, "payment.canceled")).some((e) => e.data.object.id === p.id));
    });

    test("a payment expires at expires_at; a pending attempt is closed as expired", async () => {
      const idle = await createPayment(app, { expires_in_seconds: 60 });
      const waiting = await createPayment(app, { expires_in_seconds: 60 });
      const a = await attempt(app, waiting.id, { outcome: "pending" });
      assert.equal(a.body.status, "pending");
      clock.advanceMs(61_000);
      await app.tally.runPaymentJobs();
      const e1 = (await app.request("GET", `/v1/payments/${idle.id}`)).body;
      assert.equal(e1.status, "expired");
      const e2 = (await app.request("GET", `/v1/payments/${waiting.id}`)).body;
      assert.equal(e2.status, "expired");
      assert.equal(e2.attempts[0].status, "failed");
      assert.equal(e2.attempts[0].failure.code, "expired");
      const late = await attempt(app, idle.id, { outcome: "succeeded" });
      assert.equal(late.body.error.code, "invalid_state_transition");
    });

    test("creation is idempotent by id and refuses different fields", async () => {
      const id = nextId("order");
      const body = { id, amount: 500, currency: "CNY", merchant_account_id: "wallet:store:17" };
      const first = await app.request("POST", "/v1/payments", body);
      assert.equal(first.status, 201);
      const again = await app.request("POST", "/v1/payments", body);
      assert.equal(again.status, 200);
      assert.equal(again.body.id, id);
      assert.equal(again.body.checkout_url, first.body.checkout_url);
      const different = await app.request("POST", "/v1/payments", { ...body, amount: 501 });
      assert.equal(different.status, 409);
      assert.equal(different.body.error.code, "exists_with_different_fields");
    });

    test("an Idempotency-Key replays the first answer", async () => {
      const body = { amount: 700, currency: "CNY", merchant_account_id: "wallet:store:17" };
      const headers = { "idempotency-key": `k-${nextId("idem")}` };
      const first = await app.request("POST", "/v1/payments", body, { headers });
      assert.equal(first.status, 201);
      const replay = await app.request("POST", "/v1/payments", body, { headers });
      assert.equal(replay.status, 201);
      assert.equal(replay.headers["idempotent-replayed"], "true");
      assert.equal(replay.body.id, first.body.id);
      const reused = await app.request("POST", "/v1/payments", { ...body, amount: 701 }, { headers });
      assert.equal(reused.status, 409);
      assert.equal(reused.body.error.code, "idempotency_key_reused");
    });

    const invalid: Array<[string, Record<string, unknown>, number, string, string?]> = [
      ["a float amount", { amount: 12.5 }, 400, "validation_failed", "amount"],
      ["a negative amount", { amount: -1 }, 400, "validation_failed", "amount"],
      ["an amount above 2^53 - 1", { amount: "9007199254740993" }, 400, "validation_failed", "amount"],
      ["an amount above the per-payment maximum", { amount: "900000000000000" }, 400, "validation_failed", "amount"],
      ["an unknown field", { colour: "red" }, 400, "validation_failed", "colour"],
      ["an unknown currency", { currency: "XXY" }, 400, "validation_failed", "currency"],
      ["a too short expiry", { expires_in_seconds: 59 }, 400, "validation_failed", "expires_in_seconds"],
      ["an unknown method", { methods: ["paypal"] }, 400, "validation_failed"],
      ["a javascript: return_url", { return_url: "javascript:alert(1)" }, 400, "validation_failed", "return_url"],
      ["an account that does not exist", { merchant_account_id: "nope" }, 422, "credit_account_not_found", "merchant_account_id"],
      ["a debit-normal account", { merchant_account_id: "bank:debit" }, 422, "credit_account_not_found", "merchant_account_id"],
      ["another currency than the account's", { merchant_account_id: "wallet:usd" }, 422, "currency_mismatch", "currency"],
    ];
    for (const [name, fields, status, code, param] of invalid) {
      test(`creation refuses ${name}`, async () => {
        const res = await app.request("POST", "/v1/payments", { amount: 100, currency: "CNY", merchant_account_id: "wallet:store:17", ...fields });
        assert.equal(res.status, status, res.text);
        assert.equal(res.body.error.code, code);
        if (param) assert.equal(res.body.error.param, param);
      });
    }

    test("an attempt with a method the payment does not offer is refused", async () => {
      const p = await createPayment(app, { methods: ["alipay"] });
      const res = await attempt(app, p.id, { outcome: "succeeded" });
      assert.equal(res.status, 422);
      assert.equal(res.body.error.code, "method_not_allowed");
      const bad = await app.request("POST", `/v1/payments/${p.id}/attempts`, { method: "alipay", installments: 5 });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.param, "installments");
    });

    test("a merchant's key sees only its own payments", async () => {
      const { key } = await app.tally.keys.create({ merchantId: "m-other", scopes: ["payments:read", "payments:write", "ledger:write"] });
      const p = await createPayment(app);
      const hidden = await app.request("GET", `/v1/payments/${p.id}`, undefined, { key });
      assert.equal(hidden.status, 404);
      const foreign = await app.request("POST", "/v1/payments", { amount: 100, currency: "CNY", merchant_account_id: "wallet:store:17" }, { key });
      assert.equal(foreign.status, 422, "another merchant's account is as if it did not exist");
      assert.equal(foreign.body.error.code, "credit_account_not_found");
      const list = await app.request("GET", "/v1/payments", undefined, { key });
      assert.deepEqual(list.body.data, []);
      const noScope = await app.tally.keys.create({ merchantId: "m-other", scopes: ["ledger:read"] });
      const forbidden = await app.request("GET", `/v1/payments/${p.id}`, undefined, { key: noScope.key });
      assert.equal(forbidden.status, 403);
    });

    test("the list pages newest first and filters by status", async () => {
      const page1 = await app.request("GET", "/v1/payments?limit=2");
      assert.equal(page1.status, 200);
      assert.equal(page1.body.data.length, 2);
      assert.equal(page1.body.has_more, true);
      const page2 = await app.request("GET", `/v1/payments?limit=2&starting_after=${page1.body.data[1].id}`);
      assert.notEqual(page2.body.data[0].id, page1.body.data[1].id);
      assert.ok(page2.body.data[0].created_at <= page1.body.data[1].created_at);
      const succeeded = await app.request("GET", "/v1/payments?status=succeeded&limit=100");
      assert.ok(succeeded.body.data.length > 0);
      assert.ok(succeeded.body.data.every((p: { status: string }) => p.status === "succeeded"));
    });
  });
}
