// Property test of the payment core: random sequences of payments, attempts with every channel
// outcome, notifications, captures, cancels, refunds (also several at once), payouts and job runs
// (time passing). After every step the ledger is balanced and the merchant account holds exactly
// what the payment objects say it should; refunds never exceed what was captured. The simulator's
// circuit breaker is modelled: attempts that fail on the channel's side open it, and while it is
// open, attempts and payouts are refused with 503 no_available_channel, and only then.
// TALLY_PROPERTY_RUNS / TALLY_PROPERTY_STEPS / TALLY_PROPERTY_SEED tune it, as for the ledger.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { defaultBreakerSettings } from "../../src/channels/circuit-breaker.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { DIALECTS } from "../support/databases.ts";
import { startTestApp, type TestApp } from "../support/app.ts";

const RUNS = Number(process.env.TALLY_PROPERTY_RUNS ?? 6);
const STEPS = Number(process.env.TALLY_PROPERTY_STEPS ?? 30);
const SEED = process.env.TALLY_PROPERTY_SEED ? Number(process.env.TALLY_PROPERTY_SEED) : undefined;

type Step =
  | { kind: "pay"; amount: number; manual: boolean }
  | { kind: "attempt"; pick: number; outcome: "succeeded" | "declined" | "channel_error" | "timeout" | "pending" }
  | { kind: "notify"; pick: number; outcome: "succeeded" | "declined" | "channel_error" }
  | { kind: "capture"; pick: number; part: number }
  | { kind: "cancel"; pick: number }
  | { kind: "refund"; pick: number; amount: number; copies: number }
  | { kind: "payout"; amount: number; outcome: "paid" | "failed" | "returned" }
  | { kind: "jobs"; advanceMs: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("pay" as const), amount: fc.integer({ min: 1, max: 50_000 }), manual: fc.boolean() }),
  fc.record({ kind: fc.constant("attempt" as const), pick: fc.nat(), outcome: fc.constantFrom("succeeded", "declined", "channel_error", "timeout", "pending") }),
  fc.record({ kind: fc.constant("notify" as const), pick: fc.nat(), outcome: fc.constantFrom("succeeded", "declined", "channel_error") }),
  fc.record({ kind: fc.constant("capture" as const), pick: fc.nat(), part: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("refund" as const), pick: fc.nat(), amount: fc.integer({ min: 1, max: 30_000 }), copies: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("payout" as const), amount: fc.integer({ min: 1, max: 40_000 }), outcome: fc.constantFrom("paid", "failed", "returned") }),
  fc.record({ kind: fc.constant("jobs" as const), advanceMs: fc.constantFrom(1_000, 30_000, 700_000) }),
);

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

for (const dialect of DIALECTS) {
  describe(`payment properties on ${dialect}`, () => {
    const clock = new ManualClock(BigInt(Date.UTC(2026, 10, 25)) * 1000n);
    let app: TestApp;
    let run = 0;
    // The simulator channel's breaker (src/channels/circuit-breaker.ts, default settings), kept
    // across runs as the app keeps it: system failures in a row (channel errors, timeouts) open it
    // for openMs of the app's clock; any other answer of the channel closes it.
    const breaker = { failuresInARow: 0, openedAtMs: null as number | null };
    const breakerOpen = () => breaker.openedAtMs !== null && clock.nowMs() - breaker.openedAtMs < defaultBreakerSettings.openMs;
    const refusedForBreaker = (r: { status: number; body: any }) => r.status === 503 && r.body?.error?.code === "no_available_channel";
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "payprops" });
    });
    after(async () => app.close());

    test("the ledger stays balanced and agrees with every payment, refund and payout", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: Math.min(STEPS, 15), maxLength: STEPS }), async (steps) => {
          const merchant = `wallet:prop:${++run}`;
          const res = await app.request("POST", "/v1/ledger/accounts", { id: merchant, currency: "CNY" });
          assert.equal(res.status, 201, res.text);
          const payments: string[] = [];
          const payouts: string[] = [];
          const pick = (n: number) => (payments.length === 0 ? null : payments[n % payments.length]!);
          for (const step of steps) {
            switch (step.kind) {
              case "pay": {
                const r = await app.request("POST", "/v1/payments", { amount: step.amount, currency: "CNY", merchant_account_id: merchant, capture: step.manual ? "manual" : "automatic", expires_in_seconds: 600 });
                assert.equal(r.status, 201, r.text);
                payments.push(r.body.id);
                break;
              }
              case "attempt": {
                const id = pick(step.pick);
                if (!id) break;
                const open = breakerOpen();
                const r = await app.request("POST", `/v1/payments/${id}/attempts`, { method: "simulator", simulator: { outcome: step.outcome } });
                // Refused while the breaker is open (unless an earlier check refuses it first), never otherwise.
                assert.ok(open ? [409, 422].includes(r.status) || refusedForBreaker(r) : [201, 409, 422].includes(r.status), r.text);
                if (r.status === 201) {
                  // The channel was called: its answer moves the breaker.
                  if (step.outcome === "channel_error" || step.outcome === "timeout") {
                    if (++breaker.failuresInARow >= defaultBreakerSettings.failuresToOpen) breaker.openedAtMs = clock.nowMs();
                  } else {
                    breaker.failuresInARow = 0;
                    breaker.openedAtMs = null;
                  }
                }
                break;
              }
              case "notify": {
                const id = pick(step.pick);
                if (!id) break;
                const p = (await app.request("GET", `/v1/payments/${id}`)).body;
                const open = p.attempts.find((a: { status: string }) => a.status === "pending" || a.status === "unknown");
                if (!open) break;
                const r = await app.tally.server.inject({ method: "POST", url: "/v1/channels/simulator/notify", headers: { "content-type": "application/json" }, payload: JSON.stringify({ attempt_id: open.id, outcome: step.outcome }) });
                assert.equal(r.statusCode, 200, r.body);
                break;
              }
              case "capture": {
                const id = pick(step.pick);
                if (!id) break;
                const p = (await app.request("GET", `/v1/payments/${id}`)).body;
                const amount = Math.max(1, Math.floor((p.amount_held * step.part) / 100));
                const r = await app.request("POST", `/v1/payments/${id}/capture`, p.amount_held > 0 ? { amount } : {});
                assert.ok([200, 422].includes(r.status), r.text);
                break;
              }
              case "cancel": {
                const id = pick(step.pick);
                if (!id) break;
                const r = await app.request("POST", `/v1/payments/${id}/cancel`);
                assert.ok([200, 409, 422].includes(r.status), r.text);
                break;
              }
              case "refund": {
                const id = pick(step.pick);
                if (!id) break;
                const rs = await Promise.all(Array.from({ length: step.copies }, () => app.request("POST", `/v1/payments/${id}/refunds`, { amount: step.amount })));
                for (const r of rs) assert.ok(r.status === 201 || (r.status === 422 && ["refund_exceeds_captured", "exceeds_credits", "invalid_state_transition"].includes(r.body.error.code)), r.text);
                break;
              }
              case "payout": {
                const open = breakerOpen();
                const r = await app.request("POST", "/v1/payouts", { amount: step.amount, currency: "CNY", source_account_id: merchant, destination: { bank_account_number: "6222021234567893445", account_name: "张三" }, simulator: { outcome: step.outcome } });
                // The simulator pays out too: while its breaker is open, payouts are refused as well.
                assert.ok(open ? refusedForBreaker(r) : r.status === 201 || (r.status === 422 && r.body.error.code === "exceeds_credits"), r.text);
                if (r.status === 201) {
                  payouts.push(r.body.id);
                  if (step.outcome === "returned") {
                    // The simulated bank sends the return a moment later; wait for it.
                    for (let i = 0; i < 200; i++) {
                      if ((await app.request("GET", `/v1/payouts/${r.body.id}`)).body.status === "returned") break;
                      await new Promise((resolve) => setTimeout(resolve, 5));
                    }
                  }
                }
                break;
              }
              case "jobs":
                clock.advanceMs(step.advanceMs);
                await app.tally.runPaymentJobs();
                break;
            }
            await checkInvariants(app, merchant, payments, payouts);
          }
        }),
        { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
      );
    });
  });
}

async function checkInvariants(app: TestApp, merchant: string, paymentIds: string[], payoutIds: string[]) {
  // 1. Double entry: all debits equal all credits, pending and posted.
  const totals = await app.tally.db.read
    .selectFrom("ledger_accounts")
    .select((eb) => [eb.fn.sum<string>("debits_posted").as("dp"), eb.fn.sum<string>("credits_posted").as("cp"), eb.fn.sum<string>("debits_pending").as("dn"), eb.fn.sum<string>("credits_pending").as("cn")])
    .executeTakeFirstOrThrow();
  assert.equal(String(totals.dp), String(totals.cp), "posted debits = posted credits");
  assert.equal(String(totals.dn), String(totals.cn), "pending debits = pending credits");

  // 2. The merchant account holds exactly what the payment objects say.
  const payments = await Promise.all(paymentIds.map(async (id) => (await app.request("GET", `/v1/payments/${id}`)).body));
  const refunds = await app.tally.db.read.selectFrom("refunds").select(["payment_id", "amount", "status"]).where("payment_id", "in", paymentIds.length ? paymentIds : ["-"]).execute();
  const payouts = await Promise.all(payoutIds.map(async (id) => (await app.request("GET", `/v1/payouts/${id}`)).body));
  const account = (await app.request("GET", `/v1/ledger/accounts/${merchant}`)).body;
  const refundSum = (status: string) => sum(refunds.filter((r) => r.status === status).map((r) => Number(r.amount)));
  const payoutSum = (statuses: string[]) => sum(payouts.filter((p) => statuses.includes(p.status)).map((p) => p.amount));
  assert.equal(account.credits_posted, sum(payments.map((p) => p.amount_captured)) + payoutSum(["returned"]), "credits posted = captured + returned payouts");
  assert.equal(account.credits_pending, sum(payments.map((p) => p.amount_held)), "credits pending = held (manual) payments");
  assert.equal(account.debits_posted, refundSum("succeeded") + payoutSum(["paid", "returned"]), "debits posted = refunds + payouts paid");
  assert.equal(account.debits_pending, refundSum("pending") + payoutSum(["pending", "in_transit"]), "debits pending = open refunds + payouts");

  // 3. Per payment: refunds never exceed what was captured; statuses agree with the amounts.
  for (const p of payments) {
    const mine = refunds.filter((r) => r.payment_id === p.id && r.status !== "failed");
    assert.equal(p.amount_refunded, sum(mine.map((r) => Number(r.amount))));
    assert.ok(p.amount_refunded <= p.amount_captured, `payment ${p.id}: refunded ${p.amount_refunded} > captured ${p.amount_captured}`);
    if (p.status === "succeeded") assert.ok(p.amount_captured > 0);
    if (p.status !== "succeeded") assert.equal(p.amount_captured, 0, `payment ${p.id} is ${p.status} but captured ${p.amount_captured}`);
    if (p.status === "requires_capture") assert.equal(p.amount_held, p.amount);
    else assert.equal(p.amount_held, 0);
  }
}
