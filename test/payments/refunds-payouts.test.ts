// Refunds and payouts through the HTTP API on SQLite and PostgreSQL: holds, posts, voids and
// returns in the ledger; the limits that keep money from being spent twice, also concurrently;
// payout destinations encrypted at rest and shown masked.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/kernel/clock.ts";
import { DIALECTS } from "../support/databases.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { account, attempt, balances, createPayment } from "../support/payments.ts";

const destination = { bank_account_number: "6222 0212 3456 7893 445", account_name: "张三" };

async function paidPayment(app: TestApp, amount = 10000) {
  const p = await createPayment(app, { amount });
  const a = await attempt(app, p.id, { outcome: "succeeded" });
  assert.equal(a.body.status, "succeeded", a.text);
  return p;
}

for (const dialect of DIALECTS) {
  describe(`refunds and payouts on ${dialect}`, () => {
    let app: TestApp;
    const clock = new ManualClock(BigInt(Date.UTC(2026, 10, 25)) * 1000n);
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "refunds" });
      await account(app, "wallet:store:17");
      await account(app, "wallet:empty", { flags: { debits_must_not_exceed_credits: true } });
    });
    after(async () => app.close());

    test("a refund holds on the merchant account, then posts when the channel confirms", async () => {
      const p = await paidPayment(app);
      const before = await balances(app, "wallet:store:17");
      const r = await app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 4000, reason: "buyer withdrew" });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.body.status, "succeeded");
      assert.equal(r.body.payment_id, p.id);
      const after = await balances(app, "wallet:store:17");
      assert.equal(after.debits_posted - before.debits_posted, 4000);
      assert.equal(after.debits_pending, before.debits_pending);
      const payment = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(payment.amount_refunded, 4000);
      assert.equal(payment.status, "succeeded", "refunds do not change the payment's status");
      const got = await app.request("GET", `/v1/refunds/${r.body.id}`);
      assert.equal(got.body.status, "succeeded");
    });

    test("refunds never exceed what was captured, also when requested at once", async () => {
      const p = await paidPayment(app, 10000);
      const tries = await Promise.all(Array.from({ length: 6 }, () => app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 3000 })));
      const ok = tries.filter((t) => t.status === 201);
      const refused = tries.filter((t) => t.status === 422);
      assert.equal(ok.length, 3, tries.map((t) => t.text).join("\n"));
      assert.equal(refused.length, 3);
      for (const t of refused) assert.equal(t.body.error.code, "refund_exceeds_captured");
      const payment = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(payment.amount_refunded, 9000);
      const rest = await app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 1001 });
      assert.equal(rest.body.error.code, "refund_exceeds_captured");
      const last = await app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 1000 });
      assert.equal(last.status, 201);
    });

    test("a refund of a payment that captured nothing is refused", async () => {
      const p = await createPayment(app);
      const r = await app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 1 });
      assert.equal(r.status, 422);
      assert.equal(r.body.error.code, "refund_exceeds_captured");
    });

    test("a refund the merchant account cannot cover is exceeds_credits, checked after refund_exceeds_captured", async () => {
      const p = await createPayment(app, { amount: 5000, merchant_account_id: "wallet:empty" });
      await attempt(app, p.id, { outcome: "succeeded" });
      const out = await app.request("POST", "/v1/payouts", { amount: 5000, currency: "CNY", source_account_id: "wallet:empty", destination });
      assert.equal(out.body.status, "paid", out.text);
      const tooMuch = await app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 5001 });
      assert.equal(tooMuch.body.error.code, "refund_exceeds_captured");
      const r = await app.request("POST", `/v1/payments/${p.id}/refunds`, { amount: 100 });
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.error.code, "exceeds_credits");
      const payment = (await app.request("GET", `/v1/payments/${p.id}`)).body;
      assert.equal(payment.amount_refunded, 0, "a refused refund leaves nothing counted");
    });

    test("a refund id is idempotent", async () => {
      const p = await paidPayment(app);
      const first = await app.request("POST", `/v1/payments/${p.id}/refunds`, { id: `rf-${p.id}`, amount: 100 });
      assert.equal(first.status, 201);
      const again = await app.request("POST", `/v1/payments/${p.id}/refunds`, { id: `rf-${p.id}`, amount: 100 });
      assert.equal(again.status, 200);
      assert.equal(again.body.id, first.body.id);
      const different = await app.request("POST", `/v1/payments/${p.id}/refunds`, { id: `rf-${p.id}`, amount: 101 });
      assert.equal(different.status, 409);
      assert.equal((await app.request("GET", `/v1/payments/${p.id}`)).body.amount_refunded, 100);
    });

    test("a paid payout posts the hold; the destination is stored encrypted and shown masked", async () => {
      await paidPayment(app, 50000);
      const before = await balances(app, "wallet:store:17");
      const res = await app.request("POST", "/v1/payouts", { id: "po-paid", amount: 12345, currency: "CNY", source_account_id: "wallet:store:17", destination });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.status, "paid");
      assert.deepEqual(res.body.destination, { bank_account_number: "6222 **** **** 3445", account_name: "张*" });
      const after = await balances(app, "wallet:store:17");
      assert.equal(after.debits_posted - before.debits_posted, 12345);
      assert.equal(after.debits_pending, before.debits_pending);
      const row = await app.tally.db.read.selectFrom("payouts").selectAll().where("id", "=", "po-paid").executeTakeFirstOrThrow();
      assert.ok(!row.destination.includes("6222021234567893445") && !row.destination.includes("张三"), "the destination is not stored in clear");
      assert.match(row.destination, /^v2:aes-256-gcm:\d+:/);
      const found = await app.tally.payouts.findByAccountNumber("6222021234567893445", null);
      assert.ok(found.some((p) => p.id === "po-paid"));
      assert.equal((await app.tally.payouts.findByAccountNumber("6222021234567890000", null)).length, 0);
      const got = await app.request("GET", "/v1/payouts/po-paid");
      assert.equal(got.body.destination.bank_account_number, "6222 **** **** 3445");
    });

    test("a failed payout voids the hold: the money is available again", async () => {
      const before = await balances(app, "wallet:store:17");
      const res = await app.request("POST", "/v1/payouts", { amount: 1000, currency: "CNY", source_account_id: "wallet:store:17", destination, simulator: { outcome: "failed" } });
      assert.equal(res.body.status, "failed");
      assert.equal(res.body.failure.code, "invalid_account");
      assert.deepEqual(await balances(app, "wallet:store:17"), before);
    });

    test("a returned payout credits the source back with a new transfer", async () => {
      const before = await balances(app, "wallet:store:17");
      const res = await app.request("POST", "/v1/payouts", { amount: 2000, currency: "CNY", source_account_id: "wallet:store:17", destination, simulator: { outcome: "returned", delay_ms: 5 } });
      assert.equal(res.body.status, "in_transit");
      let status = "in_transit";
      for (let i = 0; i < 100 && status !== "returned"; i++) {
        await new Promise((r) => setTimeout(r, 20));
        status = (await app.request("GET", `/v1/payouts/${res.body.id}`)).body.status;
      }
      assert.equal(status, "returned");
      const after = await balances(app, "wallet:store:17");
      assert.equal(after.debits_posted - before.debits_posted, 2000);
      assert.equal(after.credits_posted - before.credits_posted, 2000);
      const types = (await app.tally.db.read.selectFrom("outbox_events").select(["type", "data"]).where("type", "like", "payout.%").orderBy("seq").execute())
        .filter((e) => JSON.parse(e.data).object.id === res.body.id)
        .map((e) => e.type);
      assert.deepEqual(types, ["payout.in_transit", "payout.paid", "payout.returned"]);
    });

    test("a payout above the available balance is exceeds_credits, whatever the account's flags", async () => {
      const acct = await balances(app, "wallet:store:17");
      const available = acct.credits_posted - acct.debits_posted - acct.debits_pending;
      const res = await app.request("POST", "/v1/payouts", { amount: available + 1, currency: "CNY", source_account_id: "wallet:store:17", destination });
      assert.equal(res.status, 422);
      assert.equal(res.body.error.code, "exceeds_credits");
    });

    test("concurrent payouts never spend more than is available", async () => {
      await account(app, "wallet:race");
      const p = await createPayment(app, { amount: 10000, merchant_account_id: "wallet:race" });
      await attempt(app, p.id, { outcome: "succeeded" });
      const tries = await Promise.all(Array.from({ length: 5 }, () => app.request("POST", "/v1/payouts", { amount: 3000, currency: "CNY", source_account_id: "wallet:race", destination })));
      assert.equal(tries.filter((t) => t.status === 201).length, 3);
      assert.equal(tries.filter((t) => t.status === 422).length, 2);
      const end = await balances(app, "wallet:race");
      assert.equal(end.credits_posted - end.debits_posted, 1000);
    });

    const invalid: Array<[string, Record<string, unknown>, number, string]> = [
      ["a short account number", { destination: { ...destination, bank_account_number: "1234" } }, 400, "validation_failed"],
      ["letters in the account number", { destination: { ...destination, bank_account_number: "6222abcd12345678" } }, 400, "validation_failed"],
      ["an unknown source account", { source_account_id: "nope" }, 422, "debit_account_not_found"],
      ["another currency", { currency: "USD" }, 422, "currency_mismatch"],
      ["an unknown channel", { channel: "nope" }, 400, "validation_failed"],
      ["a missing destination", { destination: undefined }, 400, "validation_failed"],
    ];
    for (const [name, fields, status, code] of invalid) {
      test(`a payout with ${name} is refused`, async () => {
        const res = await app.request("POST", "/v1/payouts", { amount: 1, currency: "CNY", source_account_id: "wallet:store:17", destination, ...fields });
        assert.equal(res.status, status, res.text);
        assert.equal(res.body.error.code, code);
      });
    }
  });
}

describe("two Tally processes on one PostgreSQL database", () => {
  let a: TestApp;
  let b: TestApp;
  before(async () => {
    a = await startTestApp({ dialect: "postgres", label: "twoproc" });
    // A second instance on the same database: its own engine, locks and caches, like a process.
    b = await startTestApp({ dialect: "postgres", label: "twoproc", config: { databaseUrl: a.database.url } });
    await account(a, "wallet:store:17");
  });
  after(async () => {
    await b.close();
    await a.close();
  });

  test("refunds sent to both at once never exceed what was captured", async () => {
    const p = await paidPayment(a, 10000);
    const tries = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).request("POST", `/v1/payments/${p.id}/refunds`, { amount: 3000 })));
    assert.equal(tries.filter((t) => t.status === 201).length, 3, tries.map((t) => t.text).join("\n"));
    assert.ok(tries.filter((t) => t.status !== 201).every((t) => t.body.error.code === "refund_exceeds_captured"));
    assert.equal((await b.request("GET", `/v1/payments/${p.id}`)).body.amount_refunded, 9000);
  });

  test("payouts sent to both at once never spend more than is available", async () => {
    await account(a, "wallet:two");
    const p = await createPayment(a, { amount: 10000, merchant_account_id: "wallet:two" });
    await attempt(a, p.id, { outcome: "succeeded" });
    const tries = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).request("POST", "/v1/payouts", { amount: 3000, currency: "CNY", source_account_id: "wallet:two", destination })));
    assert.equal(tries.filter((t) => t.status === 201).length, 3, tries.map((t) => t.text).join("\n"));
    const end = await balances(b, "wallet:two");
    assert.equal(end.credits_posted - end.debits_posted - end.debits_pending, 1000);
  });
});
