// Property test of escrow: random sequences of bank transfers (their notices duplicated, delayed
// and so reordered, in every format), manual arrivals (also for references a notice brings later),
// statements, releases, refunds (paid, failed, held then settled) and commissions keep every
// agreement's amounts equal to its escrow account, and the ledger balanced, after every step.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ManualClock } from "../../src/kernel/clock.ts";
import { DIALECTS } from "../support/databases.ts";
import { startTestApp, type TestApp } from "../support/app.ts";
import { assertLedgerAgrees } from "../support/escrow.ts";

const RUNS = Number(process.env.TALLY_PROPERTY_RUNS ?? 4);
const STEPS = Number(process.env.TALLY_PROPERTY_STEPS ?? 25);
const SEED = process.env.TALLY_PROPERTY_SEED ? Number(process.env.TALLY_PROPERTY_SEED) : undefined;

const BANKS = {
  "demo-pjson": { behaviour: { format: "json", date_format: "yyyy-MM-dd HH:mm:ss" }, profile: null },
  "demo-pcsv": {
    behaviour: { format: "csv", date_format: "yyyy/MM/dd HH:mm" },
    profile: { format: "csv", fields: { account: "account", amount: "amount", currency: "currency", direction: "dc", credit_value: "C", bank_reference: "serial_no", payer_name: "payer_name", remittance: "memo", booked_at: "booked_at" }, amount_unit: "major", date_formats: ["yyyy/MM/dd HH:mm"], timezone: "Asia/Shanghai" },
  },
  "demo-pcamt": { behaviour: { format: "camt054", date_format: "yyyy-MM-dd" }, profile: { format: "camt054" } },
  "demo-pmt": { behaviour: { format: "mt940", date_format: "yyyy-MM-dd" }, profile: { format: "mt940" } },
} as const;
type Bank = keyof typeof BANKS;

type Step =
  | { kind: "agreement"; bank: Bank; due: number }
  | { kind: "transfer"; pick: number; amount: number; copies: number; delayMs: number }
  | { kind: "manual"; pick: number; amount: number; reuse: boolean }
  | { kind: "release" | "refund"; pick: number; part: number; outcome: "paid" | "failed" | "hold" }
  | { kind: "settle"; pick: number; outcome: "paid" | "failed" }
  | { kind: "commission"; pick: number; amount: number; event: number }
  | { kind: "statement"; bank: Bank };

const bankArb = fc.constantFrom(...(Object.keys(BANKS) as Bank[]));
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("agreement" as const), bank: bankArb, due: fc.integer({ min: 1, max: 100_000 }) }),
  fc.record({ kind: fc.constant("transfer" as const), pick: fc.nat(), amount: fc.integer({ min: 1, max: 80_000 }), copies: fc.integer({ min: 1, max: 3 }), delayMs: fc.constantFrom(0, 0, 5, 15) }),
  fc.record({ kind: fc.constant("manual" as const), pick: fc.nat(), amount: fc.integer({ min: 1, max: 50_000 }), reuse: fc.boolean() }),
  fc.record({ kind: fc.constantFrom("release" as const, "refund" as const), pick: fc.nat(), part: fc.integer({ min: 0, max: 100 }), outcome: fc.constantFrom("paid", "failed", "hold") }),
  fc.record({ kind: fc.constant("settle" as const), pick: fc.nat(), outcome: fc.constantFrom("paid", "failed") }),
  fc.record({ kind: fc.constant("commission" as const), pick: fc.nat(), amount: fc.integer({ min: 1, max: 40_000 }), event: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant("statement" as const), bank: bankArb }),
);

for (const dialect of DIALECTS) {
  describe(`escrow properties on ${dialect}`, () => {
    const clock = new ManualClock(BigInt(Date.now()) * 1000n);
    let app: TestApp;
    let run = 0;
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "escrowprops" });
      assert.equal((await app.request("POST", "/v1/ledger/accounts", { id: "commission:prop", currency: "CNY" })).status, 201);
      for (const [bank, setup] of Object.entries(BANKS)) {
        await app.request("PUT", `/v1/simulators/${bank}/behaviour`, { notice: setup.behaviour });
        if (setup.profile) assert.equal((await app.request("PUT", `/v1/custody/banks/${bank}/profile`, setup.profile)).status, 200);
      }
    });
    after(async () => app.close());

    test("every agreement's amounts equal its escrow account; the ledger balances", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: Math.min(STEPS, 10), maxLength: STEPS }), async (steps) => {
          run++;
          const agreements: Array<{ id: string; bank: Bank; account: string }> = [];
          const refs: Array<{ bank: Bank; ref: string; agreement: string; amount: number }> = [];
          const held: Array<{ bank: Bank; id: string }> = [];
          const pick = (n: number) => (agreements.length ? agreements[n % agreements.length]! : null);
          for (const step of steps) {
            switch (step.kind) {
              case "agreement": {
                const id = `P${run}-${agreements.length}`;
                const res = await app.request("POST", "/v1/agreements", { id, amount_due: step.due, currency: "CNY", custody_bank: step.bank, payer: { name: "王小明" }, payee: { name: "李四", bank_account_number: "6222020200112233445" }, agent_account_id: "commission:prop" });
                assert.equal(res.status, 201, res.text);
                agreements.push({ id, bank: step.bank, account: res.body.virtual_account.account_number });
                break;
              }
              case "transfer": {
                const a = pick(step.pick);
                if (!a) break;
                const res = await app.request("POST", `/v1/simulators/${a.bank}/transfers`, { account_number: a.account, amount: step.amount, payer_name: "王小明", copies: step.copies, delay_ms: step.delayMs });
                assert.equal(res.status, 201, res.text);
                refs.push({ bank: a.bank, ref: res.body.bank_reference, agreement: a.id, amount: step.amount });
                break;
              }
              case "manual": {
                const a = pick(step.pick);
                if (!a) break;
                const known = step.reuse ? refs.find((r) => r.agreement === a.id) : undefined;
                const body = known ? { amount: known.amount, currency: "CNY", bank_reference: known.ref, reason: "seen at the bank" } : { amount: step.amount, currency: "CNY", bank_reference: `MAN-${run}-${refs.length}`, reason: "confirmed by phone" };
                const res = await app.request("POST", `/v1/agreements/${a.id}/manual-arrivals`, body);
                assert.ok([200, 201, 409, 422].includes(res.status), res.text);
                if (res.status === 201 && !known) refs.push({ bank: a.bank, ref: body.bank_reference, agreement: a.id, amount: step.amount });
                break;
              }
              case "release":
              case "refund": {
                const a = pick(step.pick);
                if (!a) break;
                const got = (await app.request("GET", `/v1/agreements/${a.id}`)).body;
                await app.request("PUT", `/v1/simulators/${a.bank}/behaviour`, { payouts: step.outcome });
                const amount = Math.floor((got.available * step.part) / 100);
                const res = await app.request("POST", `/v1/agreements/${a.id}/${step.kind}`, amount > 0 ? { amount } : {});
                assert.ok(res.status === 201 || (res.status === 422 && ["exceeds_escrow", "invalid_state_transition"].includes(res.body.error.code)), res.text);
                if (res.status === 201 && res.body.status === "pending") held.push({ bank: a.bank, id: res.body.id });
                break;
              }
              case "settle": {
                if (held.length === 0) break;
                const h = held.splice(step.pick % held.length, 1)[0]!;
                const res = await app.request("POST", `/v1/simulators/${h.bank}/payouts/${h.id}/settle`, { outcome: step.outcome });
                assert.equal(res.status, 200, res.text);
                break;
              }
              case "commission": {
                const a = pick(step.pick);
                if (!a) break;
                const res = await app.request("POST", `/v1/agreements/${a.id}/commission`, { event_id: `ev-${run}-${step.event}`, amount: step.amount });
                assert.ok([200, 409, 422].includes(res.status), res.text);
                break;
              }
              case "statement": {
                // A bank states the accounts that have money; with none at this bank there is nothing to send.
                if (!agreements.some((a) => a.bank === step.bank)) break;
                await app.tally.arrivals.idle();
                const date = new Date(clock.nowMs() + 8 * 3600_000).toISOString().slice(0, 10);
                const res = await app.request("POST", `/v1/simulators/${step.bank}/statements`, { date, format: step.bank === "demo-pmt" ? "mt940" : "camt053" });
                assert.ok(res.status === 201, res.text);
                break;
              }
            }
            await new Promise((r) => setTimeout(r, 1));
            await app.tally.arrivals.idle();
            await assertLedgerAgrees(app);
          }
          // Every delayed notice lands; then no bank reference counts twice.
          await new Promise((r) => setTimeout(r, 40));
          await app.tally.arrivals.idle();
          await assertLedgerAgrees(app);
          for (const a of agreements) {
            const arrivals = (await app.request("GET", `/v1/agreements/${a.id}/arrivals`)).body.data;
            const refsSeen = arrivals.map((x: { bank_reference: string }) => x.bank_reference);
            assert.equal(new Set(refsSeen).size, refsSeen.length, `${a.id}: a bank reference counted twice`);
            const received = arrivals.filter((x: { status: string }) => x.status === "matched").reduce((s: number, x: { amount: number }) => s + x.amount, 0);
            assert.equal((await app.request("GET", `/v1/agreements/${a.id}`)).body.amount_received, received);
          }
        }),
        { numRuns: RUNS, verbose: 1, ...(SEED !== undefined ? { seed: SEED } : {}) },
      );
    });
  });
}
